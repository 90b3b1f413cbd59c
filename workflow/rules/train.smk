# One rule per (variant, λ). Each submits its job to Ray: RAY_ADDRESS when set, else the
# one local Ray instance that all training rules running at the same time share.
# Under train.init: chain a job also needs the next lower λ's job (it is fine-tuned from it).
rule train:
    input:
        f"{ROOT}/data",
        f"{ROOT}/task_net",
        parent=chain_parent_files,
    output:
        job_files(),
    params:
        file=PARAMS,
        settings={k: config[k] for k in ("seed", "model", "train", "task")},
    log:
        f"{ROOT}/logs/train/{{variant}}_lambda_{{lmbda}}.log",
    benchmark:
        f"{ROOT}/benchmarks/train/{{variant}}_lambda_{{lmbda}}.tsv"
    resources:
        gpu=1,
    # the chains of fine-tuned λ are the study's longest path: start them before evaluations
    priority: 10
    conda:
        ENV
    shell:
        "csalic sweep --params {params.file} --variants {wildcards.variant} --lambdas {wildcards.lmbda} > {log} 2>&1"
