# One job per codec or anchor point, evaluating it on every dataset of the study in one process:
# a process's start (torch, compressai, the task network) costs as much as coding a small set.
rule eval_codec:
    input:
        DATASET_FILES,
        f"{ROOT}/task_net",
        f"{ROOT}/train/{{variant}}/lambda_{{lmbda}}/final.pt",
    output:
        [directory(f"{ROOT}/eval/{d}/csalic-{{variant}}-lambda_{{lmbda}}") for d in DATASETS],
    params:
        file=PARAMS,
        settings=stage_settings(config, "eval_codec"),
    log:
        f"{ROOT}/logs/eval/csalic-{{variant}}-lambda_{{lmbda}}.log",
    benchmark:
        f"{ROOT}/benchmarks/eval/csalic-{{variant}}-lambda_{{lmbda}}.tsv"
    conda:
        ENV
    shell:
        "csalic eval-point --params {params.file} --variant {wildcards.variant} --lmbda {wildcards.lmbda} > {log} 2>&1"


rule eval_anchor:
    input:
        DATASET_FILES,
        f"{ROOT}/task_net",
    output:
        [directory(f"{ROOT}/eval/{d}/{{point}}") for d in DATASETS],
    params:
        file=PARAMS,
        settings=stage_settings(config, "eval_anchor"),
        encoder=config["anchors"]["vvc_encoder"],
    log:
        f"{ROOT}/logs/eval/{{point}}.log",
    benchmark:
        f"{ROOT}/benchmarks/eval/{{point}}.tsv"
    conda:
        ENV
    shell:
        "csalic eval-point --params {params.file} --anchor {wildcards.point} > {log} 2>&1"
