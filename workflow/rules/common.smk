# Paths and wildcard values shared by the rules, all derived from the validated config.
from pathlib import Path

from csalic import layout
from csalic.study.jobs import warmup_spec
from csalic.names import POINT_PATTERN
from csalic.study.pipeline import write_effective_params
from csalic.study.stages import settings as stage_settings

STUDY = config["study"]
ROOT = f"results/{STUDY}"
# The commands read the merged config (params.yaml plus any --configfile) from this file.
PARAMS = str(write_effective_params(config))
ENV = "../../envs/csalic.yaml"
VARIANTS = config["variants"]
LAMBDAS = [layout.lambda_tag(x) for x in config["lambdas"]]
DATASETS = config["eval"]["datasets"]
POINTS = config["anchors"]["points"]
TABLES = expand("results/tables/table{n}.{ext}", n=[1, 2, 3], ext=["md", "tex", "csv"])
FIGURES = expand("results/figures/{name}.{ext}", name=["rate_accuracy", "ablation"], ext=["png", "pdf"])
# an evaluation's data: the sets, and the converted JSON of the demo's OpenImages-format one
DATASET_FILES = [f"{ROOT}/data"] + ([f"{ROOT}/openimages/demo_oi.json"] if "demo_oi" in DATASETS else [])
METRICS = ["results/metrics/bd.json", "results/metrics/points.json", "results/plots/rate_accuracy.csv"]


wildcard_constraints:
    variant="|".join(VARIANTS),
    lmbda=r"[0-9.eE+-]+",
    point=POINT_PATTERN,


def job_files(variant="{variant}", lmbda="{lmbda}"):
    d = f"{ROOT}/train/{variant}/lambda_{lmbda}"
    return [f"{d}/final.pt", f"{d}/summary.json", f"{d}/metrics.csv"]


def warmup_settings(wildcards):
    """What a variant's warm-up depends on, as csalic hashes it: Snakemake reruns it only when these change."""
    return warmup_spec(config, wildcards.variant, device="cpu").job_params()


def warmup_files(variant="{variant}"):
    d = layout.warmup_dir(config, variant)
    return [f"{d}/final.pt", f"{d}/summary.json", f"{d}/metrics.csv"]


def parent_files(wildcards):
    """A λ's job is fine-tuned from its variant's warm-up (train.init: warmup) or warm start (pretrained)."""
    if layout.uses_warmup(config):
        return warmup_files(wildcards.variant)
    if layout.uses_pretrained(config):
        return [str(layout.pretrained_checkpoint(config, wildcards.variant))]
    return []
