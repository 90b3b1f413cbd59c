# CSA-LIC study workflow: `snakemake --cores all` runs the study described by params.yaml
# (the demo study by default; `--configfile config/paper.yaml` for the paper).
# Every rule runs `csalic stage <its name>`; the logic lives in the csalic package.

from snakemake.utils import min_version, validate

from csalic.study.params import SCHEMA_PATH, check_init_keys, check_learned_names
from csalic.study.pipeline import write_effective_params

min_version("9.0")


configfile: "params.yaml"


validate(config, str(SCHEMA_PATH))  # the package's schema, the one every csalic command checks
check_init_keys(config["train"], "config")  # and the keys its train.init reads, as they do
check_learned_names(config, "config")
if config.get("learned"):  # each learned codec built once, before any job starts (imports compressai: seconds)
    from csalic.codec.learned import check_learned

    check_learned(config, "config")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/complexity.smk"
include: "workflow/rules/report.smk"


onstart:
    write_effective_params(config)  # the merged config the commands read (PARAMS)


rule all:
    input:
        TABLES,
        FIGURES,
    default_target: True
