"""``csalic sweep``: train many (variant, λ) jobs as Ray tasks; ``csalic pretrain``: the demo's warm starts."""

from __future__ import annotations

import argparse

from ..names import VARIANT_NAMES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="train variants x λ as Ray tasks (local instance or RAY_ADDRESS)",
        description="Train every (variant, λ) job of the study as a Ray task: one GPU per task when the cluster "
                    "has GPUs, CPUs otherwise. Joins RAY_ADDRESS (or ray.address) if set, else a local instance "
                    "shared by all sweeps running on this machine. Finished jobs are skipped; failed ones are "
                    "retried and resume from their checkpoint; the exit status is 1 if any job kept failing.",
    )
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--variants", nargs="+", choices=VARIANT_NAMES,
                   help="subset of variants (default: params variants)")
    p.add_argument("--lambdas", nargs="+", type=float, help="subset of λ (default: params lambdas)")
    p.add_argument("--max-steps", type=int, help="override train.max_steps")
    p.add_argument("--warmup", action="store_true",
                   help="train only the variants' warm-up jobs (train.init: warmup), which every λ fine-tunes")
    p.add_argument("--report", help="write the sweep report (JSON) here")
    p.add_argument("--no-track", action="store_true", help="do not log to MLflow")
    p.set_defaults(func=_run)

    p = sub.add_parser(
        "pretrain", help="train every variant's long warm-up and export them as warm-start checkpoints",
        description="Train the warm-up job of every variant of a study with train.init: warmup (Ray tasks, "
                    "resumable, like csalic sweep --warmup), then write OUT/<variant>.pt (float16 parameters), "
                    "OUT/provenance.json and OUT/README.md. Studies with train.init: pretrained fine-tune each λ "
                    "from them. The demo's come from: csalic pretrain --params config/pretrain.yaml.")
    p.add_argument("--params", default="config/pretrain.yaml", help="study to pretrain (default: %(default)s)")
    p.add_argument("--out", default="pretrained/demo", help="output folder (default: %(default)s)")
    p.add_argument("--export-only", action="store_true", help="only export warm-ups that have already finished")
    p.add_argument("--no-track", action="store_true", help="do not log to MLflow")
    p.add_argument("--note", default="", help="a sentence of provenance to add to OUT/README.md and provenance.json")
    p.set_defaults(func=_pretrain)


def _pretrain(args: argparse.Namespace) -> int:
    from ..study import layout
    from ..study import params as P
    from ..study.pretrain import export, pretrain

    params = P.load(args.params)
    if not args.export_only and not layout.train_manifest(params).is_file() and params["mode"] == "demo":
        from ..data.demo import generate_demo

        d = params["data"]["demo"]
        generate_demo(layout.demo_data(params), n_train=d["train"], n_val=d["val"],
                      size=(d["width"], d["height"]), seed=params["seed"])
    written = (export(params, args.out, args.params, args.note) if args.export_only
               else pretrain(params, args.out, args.params, track=not args.no_track, note=args.note))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _run(args: argparse.Namespace) -> int:
    from ..study import params as P
    from ..study.sweep import sweep_stage

    done = sweep_stage(P.load(args.params), args.variants, args.lambdas, args.max_steps, warmup=args.warmup,
                       track=not args.no_track, report_path=args.report)
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
