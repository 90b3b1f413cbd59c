"""The workflow's stages, stated once: the name each goes by everywhere and the study settings it reads.

A stage's name is its Snakemake rule, its dvc.yaml stage, its subcommand (``csalic stage
<name>``) and its library function (:mod:`csalic.study.pipeline`).  The .smk rules take their
``settings`` from :func:`settings`, and tests/test_stages.py holds dvc.yaml, the rules, the
command line, the library and the README's stage table to :data:`STAGES`.  dvc.yaml is written by
hand rather than generated: its ``foreach`` and ``persist`` say things a generator would have to
be told anyway, and a hand-written file a user can read and edit is worth one test.

Torch-free: the Snakefile imports it while it parses the graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MODULE = "csalic.study.pipeline"


@dataclass(frozen=True)
class Stage:
    name: str                  # rule, dvc stage, `csalic stage <name>`, csalic.study.pipeline.<name>
    settings: tuple[str, ...]  # study keys it reads: dvc.yaml's params
    does: str
    # what one Snakemake job of it reads, where a job is one of the stage's variants, λ or points
    # (the lists it picks from are its wildcards); None: the stage's settings
    job_settings: tuple[str, ...] | None = None

    @property
    def command(self) -> str:
        return f"csalic stage {self.name}"

    @property
    def function(self) -> str:
        return f"{MODULE}.{self.name}"


STAGES: tuple[Stage, ...] = (
    Stage("data", ("mode", "seed", "data"), "generates the demo data, or filters COCO train2017 to images over 256 px"),
    Stage("convert_openimages", ("mode",), "converts the OpenImages-format set to COCO JSON"),
    Stage("task_net", ("mode", "seed", "task"), "trains the demo's task network, or checks the paper's"),
    Stage("train", ("seed", "model", "train", "task", "lambdas"),
          "trains warm-ups and λ as Ray tasks (Snakemake: one job per variant and warm-up or λ; DVC: one stage "
          "per variant)", job_settings=("seed", "model", "train", "task")),
    Stage("train_learned", ("seed", "train", "task", "lambdas", "learned"),
          "trains the learned comparators as the variants are trained (Snakemake: one job per codec and warm-up "
          "or λ; DVC: one stage per codec)", job_settings=("seed", "train", "task", "learned")),
    Stage("evaluate", ("variants", "learned", "lambdas", "eval", "task", "anchors.points", "anchors.vvc_encoder"),
          "evaluates codec and anchor points on every dataset (Snakemake: one job per point; DVC: every point "
          "as Ray tasks, skipping current ones)", job_settings=("eval", "task")),
    Stage("complexity", ("model", "complexity"), "parameters, MACs and coding time of the study's model size"),
    Stage("report", ("anchors.primary", "anchors.published", "report"), "Tables 1-3, the figures, DVC metrics and plots, MLflow"),
)


def stage(name: str) -> Stage:
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(f"no stage {name!r}")


def lookup(params: dict, key: str) -> Any:
    """``params["anchors"]["points"]`` for ``anchors.points``."""
    value = params
    for part in key.split("."):
        value = value[part]
    return value


def settings(params: dict, name: str) -> dict[str, Any]:
    """What one job of a stage's rule depends on in the study, as Snakemake compares it between runs."""
    s = stage(name)
    keys = s.settings if s.job_settings is None else s.job_settings
    return {k: lookup(params, k) for k in keys}


def markdown() -> str:
    """The README's stage table: one name for the rule, the dvc stage, the subcommand and the function."""
    rows = ["| stage: Snakemake rule, dvc.yaml stage | subcommand | library function | reads | what it does |",
            "|---|---|---|---|---|"]
    for s in STAGES:
        reads = ", ".join(f"`{k}`" for k in s.settings)
        rows.append(f"| `{s.name}` | `{s.command}` | `{s.function}` | {reads} | {s.does} |")
    return "\n".join(rows)
