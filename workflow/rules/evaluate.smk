# One job per codec or anchor point, evaluating it on every dataset of the study in one process:
# a process's start (torch, compressai, the task network) costs as much as coding a small set.
rule evaluate:
    input:
        eval_inputs,
    output:
        [directory(d) for d in eval_dirs()],
    params:
        file=PARAMS,
        settings=eval_settings,
    log:
        f"{ROOT}/logs/eval/{{point}}.log",
    benchmark:
        f"{ROOT}/benchmarks/eval/{{point}}.tsv"
    conda:
        ENV
    shell:
        "csalic stage evaluate --params {params.file} --point {wildcards.point} > {log} 2>&1"
