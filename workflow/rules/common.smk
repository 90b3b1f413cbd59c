# Paths and wildcard values shared by the rules, all derived from the validated config.
from csalic import layout
from csalic.pipeline import write_effective_params

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
FIGURES = expand("results/figures/rate_accuracy.{ext}", ext=["png", "pdf"])


wildcard_constraints:
    variant="|".join(VARIANTS),
    lmbda=r"[0-9.eE+-]+",
    point=r"none|(hevc|jpeg|webp|avif)-q\d+|vvc-qp\d+",
    dataset="|".join(DATASETS),


def job_files(variant="{variant}", lmbda="{lmbda}"):
    d = f"{ROOT}/train/{variant}/lambda_{lmbda}"
    return [f"{d}/final.pt", f"{d}/summary.json", f"{d}/metrics.csv"]


# what a warm-up depends on: not finetune_steps or feature_weight (it trains without D_f), so
# changing them does not make Snakemake delete and retrain the warm-ups
WARMUP_SETTINGS = {"seed": config["seed"], "model": config["model"],
                   "train": {k: v for k, v in config["train"].items() if k not in ("finetune_steps", "feature_weight")}}


def warmup_files(variant="{variant}"):
    d = layout.warmup_dir(config, variant)
    return [f"{d}/final.pt", f"{d}/summary.json", f"{d}/metrics.csv"]


def parent_files(wildcards):
    """Under train.init: warmup a λ's job is fine-tuned from its variant's warm-up."""
    return warmup_files(wildcards.variant) if layout.uses_warmup(config) else []
