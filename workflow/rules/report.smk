rule report:
    input:
        [d for p in POINTS for d in eval_dirs(p)],
        COMPLEXITY,
    output:
        [report(f, category="Tables", caption="../report/tables.rst") for f in TABLES],
        [report(f, category="Figures", caption=f"../report/{Path(f).stem}.rst") for f in FIGURES],
        METRICS,
    params:
        file=PARAMS,
        settings=stage_settings(config, "report"),
    log:
        f"{ROOT}/logs/report.log",
    conda:
        ENV
    shell:
        "csalic stage report --params {params.file} > {log} 2>&1"
