"""``csalic stage <name>``: the workflow's stages, what every Snakemake rule and dvc.yaml stage runs.

The names are the stages' names everywhere (:data:`csalic.study.stages.STAGES`): rule ``train``
runs ``csalic stage train``, which calls :func:`csalic.study.pipeline.train`.  One study file in,
files under results/ out.
"""

from __future__ import annotations

import argparse



# the stages that build each learned codec once before they start: the DAG's first (a bad codec is
# refused before any job) and those that train or code one; the others stay free of compressai
CHECK_LEARNED = ("data", "train", "train_learned", "evaluate")


def _params(path: str, stage: str) -> dict:
    """The study; a learned codec that cannot be one is refused in one line (:data:`CHECK_LEARNED`)."""
    from ..study.params import load

    params = load(path)
    if params.get("learned") and stage in CHECK_LEARNED:  # compressai's import: seconds
        from ..codec.learned import check_learned

        check_learned(params, path)
    return params


def register(sub: argparse._SubParsersAction) -> None:
    from ..study.stages import STAGES

    p = sub.add_parser("stage", help="run one workflow stage (what the Snakemake rules and dvc.yaml stages call)",
                       description="Run one stage of the study workflow: "
                                   + "; ".join(f"{s.name}: {s.does}" for s in STAGES) + ".")
    stages = p.add_subparsers(dest="stage", metavar="STAGE", required=True)
    for s in STAGES:
        q = stages.add_parser(s.name, help=s.does, description=f"Workflow stage {s.name}: {s.does}.")
        q.add_argument("--params", default="params.yaml", help="study description (default: %(default)s)")
        handler, options = _OWN.get(s.name, (_run, None))
        q.set_defaults(func=handler)
        if options:
            options(q)


def _train_options(t: argparse.ArgumentParser) -> None:
    t.add_argument("--variants", nargs="+", metavar="NAME",
                   help="subset of the stage's methods: the study's variants (train) or its learned codecs "
                        "(train_learned); default: all of them")
    t.add_argument("--lambdas", nargs="+", type=float, help="subset of λ (default: params lambdas)")
    t.add_argument("--job", help="one job of each variant by its folder name: warmup, lambda_<λ> or "
                                 "lambda_<λ>-seed_<s> (a Snakemake job)")
    t.add_argument("--warmup", action="store_true",
                   help="train only the variants' warm-up jobs (train.init: warmup), which every λ fine-tunes")
    t.add_argument("--max-steps", type=int, help="override train.max_steps")
    t.add_argument("--report", help="write the sweep report (JSON) here")
    t.add_argument("--no-track", action="store_true", help="do not log to MLflow")


def _evaluate_options(e: argparse.ArgumentParser) -> None:
    e.add_argument("--point", nargs="+", dest="points",
                   help="evaluate these points here, one after another (csalic-<variant>-lambda_<λ>, none, hevc-q50, "
                        "vvc-qp32, ...; a Snakemake job); default: every point of the study, as Ray tasks, skipping "
                        "those evaluated already with the same inputs")
    e.add_argument("--dataset", help="only this one of eval.datasets (default: every one)")
    e.add_argument("--no-track", action="store_true", help="do not log to MLflow")


def _run(args: argparse.Namespace) -> int:
    """The stages whose only input is the study: ``pipeline.<stage name>(params)``."""
    from ..study import pipeline

    getattr(pipeline, args.stage)(_params(args.params, args.stage))
    return 0


def _train(args: argparse.Namespace) -> int:
    from ..errors import CsalicError
    from ..study import layout, pipeline

    train = getattr(pipeline, args.stage)  # train (the variants) or train_learned (the learned codecs)

    lambdas, warmup, seeds = args.lambdas, args.warmup, None
    params = _params(args.params, args.stage)
    if args.job is not None:
        if args.lambdas or args.warmup:
            raise CsalicError("--job names one job: give it without --lambdas and --warmup")
        lmbda, seed = layout.parse_job(args.job)
        layout.check_seed(params, seed, f"job {args.job!r}", f"--job {layout.job_name(lmbda)}")
        lambdas, warmup, seeds = (None, True, None) if lmbda is None else ([lmbda], False, [seed])
    done = train(params, args.variants, lambdas, warmup=warmup, max_steps=args.max_steps,
                 track=not args.no_track, report_path=args.report, seeds=seeds)
    if done is None:
        return 0
    report, total = done
    if report["failed"]:
        names = ", ".join(f"{f['variant']} {'warm-up ' if f.get('stage') == 'warmup' else ''}λ={f['lmbda']:g}"
                          for f in report["failed"])
        print(f"csalic: error: {len(report['failed'])} of {total} job(s) failed: {names}", flush=True)
        return 1
    print(f"{len(report['jobs'])} job(s) finished")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from ..study.pipeline import evaluate

    outs = evaluate(_params(args.params, "evaluate"), args.points, [args.dataset] if args.dataset else None,
                    track=not args.no_track)
    print(f"{len(outs)} result(s) current")
    return 0


# the stages with options of their own: (handler, options); the others take the study only (_run)
_OWN = {"train": (_train, _train_options), "train_learned": (_train, _train_options),
        "evaluate": (_evaluate, _evaluate_options)}
