rule report:
    input:
        expand(
            f"{ROOT}/eval/{{dataset}}/csalic-{{variant}}-lambda_{{lmbda}}",
            dataset=DATASETS,
            variant=VARIANTS,
            lmbda=LAMBDAS,
        ),
        expand(f"{ROOT}/eval/{{dataset}}/{{point}}", dataset=DATASETS, point=POINTS),
        f"{ROOT}/complexity/{config['model']['size']}_full.json",
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
