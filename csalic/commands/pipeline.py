"""The workflow's stages (``prepare-data``, ``prepare-openimages``, ``prepare-task-net``, ``eval-point``,
``eval-points``, ``measure-complexity``, ``report``): what Snakemake rules and DVC stages call, one study
file in, files under results/ out."""

from __future__ import annotations

import argparse

from ..names import VARIANT_NAMES


def _params(path: str) -> dict:
    from ..study.params import load

    return load(path)


def register(sub: argparse._SubParsersAction) -> None:
    def stage(name: str, help_: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--params", default="params.yaml", help="study description (default: %(default)s)")
        p.set_defaults(func=func)
        return p

    stage("prepare-data", "workflow stage: demo data (demo mode) or the filtered COCO manifest (paper mode)",
          lambda a: _run(a, "prepare_data"))
    stage("prepare-openimages", "workflow stage: convert the study's OpenImages-format set (the demo's demo_oi) "
          "to COCO JSON, as csalic convert-openimages does", lambda a: _run(a, "prepare_openimages"))
    stage("prepare-task-net", "workflow stage: train the demo's task network (on task.demo_threads threads), "
          "or check the paper's weights", lambda a: _run(a, "prepare_task_net"))
    e = stage("eval-point", "workflow stage: evaluate one trained codec or one anchor point on the study's "
              "datasets, one after another in this process", _eval)
    e.add_argument("--dataset", help="only this one of eval.datasets (default: every one)")
    e.add_argument("--variant", choices=VARIANT_NAMES)
    e.add_argument("--lmbda", type=float)
    e.add_argument("--anchor", help="anchor point: none, hevc-q50, jpeg-q30, vvc-qp32, ...")
    ep = stage("eval-points", "workflow stage (DVC): evaluate every codec and anchor point of the study, side by "
               "side as Ray tasks, skipping points already evaluated with the same inputs", _eval_points)
    ep.add_argument("--dataset", help="only this one of eval.datasets (default: every one)")
    ep.add_argument("--no-track", action="store_true", help="do not log to MLflow")
    stage("measure-complexity", "workflow stage: parameters, MACs and coding time of the study's model size",
          lambda a: _run(a, "measure_complexity"))
    stage("report", "workflow stage: Tables 1-3 and the rate-accuracy figure from the evaluation results",
          lambda a: _run(a, "report"))


def _run(args: argparse.Namespace, name: str, **kwargs) -> int:
    from ..study import pipeline

    getattr(pipeline, name)(_params(args.params), **kwargs)
    return 0


def _datasets(args: argparse.Namespace, params: dict) -> list[str]:
    return [args.dataset] if args.dataset else list(params["eval"]["datasets"])


def _eval(args: argparse.Namespace) -> int:
    from ..study.pipeline import evaluate_point

    params = _params(args.params)
    for dataset in _datasets(args, params):
        evaluate_point(params, dataset, variant=args.variant, lmbda=args.lmbda, anchor=args.anchor)
    return 0


def _eval_points(args: argparse.Namespace) -> int:
    from ..study.eval_sweep import evaluate_points

    params = _params(args.params)
    outs = evaluate_points(params, _datasets(args, params), track=not args.no_track)
    print(f"{len(outs)} result(s) current")
    return 0
