"""The workflow's stages, stated once: their names in the Snakefile, in dvc.yaml and on the command
line, the library function that does each, and the study settings each one reads.

The .smk rules take their ``settings`` from :func:`settings` and tests/test_stages.py holds
dvc.yaml, the rules, the command line and the README's stage table to :data:`STAGES`.  dvc.yaml
is written by hand rather than generated: its ``foreach`` and ``persist`` say things a generator
would have to be told anyway, and a hand-written file a user can read and edit is worth one test.

Torch-free: the Snakefile imports it while it parses the graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Stage:
    dvc: str | None            # the dvc.yaml stage (None: a Snakemake-only entry point)
    rules: tuple[str, ...]     # the Snakemake rules that run it (per job where Snakemake is finer)
    command: str               # the csalic subcommand both call
    function: str              # module:function, the library call the subcommand makes
    settings: tuple[str, ...]  # study keys it reads: dvc.yaml's params
    does: str
    # what one Snakemake job of it reads, where a job is one of the stage's variants, λ or points
    # (the lists it picks from are its wildcards); None: the stage's settings
    job_settings: tuple[str, ...] | None = None


STAGES: tuple[Stage, ...] = (
    Stage("data", ("data",), "prepare-data", "csalic.study.pipeline:prepare_data", ("mode", "seed", "data"),
          "generates the demo data, or filters COCO train2017 to images over 256 px"),
    Stage("convert_openimages", ("convert_openimages",), "prepare-openimages", "csalic.study.pipeline:prepare_openimages",
          ("mode",), "converts the OpenImages-format set to COCO JSON"),
    Stage("task_net", ("task_net",), "prepare-task-net", "csalic.study.pipeline:prepare_task_net", ("mode", "seed", "task"),
          "trains the demo's task network, or checks the paper's"),
    Stage("train", ("warmup", "train"), "sweep", "csalic.study.sweep:sweep_stage", ("seed", "model", "train", "task", "lambdas"),
          "trains warm-ups and λ as Ray tasks (rule warmup: the settings csalic.study.jobs hashes)",
          job_settings=("seed", "model", "train", "task")),
    Stage(None, ("eval_codec", "eval_anchor"), "eval-point", "csalic.study.pipeline:evaluate_point",
          ("variants", "lambdas", "eval", "task", "anchors.points", "anchors.vvc_encoder"),
          "evaluates one codec or anchor point on every dataset (Snakemake: one job per point)",
          job_settings=("eval", "task")),
    Stage("evaluate", (), "eval-points", "csalic.study.eval_sweep:evaluate_points",
          ("variants", "lambdas", "eval", "task", "anchors.points", "anchors.vvc_encoder"),
          "evaluates every point as Ray tasks, skipping current ones (DVC: one stage)"),
    Stage("complexity", ("complexity",), "measure-complexity", "csalic.study.pipeline:measure_complexity",
          ("model", "complexity"), "parameters, MACs and coding time of the study's model size"),
    Stage("report", ("report",), "report", "csalic.study.pipeline:report", ("anchors.published",),
          "Tables 1-3, the figures, DVC metrics and plots, MLflow"),
)


def stage(rule: str) -> Stage:
    """The stage a Snakemake rule runs."""
    for s in STAGES:
        if rule in s.rules:
            return s
    raise KeyError(f"no stage runs rule {rule!r}")


def lookup(params: dict, key: str) -> Any:
    """``params["anchors"]["points"]`` for ``anchors.points``."""
    value = params
    for part in key.split("."):
        value = value[part]
    return value


def settings(params: dict, rule: str) -> dict[str, Any]:
    """What a rule's job depends on in the study, as Snakemake compares it between runs."""
    s = stage(rule)
    keys = s.settings if s.job_settings is None else s.job_settings
    return {k: lookup(params, k) for k in keys}


def markdown() -> str:
    """The README's stage table: rule, dvc stage, subcommand, library function."""
    rows = ["| Snakemake rule(s) | dvc.yaml stage | `csalic` subcommand | library function | what it does |",
            "|---|---|---|---|---|"]
    for s in STAGES:
        rules = ", ".join(f"`{r}`" for r in s.rules) or "—"
        rows.append(f"| {rules} | {f'`{s.dvc}`' if s.dvc else '—'} | `{s.command}` | `{s.function.replace(':', '.')}` | {s.does} |")
    return "\n".join(rows)
