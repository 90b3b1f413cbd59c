# Paths and wildcard values shared by the rules, all derived from the validated config.
from pathlib import Path

from csalic.study import layout
from csalic.study.jobs import warmup_spec
from csalic.names import POINT_PATTERN
from csalic.study.stages import settings as stage_settings

STUDY = config["study"]
ROOT = f"results/{STUDY}"
# The commands read the merged config (params.yaml plus any --configfile) from this file, which
# the Snakefile's onstart writes: parsing the graph (a dry run, --lint) writes nothing.
PARAMS = str(layout.effective_params(config))
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
    job=layout.JOB_PATTERN,
    point=f"csalic-(?:{'|'.join(VARIANTS)})-{layout.LAMBDA_JOB}|{POINT_PATTERN}",


def job_files(variant="{variant}", job="{job}"):
    d = f"{ROOT}/train/{variant}/{job}"
    return [f"{d}/final.pt", f"{d}/summary.json", f"{d}/metrics.csv"]


def train_inputs(wildcards):
    """A warm-up needs the data only (it trains while the task network does); a λ's job also needs
    the task network and what it is fine-tuned from: its variant's warm-up (train.init: warmup) or
    warm start (pretrained)."""
    if wildcards.job == layout.WARMUP:
        return [f"{ROOT}/data"]
    parent = []
    if layout.uses_warmup(config):
        parent = job_files(wildcards.variant, layout.WARMUP)
    elif layout.uses_pretrained(config):
        parent = [str(layout.pretrained_checkpoint(config, wildcards.variant))]
    return [f"{ROOT}/data", f"{ROOT}/task_net"] + parent


def train_settings(wildcards):
    """What a job depends on; a warm-up's as csalic hashes it. Snakemake reruns a job only when these change."""
    if wildcards.job == layout.WARMUP:
        return warmup_spec(config, wildcards.variant, device="cpu").job_params()
    return stage_settings(config, "train")


def eval_inputs(wildcards):
    """The datasets and the task network; a codec's point also its trained checkpoint."""
    codec = layout.parse_csalic_point(wildcards.point)
    ckpt = [] if codec is None else [f"{ROOT}/train/{codec[0]}/{layout.job_name(codec[1])}/final.pt"]
    return DATASET_FILES + [f"{ROOT}/task_net"] + ckpt


def eval_settings(wildcards):
    """The evaluation settings; a VVC point also the encoder it runs."""
    s = stage_settings(config, "evaluate")
    if wildcards.point.startswith("vvc"):
        s["vvc_encoder"] = config["anchors"]["vvc_encoder"]
    return s
