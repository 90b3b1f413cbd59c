rule data:
    output:
        directory(DATA),
    params:
        file=PARAMS,
        settings=stage_settings(config, "data"),
    log:
        f"{ROOT}/logs/data.log",
    benchmark:
        f"{ROOT}/benchmarks/data.tsv"
    conda:
        ENV
    shell:
        "csalic stage data --params {params.file} > {log} 2>&1"


rule task_net:
    input:
        DATA,
        [str(p) for p in layout.task_warm_start_files(config)],
    output:
        directory(TASK_NET),
    params:
        file=PARAMS,
        settings=stage_settings(config, "task_net"),
    log:
        f"{ROOT}/logs/task_net.log",
    benchmark:
        f"{ROOT}/benchmarks/task_net.tsv"
    # the longest path starts here (task network, then the λ fine-tuned with D_f): first, on the
    # task.demo_threads threads it always trains on (the network depends on the thread count)
    threads: config["task"].get("demo_threads", 1)
    priority: 30
    conda:
        ENV
    shell:
        "csalic stage task_net --params {params.file} > {log} 2>&1"


rule convert_openimages:
    input:
        DATA,
    output:
        DEMO_OI,
    params:
        file=PARAMS,
        settings=stage_settings(config, "convert_openimages"),
    log:
        f"{ROOT}/logs/convert_openimages.log",
    benchmark:
        f"{ROOT}/benchmarks/convert_openimages.tsv"
    conda:
        ENV
    shell:
        "csalic stage convert_openimages --params {params.file} > {log} 2>&1"
