"""A task network's COCO-format predictions on an OpenImages set, scored by the Open Images protocol.

The study runs its task network on the converted set (``csalic convert-openimages``), whose JSON
records each category's OpenImages labels (``label_names``, from the category map) and each
image's OpenImages id (``oid_image_id``).  A prediction becomes one detection per mapped label and
per ancestor of it in the hierarchy, its box normalised by the image size: a challenge submission
names the ancestors itself (:mod:`csalic.metrics.oid` does not expand detections).  The
classes evaluated are the mapped labels and their ancestors; a label no category maps onto could
only score 0, and is left out as the COCO route leaves it out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable

from ..errors import CsalicError
import numpy as np

from ..metrics import oid
from ..metrics.matches import Matches


@dataclass(frozen=True)
class OidFiles:
    """The files the protocol reads, named as OpenImages ships them."""

    boxes: Path
    image_labels: Path
    hierarchy: Path
    masks_csv: Path | None = None
    mask_dir: Path | None = None

    def check(self) -> None:
        for path, what in ((self.boxes, "boxes CSV"), (self.image_labels, "human-verified image-labels CSV"),
                           (self.hierarchy, "class hierarchy JSON"), (self.masks_csv, "segmentation CSV")):
            if path is not None and not Path(path).is_file():
                raise CsalicError(f"OID protocol: {what} {path} not found (or score this set with protocol coco)")


class OidScorer:
    """``scorer(detections, image_ids)`` -> ``{"map50_bbox", "map50_segm"}`` for :func:`evaluate_codec`."""

    protocol = "oid"

    def __init__(self, files: OidFiles, coco: dict[str, Any]):
        files.check()
        self.files = files
        self.hierarchy = oid.load_hierarchy(files.hierarchy)
        self.labels: dict[int, tuple[str, ...]] = {}
        for cat in coco.get("categories", []):
            names = cat.get("label_names") or ([cat["label_name"]] if cat.get("label_name") else [])
            if not names:
                raise CsalicError(f"OID protocol: category {cat.get('id')} ({cat.get('name')}) names no OpenImages "
                                  "label: convert the set with csalic convert-openimages (it records label_names)")
            unknown = [n for n in names if n not in self.hierarchy.ancestors]
            if unknown:
                raise CsalicError(f"OID protocol: label {unknown[0]} of category {cat.get('id')} is not in the "
                                  f"hierarchy {files.hierarchy}")
            self.labels[int(cat["id"])] = tuple(sorted({a for n in names for a in self.hierarchy.ancestors[n]}))
        self.images: dict[int, tuple[str, int, int]] = {}
        for im in coco.get("images", []):
            if "oid_image_id" not in im:
                raise CsalicError(f"OID protocol: image {im.get('id')} has no oid_image_id: convert the set with "
                                  "csalic convert-openimages")
            self.images[int(im["id"])] = (str(im["oid_image_id"]), int(im["width"]), int(im["height"]))
        self.classes = sorted({lab for labs in self.labels.values() for lab in labs})

    def detections(self, results: Iterable[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
        """COCO results -> (box rows, mask rows) in the protocol's terms."""
        boxes, masks = [], []
        for r in results:
            image, w, h = self.images[int(r["image_id"])]
            x, y, bw, bh = (float(v) for v in r["bbox"])
            box = {"XMin": min(max(x / w, 0.0), 1.0), "XMax": min(max((x + bw) / w, 0.0), 1.0),
                   "YMin": min(max(y / h, 0.0), 1.0), "YMax": min(max((y + bh) / h, 0.0), 1.0)}
            for label in self.labels.get(int(r["category_id"]), ()):
                row = {"ImageID": image, "LabelName": label, "Score": float(r["score"])}
                boxes.append({**row, **box})
                if "segmentation" in r:
                    masks.append({**row, "mask": r["segmentation"]})
        return boxes, masks

    def __call__(self, results: list[dict[str, Any]], image_ids: Iterable[int], segmentation: bool | None = None
                 ) -> dict[str, float | None]:
        from ..metrics.detection import maps_of

        return maps_of(self.matches(results, image_ids, segmentation))

    def matches(self, results: list[dict[str, Any]], image_ids: Iterable[int], segmentation: bool | None = None
                ) -> dict[str, Matches]:
        """The protocol's matches per IoU type, their images named by the evaluation's (COCO) ids."""
        ids = [int(i) for i in image_ids]
        evaluated = [self.images[i][0] for i in ids]
        sizes = {self.images[i][0]: (self.images[i][2], self.images[i][1]) for i in ids}
        f = self.files
        gt = oid.load_ground_truth(f.boxes, f.image_labels, f.hierarchy, masks_csv=f.masks_csv,
                                   mask_dir=f.mask_dir, image_sizes=sizes, image_ids=evaluated, classes=self.classes)
        boxes, masks = self.detections(results)
        coco_id = {self.images[i][0]: i for i in ids}
        out = {"bbox": oid.matches(gt, boxes, "bbox")}
        if f.masks_csv is not None and segmentation is not False and (masks or segmentation):
            out["segm"] = oid.matches(gt, masks, "segm")
        return {k: _over(m, ids, coco_id) for k, m in out.items()}


def _over(m: Matches, ids: list[int], coco_id: dict[str, int]) -> Matches:
    """``m`` over every evaluated image, in the evaluation's (COCO) ids: the ground truth leaves out an
    image none of whose labels maps to a task class, but its bits still count in the resampled bpp."""
    row = {i: k for k, i in enumerate(ids)}
    where = np.array([row[coco_id[str(i)]] for i in m.image_ids], dtype=np.int64)
    positives = np.zeros((len(ids), m.positives.shape[1]), dtype=m.positives.dtype)
    positives[where] = m.positives
    return replace(m, image_ids=np.asarray(ids, dtype=np.int64), image=where[m.image], positives=positives)
