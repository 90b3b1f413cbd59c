"""``csalic track`` and ``csalic runs``: (re-)log finished jobs and evaluations to MLflow, list the runs.

MLflow is imported inside the handlers so that ``csalic --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import CsalicError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "track", help="log finished training jobs / evaluation summaries to MLflow",
        description="Log finished training job folders (metrics.csv, summary.json, final.pt) as child runs of "
                    "their variant's run in the study's MLflow experiment, and/or evaluation summaries. "
                    "Already logged jobs and summaries are left as they are, so this is safe to repeat.")
    p.add_argument("jobs", nargs="*", metavar="JOB_DIR", help="finished training job folders")
    p.add_argument("--params", default="params.yaml", help="study description (default: %(default)s)")
    p.add_argument("--eval", nargs="+", default=[], metavar="SUMMARY",
                   help="evaluation summary.json files, logged as the stages log them: a codec's numbers on its "
                        "λ run (its training job logged first if it is not), an anchor's under 'anchors'")
    p.add_argument("--results", action="store_true",
                   help="log the whole study from its files: its finished training jobs, the points its tables use "
                        "(codecs to their λ runs, anchors under 'anchors'), the BD deltas and the tables and figures")
    p.add_argument("--uri", default=None, help="tracking URI (default: tracking.uri of the params file)")
    p.add_argument("--no-checkpoint", action="store_true", help="do not copy final.pt into the artifact store")
    p.add_argument("--check", action="store_true", help="only check that the tracking store can be used")
    p.set_defaults(func=_track)

    r = sub.add_parser("runs", help="print the study's training runs (variant, λ, final bpp/PSNR/loss)",
                       description="Print one row per logged training job of the study, read back from MLflow.")
    r.add_argument("--params", default="params.yaml", help="study description (default: %(default)s)")
    r.add_argument("--uri", default=None, help="tracking URI (default: tracking.uri of the params file)")
    r.add_argument("--all", action="store_true", help="also show runs superseded by a later re-training")
    r.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    r.set_defaults(func=_runs)


def _track(args: argparse.Namespace) -> int:
    from ..study import params as params_mod
    from ..study import tracking

    params = params_mod.load(args.params)
    uri = tracking.tracking_uri(params, args.uri)
    if not (args.jobs or args.eval or args.check or args.results):
        raise CsalicError("nothing to log: give JOB_DIR folders, --eval SUMMARY.json files or --results")
    # Check every input before logging anything, so a typo does not leave a half-logged batch.
    for job in map(Path, args.jobs):
        if not job.is_dir():
            raise CsalicError(f"job folder {job} does not exist")
        for name in ("summary.json", "metrics.csv"):  # the checkpoint's name is in summary.json
            if not (job / name).is_file():
                raise CsalicError(f"{job / name} not found: is the job finished?")
    for s in map(Path, args.eval):
        if not s.is_file():
            raise CsalicError(f"evaluation summary {s} not found")
    tracking.check_store(uri)
    if args.check:
        print(f"tracking store {uri}: ok")
    for job in args.jobs:
        rid = tracking.log_training_job(job, params, uri=uri, log_checkpoint=not args.no_checkpoint)
        print(f"{job}: run {rid}")
    if args.eval:
        from ..study.tracking_results import log_evaluation

        for s in args.eval:  # the one way an evaluation is logged, as the stages log it
            print(f"{s}: run {log_evaluation(s, params, uri=uri)}")
    if args.results:
        _results(params, uri)
    if args.jobs or args.eval or args.results:
        print(f"experiment {params_mod.experiment_name(params)!r} in {uri}")
        print(tracking.ui_hint(params, uri))
    return 0


def _results(params: dict, uri: str) -> None:
    from ..study.tracking_results import log_results

    log_results(params, uri=uri)


def _runs(args: argparse.Namespace) -> int:
    from ..study import params as params_mod
    from ..study import tracking

    params = params_mod.load(args.params)
    uri = tracking.tracking_uri(params, args.uri)
    tracking.check_store(uri)
    df = tracking.runs_table(params, uri=uri, latest_only=not args.all)
    if df.empty:
        print(f"no training runs of experiment {params_mod.experiment_name(params)!r} in {uri}")
        return 0
    if args.csv:
        print(df.to_csv(index=False), end="")
    else:
        print(df.drop(columns=["run_id"]).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        print(tracking.ui_hint(params, uri))
    return 0
