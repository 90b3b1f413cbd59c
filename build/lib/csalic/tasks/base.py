"""The one protocol every task network follows, and the registry that builds them.

The codec's loss needs ``features(x)`` (FPN maps of a frozen network, differentiable
w.r.t. the image) and the evaluator needs ``predict(x)`` (boxes/masks in the input's
pixel coordinates with COCO category ids).  Keeping both behind one small class lets
torchvision, detectron2 and the demo's own network be swapped by name.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

from ..errors import CsalicError

# The 80 COCO category ids in ascending order (ids 12, 26, 29, 30, 45, 66, 68, 69, 71,
# 83 were never used by COCO).  detectron2's contiguous labels 0..79 follow this order.
COCO_CATEGORY_IDS: tuple[int, ...] = tuple(
    i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)
)

TASK_KINDS = ("detection", "segmentation")


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode and no parameter gradients: D_f must move the codec, never the task net."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
        p.grad = None
    return model


def as_image_list(x: Tensor | Sequence[Tensor]) -> list[Tensor]:
    """Accept a (B,3,H,W) batch or a list of (3,H,W) images, RGB in [0, 1]."""
    if isinstance(x, Tensor):
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if x.dim() != 4 or x.shape[1] != 3:
            raise CsalicError(f"expected an RGB batch of shape (B,3,H,W), got {tuple(x.shape)}")
        return list(x.unbind(0))
    images = list(x)
    for im in images:
        if im.dim() != 3 or im.shape[0] != 3:
            raise CsalicError(f"expected RGB images of shape (3,H,W), got {tuple(im.shape)}")
    return images


class TaskNetwork(ABC):
    """A frozen detector/segmenter seen through the two calls CSA-LIC needs.

    Attributes: ``name`` (registry name), ``kind`` ("detection" or "segmentation"),
    ``categories`` (the COCO category ids it can predict; ``predict`` labels are
    these ids, never internal indices), ``feature_strides`` (stride of each level
    ``features`` returns), ``weights`` (path or None), ``is_demo``.
    """

    name: str
    kind: str
    categories: list[int]
    feature_strides: tuple[int, ...]
    weights: Path | None = None
    weights_sha256: str | None = None
    is_demo: bool = False

    @abstractmethod
    def features(self, x: Tensor) -> list[Tensor]:
        """FPN levels (fine to coarse) of an RGB batch in [0,1], normalised as the
        network expects but not resized; differentiable w.r.t. ``x``."""

    @abstractmethod
    def predict(self, x: Tensor | Sequence[Tensor]) -> list[dict[str, Tensor]]:
        """Per image: ``boxes`` (N,4 xyxy, input pixels), ``scores``, ``labels``
        (COCO category ids) and, for segmentation, ``masks`` (N,H,W bool)."""

    def to(self, device: str | torch.device) -> "TaskNetwork":
        self.model.to(device)  # type: ignore[attr-defined]
        return self

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device  # type: ignore[attr-defined]

    def describe(self) -> dict[str, Any]:
        """Provenance recorded with every result that used this network."""
        return {
            "name": self.name,
            "kind": self.kind,
            "weights": str(self.weights) if self.weights else None,
            "weights_sha256": self.weights_sha256,
            "demo_task_network": self.is_demo,
            "num_categories": len(self.categories),
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} kind={self.kind} weights={self.weights}>"


Factory = Callable[..., TaskNetwork]
_REGISTRY: dict[str, tuple[str, str]] = {
    # name: (module, factory function)
    "tv_faster_rcnn_r50_fpn": ("csalic.tasks.torchvision_rcnn", "tv_faster_rcnn_r50_fpn"),
    "tv_mask_rcnn_r50_fpn": ("csalic.tasks.torchvision_rcnn", "tv_mask_rcnn_r50_fpn"),
    "d2_faster_rcnn_x101_fpn": ("csalic.tasks.detectron2_rcnn", "d2_faster_rcnn_x101_fpn"),
    "d2_mask_rcnn_x101_fpn": ("csalic.tasks.detectron2_rcnn", "d2_mask_rcnn_x101_fpn"),
    "demo_mask_rcnn": ("csalic.tasks.demo_net", "load_demo_task_network"),
}


def available_task_networks() -> list[str]:
    return sorted(_REGISTRY)


def load_task_network(
    name: str,
    weights: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    num_classes: int | None = None,
    *,
    allow_random: bool = False,
) -> TaskNetwork:
    """Build a frozen task network by registry name.

    Weights are required (the paper's configuration): a missing file is a one-line
    :class:`CsalicError` naming the file and where to put it.  ``allow_random=True``
    builds randomly initialised networks, for tests and shape checks only.
    """
    if name not in _REGISTRY:
        raise CsalicError(
            f"unknown task network {name!r}; choose one of: {', '.join(available_task_networks())}"
        )
    import importlib

    module, fn = _REGISTRY[name]
    factory: Factory = getattr(importlib.import_module(module), fn)
    if weights is not None:
        weights = Path(weights).expanduser()
        if not weights.is_file():
            raise CsalicError(f"task network weights {weights} not found (given for {name})")
    net = factory(weights=weights, num_classes=num_classes, allow_random=allow_random)
    net.to(device)
    return net
