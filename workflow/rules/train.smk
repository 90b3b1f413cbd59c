# One rule per (variant, λ). Each submits its job to Ray: RAY_ADDRESS when set, else the
# one local Ray instance that all training rules running at the same time share.
# Under train.init: warmup each λ is fine-tuned from its variant's warm-up job, which needs
# no task network, so the warm-ups train while the task network does.
rule warmup:
    input:
        f"{ROOT}/data",
    output:
        warmup_files(),
    params:
        file=PARAMS,
        settings=warmup_settings,
    log:
        f"{ROOT}/logs/train/{{variant}}_warmup.log",
    benchmark:
        f"{ROOT}/benchmarks/train/{{variant}}_warmup.tsv"
    resources:
        gpu=1,
    priority: 10
    conda:
        ENV
    shell:
        "csalic sweep --params {params.file} --variants {wildcards.variant} --warmup > {log} 2>&1"


rule train:
    input:
        f"{ROOT}/data",
        f"{ROOT}/task_net",
        parent=parent_files,
    output:
        job_files(),
    params:
        file=PARAMS,
        settings=stage_settings(config, "train"),
    log:
        f"{ROOT}/logs/train/{{variant}}_lambda_{{lmbda}}.log",
    benchmark:
        f"{ROOT}/benchmarks/train/{{variant}}_lambda_{{lmbda}}.tsv"
    resources:
        gpu=1,
    # training is the study's longest path: start it before evaluations
    priority: 10
    conda:
        ENV
    shell:
        "csalic sweep --params {params.file} --variants {wildcards.variant} --lambdas {wildcards.lmbda} > {log} 2>&1"
