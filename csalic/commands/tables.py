"""``csalic tables``: the paper's Tables 1-3 and Figure 5 from result files.

Matplotlib and the BD code are imported inside the handler so that
``csalic --help`` stays fast.
"""

from __future__ import annotations

import argparse

from ..errors import CsalicError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tables", help="build Tables 1-3 (md, tex, csv) and the rate-accuracy figure from result files",
        description="Walk the --eval folders for summary.json files written by `csalic evaluate` (suggested "
                    "layout: results/<study>/eval/<dataset>/<method>/<setting>/summary.json; each summary names "
                    "its own dataset, method and setting), compute BD-rate and BD-mAP@0.5 against the anchor and "
                    "write OUT/tables/table{1,2,3}.{md,tex,csv}, OUT/figures/rate_accuracy.{png,pdf} and "
                    "OUT/curves/<dataset>/<method>.json (CompressAI layout).")
    p.add_argument("--eval", nargs="+", required=True, metavar="DIR",
                   help="folders searched (recursively) for summary.json, or summary files")
    p.add_argument("--out", default="results", help="output root (default: %(default)s)")
    p.add_argument("--anchor", default="auto",
                   help="anchor method: auto (vvc if evaluated on every dataset, else hevc), vvc, hevc or any "
                        "evaluated method (default: %(default)s)")
    p.add_argument("--published", help="CSV/JSON of published rate-accuracy points (method,dataset,task,bpp,map50)")
    p.add_argument("--complexity", nargs="*", default=[], metavar="JSON",
                   help="outputs of `csalic complexity --json` for Table 3")
    p.add_argument("--detection-task-net", help="task network whose bbox mAP fills the detection columns "
                                                "(needed only when several were evaluated)")
    p.add_argument("--segmentation-task-net", help="task network whose mask mAP fills the segmentation columns")
    p.add_argument("--ablation-dataset", help="column group for Table 2 (default: COCO2017 if present, else the first)")
    p.add_argument("--no-paper", action="store_true", help="leave out the paper's numbers")
    p.add_argument("--no-figure", action="store_true", help="skip the rate-accuracy figure")
    _bootstrap_args(p)
    p.set_defaults(func=_tables)
    c = sub.add_parser("compare", help="is A better than B? their paired BD difference, with its interval over images",
                       description="BD-rate and BD-mAP of methods A and B against the study's anchor on every dataset "
                                   "and task, and A minus B taken on each paired bootstrap resample of the evaluation "
                                   "images, with its interval. A variant may be named without its csalic- prefix "
                                   "(csalic compare full concat).")
    c.add_argument("a", metavar="A", help="a method: a variant (full, concat, ...), a learned codec, an anchor")
    c.add_argument("b", metavar="B", help="the method A is compared with")
    src = c.add_mutually_exclusive_group()
    src.add_argument("--params", default="params.yaml",
                     help="a finished study's params file: its points and report settings (default: %(default)s)")
    src.add_argument("--eval", nargs="+", metavar="DIR", help="folders of summary.json files instead of a study")
    c.add_argument("--anchor", default=None, help="anchor method (default: the study's, or auto with --eval)")
    _bootstrap_args(c, defaults=None)
    c.set_defaults(func=_compare)
    b = sub.add_parser("bd-summary", help="print a study's BD cells as one Markdown table (what the README quotes)",
                       description="Read a study's results/<study>/metrics/bd.json (the report stage writes it) and "
                                   "print the CSA-LIC variants' BD-rate / BD-mAP of one task, a row per dataset.")
    b.add_argument("bd_json", metavar="BD_JSON", help="a study's metrics/bd.json")
    b.add_argument("--task", default="detection", choices=["detection", "segmentation", "average"],
                   help="which task's cells (default: %(default)s)")
    b.set_defaults(func=_bd_summary)


def _bootstrap_args(p: argparse.ArgumentParser, defaults: bool | None = True) -> None:
    from ..metrics.bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES

    say = "(default: %(default)s)" if defaults else "(default: the study's report settings)"
    p.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES if defaults else None,
                   help=f"paired image-bootstrap resamples for every BD interval, 0 for none {say}")
    p.add_argument("--resample-seed", type=int, default=0 if defaults else None, help=f"their seed {say}")
    p.add_argument("--level", type=float, default=DEFAULT_LEVEL if defaults else None,
                   help=f"the intervals' coverage {say}")


def _tables(args: argparse.Namespace) -> int:
    from ..evaluation.intervals import ImageBootstrap
    from ..evaluation.report import write_report

    nets = {k: v for k, v in (("detection", args.detection_task_net),
                              ("segmentation", args.segmentation_task_net)) if v}
    study, written = write_report(args.eval, args.out, published=args.published, complexity=args.complexity,
                                  anchor=args.anchor, task_nets=nets, show_paper=not args.no_paper,
                                  figure=not args.no_figure, ablation_group=args.ablation_dataset,
                                  bootstrap=ImageBootstrap(args.resamples, args.resample_seed, args.level))
    print(study.anchor_note)
    print(f"{len(study.sources)} summaries, datasets: {', '.join(study.groups)}; wrote {len(written)} files under "
          f"{args.out}: tables/, figures/, curves/")
    return 0


def _bd_summary(args: argparse.Namespace) -> int:
    from ..evaluation.report import bd_summary
    from ..io import read_json_object

    print(bd_summary(read_json_object(args.bd_json, "BD file"), args.task), end="")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from ..evaluation.intervals import ImageBootstrap
    from ..evaluation.report import collect, compare_text
    from ..names import VARIANT_NAMES

    if args.eval:
        paths, published, anchor = args.eval, None, args.anchor or "auto"
        report = {"resamples": 1000, "resample_seed": 0, "level": 0.95}
    else:
        from ..study.params import load
        from ..study.points import anchor_method, result_files

        params = load(args.params)
        paths, _ = result_files(params)
        if not paths:
            raise CsalicError(f"no evaluated points for study {params['study']!r}: run the study first")
        published, anchor, report = params["anchors"]["published"], args.anchor or anchor_method(params), params["report"]
    settings = {"resamples": args.resamples, "resample_seed": args.resample_seed, "level": args.level}
    boot = ImageBootstrap.from_settings({k: (v if settings[k] is None else settings[k]) for k, v in report.items()})
    study = collect(paths, published, anchor, bootstrap=boot)

    def method(name: str) -> str:
        return f"csalic-{name}" if name in VARIANT_NAMES and name not in study.methods else name

    print(compare_text(study, method(args.a), method(args.b)), end="")
    return 0
