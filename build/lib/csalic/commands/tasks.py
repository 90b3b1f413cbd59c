"""Task-network stages: ``train-task-net`` (the demo's own detector) and ``task-nets`` (list).

Imports of torch and torchvision happen inside the handlers so that ``csalic --help``
stays fast.
"""

from __future__ import annotations

import argparse

from ..names import DEMO_TASK_STEPS as DEFAULT_STEPS


def _train(args: argparse.Namespace) -> int:
    from ..tasks.demo_net import train_and_save

    train_and_save(args.data, args.out, steps=args.steps, seed=args.seed, threads=args.threads,
                   batch_size=args.batch_size, lr=args.lr, progress=not args.quiet)
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

    p = sub.add_parser("task-nets", help="list the task networks load_task_network knows",
                       description="Print the registry names accepted wherever a task network is named.")
    p.set_defaults(func=_list)
