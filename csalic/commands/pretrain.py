"""``csalic pretrain``: every variant's long warm-up, exported as the warm starts studies fine-tune from."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain", help="train every variant's long warm-up and export them as warm-start checkpoints",
        description="Train the warm-up job of every variant of a study with train.init: warmup (Ray tasks, "
                    "resumable, like csalic stage train --warmup), then write OUT/<variant>.pt (float16 parameters), "
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
