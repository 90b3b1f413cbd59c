rule complexity:
    output:
        COMPLEXITY,
    params:
        file=PARAMS,
        settings=stage_settings(config, "complexity"),
    log:
        f"{ROOT}/logs/complexity.log",
    benchmark:
        f"{ROOT}/benchmarks/complexity.tsv"
    conda:
        ENV
    shell:
        "csalic stage complexity --params {params.file} > {log} 2>&1"
