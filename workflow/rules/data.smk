rule data:
    output:
        directory(f"{ROOT}/data"),
    params:
        file=PARAMS,
        settings={k: config[k] for k in ("mode", "seed", "data")},
    log:
        f"{ROOT}/logs/data.log",
    benchmark:
        f"{ROOT}/benchmarks/data.tsv"
    conda:
        ENV
    shell:
        "csalic prepare-data --params {params.file} > {log} 2>&1"


rule task_net:
    input:
        f"{ROOT}/data",
    output:
        directory(f"{ROOT}/task_net"),
    params:
        file=PARAMS,
        settings={k: config[k] for k in ("mode", "seed", "task")},
    log:
        f"{ROOT}/logs/task_net.log",
    benchmark:
        f"{ROOT}/benchmarks/task_net.tsv"
    # one core: the codecs' warm-ups train beside it
    threads: 1
    conda:
        ENV
    shell:
        "csalic prepare-task-net --params {params.file} --threads {threads} > {log} 2>&1"
