"""``csalic tables``: the paper's Tables 1-3 and Figure 5 from result files.

Matplotlib and the BD code are imported inside the handler so that
``csalic --help`` stays fast.
"""

from __future__ import annotations

import argparse


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
    p.set_defaults(func=_tables)
    b = sub.add_parser("bd-summary", help="print a study's BD cells as one Markdown table (what the README quotes)",
                       description="Read a study's results/<study>/metrics/bd.json (the report stage writes it) and "
                                   "print the CSA-LIC variants' BD-rate / BD-mAP of one task, a row per dataset.")
    b.add_argument("bd_json", metavar="BD_JSON", help="a study's metrics/bd.json")
    b.add_argument("--task", default="detection", choices=["detection", "segmentation", "average"],
                   help="which task's cells (default: %(default)s)")
    b.set_defaults(func=_bd_summary)


def _tables(args: argparse.Namespace) -> int:
    from ..evaluation.report import write_report

    nets = {k: v for k, v in (("detection", args.detection_task_net),
                              ("segmentation", args.segmentation_task_net)) if v}
    study, written = write_report(args.eval, args.out, published=args.published, complexity=args.complexity,
                                  anchor=args.anchor, task_nets=nets, show_paper=not args.no_paper,
                                  figure=not args.no_figure, ablation_group=args.ablation_dataset)
    print(study.anchor_note)
    print(f"{len(study.sources)} summaries, datasets: {', '.join(study.groups)}; wrote {len(written)} files under "
          f"{args.out}: tables/, figures/, curves/")
    return 0


def _bd_summary(args: argparse.Namespace) -> int:
    from ..evaluation.report import bd_summary
    from ..io import read_json_object

    print(bd_summary(read_json_object(args.bd_json, "BD file"), args.task), end="")
    return 0
