# CSA-LIC study workflow: `snakemake --cores all` runs the study described by params.yaml
# (the demo study by default; `--configfile config/paper.yaml` for the paper).
# Every rule calls one `csalic` subcommand; the logic lives in the csalic package.

from snakemake.utils import min_version, validate

from csalic.study.params import SCHEMA_PATH

min_version("9.0")


configfile: "params.yaml"


validate(config, str(SCHEMA_PATH))  # the package's schema, the one every csalic command checks


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/complexity.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        TABLES,
        FIGURES,
    default_target: True
