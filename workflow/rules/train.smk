# One job per (variant, warm-up or λ), each submitted to Ray: RAY_ADDRESS when set, else the
# one local Ray instance that all training jobs running at the same time share.
# Under train.init: warmup each λ is fine-tuned from its variant's warm-up job, which needs
# no task network, so the warm-ups train while the task network does.
rule train:
    input:
        train_inputs,
    output:
        job_files(),
    params:
        file=PARAMS,
        settings=train_settings,
    log:
        f"{ROOT}/logs/train/{{variant}}_{{job}}.log",
    benchmark:
        f"{ROOT}/benchmarks/train/{{variant}}_{{job}}.tsv"
    resources:
        gpu=1,
    # training is the study's longest path: start it before evaluations
    priority: 10
    conda:
        ENV
    shell:
        "csalic stage train --params {params.file} --variants {wildcards.variant} --job {wildcards.job} > {log} 2>&1"


# The learned codecs (params.yaml's learned), trained as the variants are: the same loss, λ, data,
# crops and task network, one job per (codec, warm-up or λ)
rule train_learned:
    input:
        train_inputs,
    output:
        job_files("{learned}"),
    params:
        file=PARAMS,
        settings=train_settings,
    log:
        f"{ROOT}/logs/train/{{learned}}_{{job}}.log",
    benchmark:
        f"{ROOT}/benchmarks/train/{{learned}}_{{job}}.tsv"
    resources:
        gpu=1,
    priority: 10
    conda:
        ENV
    shell:
        "csalic stage train_learned --params {params.file} --variants {wildcards.learned} --job {wildcards.job} > {log} 2>&1"
