"""Data: the COCO train filter and manifests, training crops, evaluation sets, generated demo data.

``crops`` imports torch, so its names load lazily: ``csalic filter-coco`` and
``csalic demo-data`` start without paying for torch.
"""

from __future__ import annotations

from .coco import (
    RULES,
    CocoEvalSet,
    EvalImage,
    FilterResult,
    ManifestRow,
    filter_coco,
    keep_size,
    load_coco_json,
    read_manifest,
    summary_path,
    write_manifest,
)
from .demo import CATEGORIES, DemoData, generate_demo
from .openimages import convert_openimages, load_eval_set

_LAZY = {"RandomCropDataset", "EpochShuffleSampler", "make_loader", "seed_worker", "load_image", "to_rgb_float"}


def __getattr__(name: str):
    if name in _LAZY:
        from . import crops

        return getattr(crops, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "RULES", "CocoEvalSet", "EvalImage", "FilterResult", "ManifestRow", "filter_coco", "keep_size",
    "load_coco_json", "read_manifest", "summary_path", "write_manifest",
    "CATEGORIES", "DemoData", "generate_demo", "convert_openimages", "load_eval_set",
    *sorted(_LAZY),
]
