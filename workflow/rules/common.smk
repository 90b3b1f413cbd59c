# Paths and wildcard values shared by the rules, all derived from the validated config: the paths
# from csalic.study.layout (with Snakemake's wildcards in place of names), the points from the study.
import re
from pathlib import Path

from csalic.names import POINT_PATTERN
from csalic.study import layout
from csalic.study.points import study_points
from csalic.study.jobs import warmup_spec
from csalic.study.stages import settings as stage_settings

ROOT = str(layout.root(config))
DATA = str(layout.data_dir(config))
TASK_NET = str(layout.task_net_dir(config))
COMPLEXITY = str(layout.complexity_json(config))
DEMO_OI = str(layout.dataset(config, "demo_oi")[1])
# The commands read the merged config (params.yaml plus any --configfile) from this file, which
# the Snakefile's onstart writes: parsing the graph (a dry run, --lint) writes nothing.
PARAMS = str(layout.effective_params(config))
ENV = "../../envs/csalic.yaml"
VARIANTS = config["variants"]
LEARNED = list(layout.learned(config))  # the learned codecs trained beside the variants (rule train_learned)
TRAINED_POINTS = "|".join(re.escape(layout.method(v)) for v in VARIANTS + LEARNED)
NOTHING = "(?!)"  # the constraint of a wildcard with no value: matches no path
DATASETS = config["eval"]["datasets"]
POINTS = [name for name, _ in study_points(config)]  # every codec and anchor point, as the eval folders name them
REPORT = layout.report_files(config)  # under results/<study>/: studies never share their tables
TABLES, FIGURES = REPORT["tables"], REPORT["figures"]
# an evaluation's data: the sets, and the converted JSON of the demo's OpenImages-format one
DATASET_FILES = [DATA] + ([DEMO_OI] if "demo_oi" in DATASETS else [])
METRICS = REPORT["metrics"]


wildcard_constraints:
    variant="|".join(map(re.escape, VARIANTS)),
    learned="|".join(map(re.escape, LEARNED)) or NOTHING,
    job=layout.JOB_PATTERN,
    point=f"(?:{TRAINED_POINTS})-{layout.LAMBDA_JOB}|{POINT_PATTERN}",


def job_files(variant="{variant}", job="{job}"):
    d = layout.variant_dir(config, variant) / job
    return [f"{d}/final.pt", f"{d}/summary.json", f"{d}/metrics.csv"]


def trained_name(wildcards) -> str:
    """The job's method: a variant (rule train) or a learned codec (rule train_learned)."""
    return wildcards.get("variant") or wildcards.get("learned")


def train_inputs(wildcards):
    """A warm-up needs the data only (it trains while the task network does); a λ's job also needs
    the task network and what it is fine-tuned from: its variant's warm-up (train.init: warmup) or
    warm start (pretrained)."""
    if wildcards.job == layout.WARMUP:
        return [DATA]
    parent = []
    if layout.uses_warmup(config):
        parent = job_files(trained_name(wildcards), layout.WARMUP)
    elif layout.uses_pretrained(config):
        parent = [str(layout.pretrained_checkpoint(config, trained_name(wildcards)))]
    return [DATA, TASK_NET] + parent


def train_settings(wildcards):
    """What a job depends on; a warm-up's as csalic hashes it. Snakemake reruns a job only when these change."""
    stage = "train" if wildcards.get("variant") else "train_learned"
    if wildcards.job == layout.WARMUP:
        return warmup_spec(config, trained_name(wildcards), device="cpu").job_params()
    return stage_settings(config, stage)


def eval_inputs(wildcards):
    """The datasets and the task network; a codec's point also its trained checkpoint."""
    codec = layout.parse_csalic_point(wildcards.point)
    ckpt = [] if codec is None else [str(layout.job_dir(config, *codec) / "final.pt")]
    return DATASET_FILES + [TASK_NET] + ckpt


def eval_dirs(point="{point}", datasets=DATASETS):
    return [str(layout.eval_dir(config, d, point)) for d in datasets]


def eval_settings(wildcards):
    """The evaluation settings; a VVC point also the encoder it runs."""
    s = stage_settings(config, "evaluate")
    if wildcards.point.startswith("vvc"):
        s["vvc_encoder"] = config["anchors"]["vvc_encoder"]
    return s
