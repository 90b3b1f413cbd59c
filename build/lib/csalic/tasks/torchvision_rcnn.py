"""torchvision's COCO Faster/Mask R-CNN R50-FPN as task networks (the default, pip-installable).

Models are always built with ``weights=None, weights_backbone=None`` (nothing is ever
downloaded) and loaded from a local state_dict: the path given, or torch hub's cache
``$TORCH_HOME/hub/checkpoints/<standard torchvision filename>``.  torchvision's COCO
heads use 91 indices in which index ``i`` *is* COCO category id ``i`` (unused ids are
"N/A"), so the label mapping is the identity restricted to the 80 real ids.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor, nn

from ..errors import CsalicError
from ..provenance import sha256_of
from .base import COCO_CATEGORY_IDS, TaskNetwork, as_image_list, freeze

# Standard filenames of torchvision's COCO_V1 weights (FasterRCNN_ResNet50_FPN_Weights.COCO_V1.url, ...).
WEIGHT_FILES = {
    "tv_faster_rcnn_r50_fpn": "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth",
    "tv_mask_rcnn_r50_fpn": "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth",
}
COCO_NUM_CLASSES = 91  # background + 90 ids (10 unused)


def hub_checkpoint_dir() -> Path:
    """torch hub's local cache (honours $TORCH_HOME); searched, never downloaded into."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _find_weights(name: str, weights: Path | None, allow_random: bool) -> Path | None:
    if weights is not None:
        return weights
    cached = hub_checkpoint_dir() / WEIGHT_FILES[name]
    if cached.is_file():
        return cached
    if allow_random:
        return None
    raise CsalicError(
        f"task network {name} needs torchvision's COCO weights {WEIGHT_FILES[name]}: "
        f"put it at {cached} or pass its path with --task-weights"
    )


def _load_state_dict(model: nn.Module, path: Path, name: str) -> None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling / zip errors: the file is not a state_dict
        raise CsalicError(f"cannot read task network weights {path}: {exc}") from exc
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # torchvision reference-script checkpoints
    if not isinstance(state, dict):
        raise CsalicError(f"{path} is not a state_dict for {name}")
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches raise even when not strict
        raise CsalicError(f"{path} does not match {name}: {str(exc).splitlines()[-1].strip()} "
                          "(a fine-tuned head needs its num_classes)") from exc
    # weights=None builds plain BatchNorm2d; the released weights come from FrozenBatchNorm2d,
    # which has no num_batches_tracked buffer.  Anything else missing means a wrong file.
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        bad = (missing or result.unexpected_keys)[:3]
        raise CsalicError(
            f"{path} does not match {name} ({len(missing)} missing, "
            f"{len(result.unexpected_keys)} unexpected keys, e.g. {', '.join(bad)})"
        )


class TorchvisionRCNN(TaskNetwork):
    """A torchvision GeneralizedRCNN; ``features`` skips its resize, ``predict`` keeps it."""

    def __init__(self, name: str, model: nn.Module, kind: str, categories: list[int],
                 weights: Path | None, index_to_category: list[int | None]):
        self.name = name
        self.model = freeze(model)
        self.kind = kind
        self.categories = categories
        self.weights = weights
        self.weights_sha256 = sha256_of(weights) if weights else None
        self._index_to_category = index_to_category
        self.feature_strides = (4, 8, 16, 32, 64)

    def _normalise(self, x: Tensor) -> Tensor:
        t = self.model.transform
        mean = torch.as_tensor(t.image_mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.as_tensor(t.image_std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def features(self, x: Tensor) -> list[Tensor]:
        feats: OrderedDict[str, Tensor] = self.model.backbone(self._normalise(x))
        return list(feats.values())

    @torch.inference_mode()
    def predict(self, x: Tensor | Sequence[Tensor]) -> list[dict[str, Tensor]]:
        images = [im.to(self.device) for im in as_image_list(x)]
        outputs = self.model(images)
        lut = torch.tensor([c if c is not None else -1 for c in self._index_to_category],
                           dtype=torch.int64)
        results = []
        for out in outputs:
            labels = lut[out["labels"].cpu()]
            keep = labels >= 0  # "N/A" indices are not COCO categories
            res = {
                "boxes": out["boxes"].cpu()[keep],
                "scores": out["scores"].cpu()[keep],
                "labels": labels[keep],
            }
            if "masks" in out:
                res["masks"] = (out["masks"].cpu()[keep, 0] > 0.5)
            results.append(res)
        return results

    def describe(self) -> dict:
        d = super().describe()
        d["source"] = "torchvision " + ("maskrcnn" if self.kind == "segmentation" else "fasterrcnn") \
            + "_resnet50_fpn"
        d["random_init"] = self.weights is None
        return d


def _build(name: str, *, weights: Path | None, num_classes: int | None, allow_random: bool) -> TorchvisionRCNN:
    from torchvision.models.detection import fasterrcnn_resnet50_fpn, maskrcnn_resnet50_fpn

    path = _find_weights(name, weights, allow_random)
    n = num_classes or COCO_NUM_CLASSES
    segm = name == "tv_mask_rcnn_r50_fpn"
    builder = maskrcnn_resnet50_fpn if segm else fasterrcnn_resnet50_fpn
    model = builder(weights=None, weights_backbone=None, num_classes=n)
    if path is not None:
        _load_state_dict(model, path, name)
    if n == COCO_NUM_CLASSES:
        valid = set(COCO_CATEGORY_IDS)
        index_to_category = [i if i in valid else None for i in range(n)]
    else:
        # A fine-tuned head with its own classes: index i is reported as category id i.
        index_to_category = [None] + list(range(1, n))
    categories = [c for c in index_to_category if c is not None]
    return TorchvisionRCNN(name, model, "segmentation" if segm else "detection", categories,
                           path, index_to_category)


def tv_faster_rcnn_r50_fpn(**kw) -> TorchvisionRCNN:
    return _build("tv_faster_rcnn_r50_fpn", **kw)


def tv_mask_rcnn_r50_fpn(**kw) -> TorchvisionRCNN:
    return _build("tv_mask_rcnn_r50_fpn", **kw)
