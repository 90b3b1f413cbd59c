"""Task-network stages: ``train-task-net`` (the demo's own detector) and ``task-nets`` (list).

Imports of torch and torchvision happen inside the handlers so that ``csalic --help``
stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def metrics_path(checkpoint: str | Path) -> Path:
    """The JSON of mAP@0.5 numbers written beside a demo task-network checkpoint."""
    p = Path(checkpoint)
    return p.with_name(p.stem + ".metrics.json")


def _train(args: argparse.Namespace) -> int:
    import torch

    from ..errors import CsalicError
    from ..io import atomic_write_json
    from ..tasks.demo_net import (DEMO_NOTE, evaluate_map50, save_demo_task_network,
                                  train_demo_task_network)

    if args.threads < 1:
        raise CsalicError(f"--threads must be positive, got {args.threads}")
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # denormals in a from-scratch net slow CPU training badly
    net = train_demo_task_network(args.data, steps=args.steps, seed=args.seed, batch_size=args.batch_size,
                                  lr=args.lr, progress=not args.quiet)
    print(f"trained {args.steps} steps on {net.training_info['train_images']} images "
          f"in {net.training_info['seconds']:.0f} s")
    metrics = evaluate_map50(net, args.data, split="val", progress=not args.quiet)
    net.metrics = metrics
    out = save_demo_task_network(net, args.out)
    record = {"checkpoint": str(out), "weights_sha256": net.weights_sha256, "note": DEMO_NOTE,
              "training": net.training_info, **metrics}
    atomic_write_json(metrics_path(out), record)
    print(f"mAP@0.5 on uncompressed {metrics['split']} ({metrics['images']} images): "
          f"bbox {metrics['bbox_map50']:.3f}, segm {metrics.get('segm_map50', float('nan')):.3f}")
    print(f"wrote {out} and {metrics_path(out)}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from ..tasks import available_task_networks

    for name in available_task_networks():
        print(name)
    return 0


# Kept in sync by hand with csalic.tasks.demo_net.DEFAULT_STEPS, so --help does not import torch.
DEFAULT_STEPS = 300


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
