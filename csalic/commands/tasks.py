"""Task-network stages: ``train-task-net`` (the demo's own detector) and ``task-nets`` (list).

Imports of torch and torchvision happen inside the handlers so that ``csalic --help``
stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..names import DEMO_TASK_STEPS as DEFAULT_STEPS


def _train(args: argparse.Namespace) -> int:
    from ..tasks.demo_net import train_and_save

    train_and_save(args.data, args.out, steps=args.steps, seed=args.seed, threads=args.threads,
                   batch_size=args.batch_size, lr=args.lr, progress=not args.quiet)
    return 0


def _pretrain(args: argparse.Namespace) -> int:
    import shlex

    from ..study import layout
    from ..study import params as P
    from ..tasks import warm_start
    from ..tasks.demo_net import metrics_path, train_and_save

    params = P.load(args.params)
    if params["mode"] != "demo" or params["task"]["name"] != "demo_mask_rcnn":
        raise SystemExit(f"error: {args.params}: pretrain-task-net trains the demo network "
                         "(mode: demo, task.name: demo_mask_rcnn)")
    data = layout.demo_data(params)
    if not (data / "annotations" / "instances_train.json").is_file():
        from ..data.demo import generate_demo

        d = params["data"]["demo"]
        generate_demo(data, n_train=d["train"], n_val=d["val"], size=(d["width"], d["height"]), seed=params["seed"])
    t = params["task"]
    weights = Path(args.out) / warm_start.WEIGHTS
    record = train_and_save(data, weights, steps=t["demo_steps"], seed=params["seed"],
                            threads=int(t.get("demo_threads", 1)), progress=not args.quiet, **warm_start.TRAINER)
    metrics_path(weights).unlink(missing_ok=True)  # provenance.json holds these numbers
    command = "csalic pretrain-task-net " + shlex.join(["--params", args.params, "--out", args.out])
    written = warm_start.export(params, record, weights, args.out, data, command)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _list(args: argparse.Namespace) -> int:
    from ..tasks import available_task_networks

    for name in available_task_networks():
        print(name)
    return 0



def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-task-net", help="train the demo's own task network (small Mask R-CNN) on generated data",
        description="Train a small Mask R-CNN from scratch on DATA/train (COCO format, e.g. from `csalic "
                    "demo-data`), report its mAP@0.5 (bbox and segm) on the uncompressed DATA/val images, and "
                    "write the checkpoint (load it as task network demo_mask_rcnn) plus FILE's .metrics.json.  "
                    "This is the demo's own task network, not the paper's.")
    p.add_argument("--data", required=True, metavar="DIR", help="COCO-format folder with train/, val/, annotations/")
    p.add_argument("--out", required=True, metavar="FILE", help="checkpoint to write (e.g. results/demo/task_net.pt)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, metavar="N",
                   help=f"optimiser steps (default {DEFAULT_STEPS})")
    p.add_argument("--batch-size", type=int, default=4, metavar="N", help="images per step (default 4)")
    p.add_argument("--lr", type=float, default=2e-3, help="AdamW peak learning rate (default 2e-3)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="CPU threads for torch (default 1: deterministic, and on a busy 2-core machine "
                        "several times faster than 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_train)

    p = sub.add_parser(
        "pretrain-task-net", help="train the demo task network once, as the warm start demo studies install",
        description="Train the demo network at a study's settings (task.demo_steps, task.demo_threads, seed; "
                    "generating its data first if need be) and write OUT/demo_task_net.pt, OUT/provenance.json "
                    "and OUT/README.md. A study whose task.warm_start is OUT copies these weights instead of "
                    "training when its settings, training data and csalic/tasks/demo_net.py match the provenance.")
    p.add_argument("--params", default="params.yaml", help="study whose network to train (default: %(default)s)")
    p.add_argument("--out", default="pretrained/demo_task_net", help="output folder (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_pretrain)

    p = sub.add_parser("task-nets", help="list the task networks load_task_network knows",
                       description="Print the registry names accepted wherever a task network is named.")
    p.set_defaults(func=_list)
