rule eval_codec:
    input:
        dataset_files,
        f"{ROOT}/task_net",
        f"{ROOT}/train/{{variant}}/lambda_{{lmbda}}/final.pt",
    output:
        directory(f"{ROOT}/eval/{{dataset}}/csalic-{{variant}}-lambda_{{lmbda}}"),
    params:
        file=PARAMS,
        settings={k: config[k] for k in ("eval", "task")},
    log:
        f"{ROOT}/logs/eval/{{dataset}}_csalic-{{variant}}-lambda_{{lmbda}}.log",
    benchmark:
        f"{ROOT}/benchmarks/eval/{{dataset}}_csalic-{{variant}}-lambda_{{lmbda}}.tsv"
    conda:
        ENV
    shell:
        "csalic eval-point --params {params.file} --dataset {wildcards.dataset} --variant {wildcards.variant} --lmbda {wildcards.lmbda} > {log} 2>&1"


rule eval_anchor:
    input:
        dataset_files,
        f"{ROOT}/task_net",
    output:
        directory(f"{ROOT}/eval/{{dataset}}/{{point}}"),
    params:
        file=PARAMS,
        settings={k: config[k] for k in ("eval", "task")},
        encoder=config["anchors"]["vvc_encoder"],
    log:
        f"{ROOT}/logs/eval/{{dataset}}_{{point}}.log",
    benchmark:
        f"{ROOT}/benchmarks/eval/{{dataset}}_{{point}}.tsv"
    conda:
        ENV
    shell:
        "csalic eval-point --params {params.file} --dataset {wildcards.dataset} --anchor {wildcards.point} > {log} 2>&1"
