"""The demo study's own task network: a small Mask R-CNN trained from scratch on generated data.

No pretrained detector can be downloaded for the demo, and a random one would make
every rate-accuracy number noise.  So the demo trains an honest, small torchvision
``MaskRCNN`` (a few-layer CNN in ``BackboneWithFPN``) on the demo train split in a few
CPU minutes, and records everywhere that it is *not* the paper's task network.
It serves both tasks: boxes for detection, masks for instance segmentation.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import CheckpointError, CsalicError
from ..io import atomic_path
from ..names import DEMO_TASK_STEPS as DEFAULT_STEPS  # spelled in the torch-free names, for the CLI's --help
from .base import freeze
from .torchvision_rcnn import TorchvisionRCNN

CHECKPOINT_FORMAT = "csalic-demo-task-network/1"
DEMO_NOTE = ("the demo's own task network, trained from scratch on generated demo data; "
             "not the paper's task network")


@dataclass
class DemoNetConfig:
    """Architecture of the demo network; stored in the checkpoint so it rebuilds exactly."""

    num_classes: int = 6  # background + the demo data's five categories
    widths: tuple[int, ...] = (24, 48, 96, 128)  # stages at strides 4, 8, 16, 32
    fpn_channels: int = 64
    representation: int = 256  # box head MLP width
    mask_channels: int = 64
    min_size: int = 320  # images are scaled so the short side is this (no-op on demo images)
    max_size: int = 640
    anchor_sizes: tuple[int, ...] = (16, 32, 64, 128, 256)
    rpn_pre_nms_top_n_train: int = 600
    rpn_post_nms_top_n_train: int = 300
    rpn_pre_nms_top_n_test: int = 300
    rpn_post_nms_top_n_test: int = 100
    rpn_batch_size_per_image: int = 128
    box_batch_size_per_image: int = 128
    box_detections_per_img: int = 50

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DemoNetConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise CheckpointError(f"demo task network config has unknown fields {sorted(unknown)}")
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**d)


def _conv_bn(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Body(nn.Sequential):
    """stem (stride 2) then four stages (strides 4..32), each a strided conv and a conv."""

    def __init__(self, widths: Sequence[int]):
        layers: OrderedDict[str, nn.Module] = OrderedDict(stem=_conv_bn(3, widths[0] // 2, 2))
        cin = widths[0] // 2
        for i, w in enumerate(widths):
            layers[f"layer{i + 1}"] = nn.Sequential(_conv_bn(cin, w, 2), _conv_bn(w, w, 1))
            cin = w
        super().__init__(layers)


def build_demo_model(cfg: DemoNetConfig) -> nn.Module:
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    n = len(cfg.widths)
    backbone = BackboneWithFPN(
        _Body(cfg.widths), {f"layer{i + 1}": str(i) for i in range(n)},
        list(cfg.widths), cfg.fpn_channels,
    )  # plus a max-pooled level: strides 4, 8, 16, 32, 64
    levels = n + 1
    if len(cfg.anchor_sizes) != levels:
        raise CheckpointError(f"demo network needs {levels} anchor sizes, config has {len(cfg.anchor_sizes)}")
    anchors = AnchorGenerator(tuple((s,) for s in cfg.anchor_sizes), ((0.5, 1.0, 2.0),) * levels)
    names = [str(i) for i in range(n)]
    c = cfg.fpn_channels
    return MaskRCNN(
        backbone,
        num_classes=None,
        min_size=cfg.min_size,
        max_size=cfg.max_size,
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=cfg.rpn_pre_nms_top_n_train,
        rpn_post_nms_top_n_train=cfg.rpn_post_nms_top_n_train,
        rpn_pre_nms_top_n_test=cfg.rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_test=cfg.rpn_post_nms_top_n_test,
        rpn_batch_size_per_image=cfg.rpn_batch_size_per_image,
        box_roi_pool=MultiScaleRoIAlign(names, 7, 2),
        box_head=TwoMLPHead(c * 7 * 7, cfg.representation),
        box_predictor=FastRCNNPredictor(cfg.representation, cfg.num_classes),
        box_batch_size_per_image=cfg.box_batch_size_per_image,
        box_detections_per_img=cfg.box_detections_per_img,
        mask_roi_pool=MultiScaleRoIAlign(names, 14, 2),
        mask_head=MaskRCNNHeads(c, [cfg.mask_channels] * 2, 1),
        mask_predictor=MaskRCNNPredictor(cfg.mask_channels, cfg.mask_channels, cfg.num_classes),
    )


class DemoMaskRCNN(TorchvisionRCNN):
    """The demo network behind the task protocol; labels map to the demo's COCO category ids."""

    def __init__(self, model: nn.Module, cfg: DemoNetConfig, categories: list[int],
                 category_names: list[str] | None = None, weights: Path | None = None,
                 training: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None):
        if len(categories) != cfg.num_classes - 1:
            raise CheckpointError(
                f"demo task network has {cfg.num_classes - 1} classes but {len(categories)} categories")
        super().__init__("demo_mask_rcnn", model, "segmentation", list(categories), weights,
                         [None] + list(categories))
        self.is_demo = True
        self.config = cfg
        self.category_names = list(category_names or [])
        self.training_info = dict(training or {})
        self.metrics = dict(metrics or {})

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["source"] = "csalic.tasks.demo_net (small MaskRCNN, from scratch)"
        d["note"] = DEMO_NOTE
        d["tasks"] = ["detection", "segmentation"]
        if self.metrics:
            d["map50_uncompressed_val"] = self.metrics
        return d


# ----------------------------------------------------------------------------- checkpoint

def metrics_path(checkpoint: str | Path) -> Path:
    """The JSON of mAP@0.5 numbers written beside a demo task-network checkpoint."""
    p = Path(checkpoint)
    return p.with_name(p.stem + ".metrics.json")


def train_and_save(data: str | Path, out: str | Path, *, steps: int = DEFAULT_STEPS, seed: int = 0,
                   threads: int = 1, batch_size: int = 4, lr: float = 2e-3, progress: bool = True) -> dict[str, Any]:
    """Train the demo network on ``data``/train, measure it on ``data``/val, write the checkpoint and its metrics.

    Returns the metrics record (also written to :func:`metrics_path`).  ``threads`` is part of
    the result: another count sums in another order and trains another network.
    """
    from ..io import atomic_write_json

    if threads < 1:
        raise CsalicError(f"--threads must be positive, got {threads}")
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)  # denormals in a from-scratch net slow CPU training badly
    net = train_demo_task_network(data, steps=steps, seed=seed, batch_size=batch_size, lr=lr, progress=progress)
    print(f"trained {steps} steps on {net.training_info['train_images']} images "
          f"in {net.training_info['seconds']:.0f} s")
    metrics = evaluate_map50(net, data, split="val", progress=progress)
    net.metrics = metrics
    path = save_demo_task_network(net, out)
    record = {"checkpoint": str(path), "weights_sha256": net.weights_sha256, "note": DEMO_NOTE,
              "training": net.training_info, **metrics}
    atomic_write_json(metrics_path(path), record)
    print(f"mAP@0.5 on uncompressed {metrics['split']} ({metrics['images']} images): "
          f"bbox {metrics['map50_bbox']:.3f}, segm {metrics.get('map50_segm', float('nan')):.3f}")
    print(f"wrote {path} and {metrics_path(path)}")
    return record


def save_demo_task_network(net: DemoMaskRCNN, path: str | Path) -> Path:
    """Write state_dict + config + categories atomically, with the demo marker."""
    path = Path(path)
    ckpt = {
        "demo_task_network": True,
        "format": CHECKPOINT_FORMAT,
        "note": DEMO_NOTE,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(net.config).items()},
        "categories": list(net.categories),
        "category_names": list(net.category_names),
        "training": net.training_info,
        "metrics": net.metrics,
        "state_dict": net.model.state_dict(),
    }
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    net.weights = path
    from ..provenance import sha256_of

    net.weights_sha256 = sha256_of(path)
    return path


def load_demo_task_network(weights: Path | None = None, num_classes: int | None = None,
                           allow_random: bool = False) -> DemoMaskRCNN:
    """Registry factory for ``demo_mask_rcnn``: a checkpoint from ``csalic train-task-net``."""
    if weights is None:
        if not allow_random:
            raise CsalicError(
                "task network demo_mask_rcnn needs a checkpoint: train one with "
                "`csalic train-task-net --data DIR --out FILE` and pass FILE with --task-weights")
        cfg = DemoNetConfig(num_classes=(num_classes or DemoNetConfig.num_classes))
        return DemoMaskRCNN(build_demo_model(cfg), cfg, list(range(1, cfg.num_classes)))
    try:
        ckpt = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read demo task network checkpoint {weights}: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("demo_task_network") is not True:
        raise CheckpointError(
            f"{weights} is not a demo task network checkpoint (made by `csalic train-task-net`)")
    cfg = DemoNetConfig.from_dict(ckpt["config"])
    if num_classes is not None and num_classes != cfg.num_classes:
        raise CheckpointError(f"{weights} has {cfg.num_classes} classes, {num_classes} were requested")
    model = build_demo_model(cfg)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{weights} does not match its own config: {str(exc).splitlines()[0]}") from exc
    return DemoMaskRCNN(model, cfg, ckpt["categories"], ckpt.get("category_names"), Path(weights),
                        ckpt.get("training"), ckpt.get("metrics"))


# ----------------------------------------------------------------------------- data

@dataclass
class _Split:
    """A COCO-format split held in memory (the demo splits are small)."""

    coco: Any
    image_ids: list[int]
    images: list[Tensor]  # uint8 (3,H,W)
    targets: list[dict[str, Tensor]] = field(default_factory=list)


def _quiet():
    return contextlib.redirect_stdout(io.StringIO())


def _load_split(data: Path, split: str, cat_index: dict[int, int] | None, with_targets: bool) -> _Split:
    from PIL import Image
    from pycocotools.coco import COCO

    ann = data / "annotations" / f"instances_{split}.json"
    if not ann.is_file():
        raise CsalicError(f"{ann} not found: --data must be a COCO-format folder with "
                          f"{split}/ and annotations/instances_{split}.json (see `csalic demo-data`)")
    try:
        with _quiet():
            coco = COCO(str(ann))
    except Exception as exc:
        raise CsalicError(f"cannot read {ann}: {exc}") from exc
    ids = sorted(coco.getImgIds())
    if not ids:
        raise CsalicError(f"{ann} lists no images")
    images, targets = [], []
    for img_id in ids:
        info = coco.imgs[img_id]
        path = data / split / info["file_name"]
        try:
            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"))
        except OSError as exc:
            raise CsalicError(f"cannot read image {path}: {exc}") from exc
        images.append(torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous())
        if with_targets:
            boxes, labels, masks = [], [], []
            for a in coco.loadAnns(coco.getAnnIds(imgIds=img_id, iscrowd=False)):
                x, y, w, h = a["bbox"]
                if w < 1 or h < 1 or a["category_id"] not in cat_index:
                    continue
                boxes.append([x, y, x + w, y + h])
                labels.append(cat_index[a["category_id"]])
                masks.append(coco.annToMask(a))
            hh, ww = arr.shape[:2]
            targets.append({
                "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                "labels": torch.tensor(labels, dtype=torch.int64),
                "masks": torch.from_numpy(np.stack(masks)) if masks
                else torch.zeros((0, hh, ww), dtype=torch.uint8),
            })
    return _Split(coco, ids, images, targets)


def _hflip(image: Tensor, target: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    w = image.shape[-1]
    boxes = target["boxes"].clone()
    boxes[:, [0, 2]] = w - target["boxes"][:, [2, 0]]
    return image.flip(-1), {"boxes": boxes, "labels": target["labels"], "masks": target["masks"].flip(-1)}


# ----------------------------------------------------------------------------- train / evaluate

def train_demo_task_network(
    data: str | Path,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    batch_size: int = 4,
    lr: float = 2e-3,
    cfg: DemoNetConfig | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> DemoMaskRCNN:
    """Train from scratch on ``data/train``; deterministic for a seed on a given machine."""
    from tqdm import tqdm

    data = Path(data)
    if steps < 1 or batch_size < 1:
        raise CsalicError("--steps and --batch-size must be positive")
    ann = data / "annotations" / "instances_train.json"
    if not ann.is_file():
        raise CsalicError(f"{ann} not found: --data must be a COCO-format folder such as `csalic demo-data` writes")
    with open(ann, encoding="utf-8") as fh:
        categories = sorted(json.load(fh).get("categories", []), key=lambda c: c["id"])
    if not categories:
        raise CsalicError(f"{ann} has no categories")
    cat_ids = [int(c["id"]) for c in categories]
    cat_index = {cid: i + 1 for i, cid in enumerate(cat_ids)}
    split = _load_split(data, "train", cat_index, with_targets=True)
    short = int(np.median([min(im.shape[-2:]) for im in split.images]))
    longest = max(max(im.shape[-2:]) for im in split.images)
    cfg = cfg or DemoNetConfig()
    cfg = DemoNetConfig.from_dict({**asdict(cfg), "num_classes": len(cat_ids) + 1,
                                   "min_size": short, "max_size": max(longest, short)})

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build_demo_model(cfg)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    warmup = min(100, max(1, steps // 10))

    def lr_at(step: int) -> float:  # linear warm-up then cosine to 5 %
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, steps - warmup)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    n = len(split.images)
    order: list[int] = []
    t0 = time.monotonic()
    bar = tqdm(range(steps), desc="train-task-net", unit="step", disable=not progress, dynamic_ncols=True)
    running = None
    for step in bar:
        images, targets = [], []
        for _ in range(batch_size):
            if not order:
                order = torch.randperm(n, generator=gen).tolist()
            i = order.pop()
            im, tg = split.images[i], split.targets[i]
            if torch.rand((), generator=gen).item() < 0.5:
                im, tg = _hflip(im, tg)
            images.append(im.float() / 255.0)
            targets.append(tg)
        losses = model(images, targets)
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise CsalicError(f"demo task network training diverged at step {step} (loss {loss.item()}): "
                              "lower --lr or change --seed")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        bar.set_postfix(loss=f"{running:.3f}")
        if log and (step + 1) % max(1, steps // 10) == 0:
            log(f"step {step + 1}/{steps} loss {running:.3f}")
    bar.close()
    seconds = time.monotonic() - t0
    training = {"data": str(data), "steps": steps, "seed": seed, "batch_size": batch_size, "lr": lr,
                "train_images": n, "seconds": round(seconds, 1), "final_loss": running}
    names = [str(c.get("name", c["id"])) for c in categories]
    return DemoMaskRCNN(freeze(model), cfg, cat_ids, names, training=training)


def evaluate_map50(net, data: str | Path, split: str = "val", batch_size: int = 4,
                   progress: bool = True) -> dict[str, Any]:
    """mAP@0.5 of boxes and, if predicted, masks on uncompressed ``split`` images, scored as every
    evaluation is (:mod:`csalic.metrics.detection`), under the same keys as a ``summary.json``."""
    from tqdm import tqdm

    from ..metrics.detection import map50_all, to_coco_results

    data = Path(data)
    sp = _load_split(data, split, None, with_targets=False)
    results: list[dict[str, Any]] = []
    for start in tqdm(range(0, len(sp.images), batch_size), desc=f"evaluate {split}", disable=not progress):
        batch = [im.float() / 255.0 for im in sp.images[start:start + batch_size]]
        for img_id, out in zip(sp.image_ids[start:start + batch_size], net.predict(batch)):
            results.extend(to_coco_results(img_id, out))
    maps = map50_all(sp.coco, results, sp.image_ids)
    return {"split": split, "images": len(sp.image_ids), "detections": len(results),
            **{k: (None if v is None else round(v, 4)) for k, v in maps.items() if v is not None}}
