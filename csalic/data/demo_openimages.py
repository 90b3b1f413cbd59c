"""A second generated val set, ``demo_oi``, written the way OpenImages V6 ships, so that the demo
runs the OpenImages route (``csalic convert-openimages``) and fills Table 1's second column group.

It differs from ``demo_val`` as OpenImages differs from COCO for a COCO-trained network: its
own label vocabulary (MIDs and display names), mapped onto the task network's categories by a
category map the way the MPEG VCM subsets map onto COCO's, with one label the map leaves out
(grey tiles: annotated, drawn, never evaluated); landscape 384x256 JPEGs instead of 320x320
PNGs; smaller (20-72 px), more numerous (3-8) and fainter objects over stronger texture.

It carries what the Open Images challenge protocol reads, as OpenImages does: human-verified
image-level labels (every drawn class positive; of the absent ones, two in three verified
negative and the rest left unverified), group-of boxes (on every other image the class with the
most instances, two or more, gets one ``IsGroupOf`` box around them instead of a box each, and no
instance masks, as OpenImages annotates crowds) and a hierarchy with a parent, ``Ball``, above the
red and green balls.

Files, as in the OpenImages download (names kept):
``validation/<ImageID>.jpg``, ``validation-annotations-bbox.csv``,
``validation-annotations-human-imagelabels-boxable.csv``, ``bbox_labels_600_hierarchy.json``,
``validation-annotations-object-segmentation.csv`` with ``validation-masks/<ImageID>_<label>_<BoxID>.png``,
``oidv6-class-descriptions.csv``, ``image_list.txt`` (the subset to evaluate, as VCM's lists) and
``category-map.csv``.  Same seed -> byte-identical files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import CsalicError
from ..io import atomic_write_bytes, atomic_write_text
from .demo import CATEGORIES, Style, _draw_image

# OpenImages-style labels; the last has no demo category and stays out of the category map
LABELS = [
    ("/m/0csl01", "Red ball", 1),
    ("/m/0csl02", "Green ball", 2),
    ("/m/0csl03", "Blue tile", 3),
    ("/m/0csl04", "Warning sign", 4),
    ("/m/0csl05", "Striped ball", 5),
    ("/m/0csl06", "Grey tile", None),
]
ROOT = "/m/0bl9f"  # OpenImages' root class, Entity
BALL = ("/m/0csl00", "Ball")  # a parent class with no detector category: reached through the hierarchy
_GREY_TILE = {"id": 6, "name": "grey tile", "shape": "square", "rgb": [128, 128, 128]}
STYLE = Style(categories=tuple(CATEGORIES) + (_GREY_TILE,), min_obj=20, max_obj=72, count=(3, 9),
              opacity=(0.6, 1.0), texture=6.0)
SIZE = (384, 256)
JPEG_QUALITY = 92

BOX_HEADER = ["ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax", "IsOccluded",
              "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside"]
MASK_HEADER = ["MaskPath", "ImageID", "LabelName", "BoxID", "BoxXMin", "BoxXMax", "BoxYMin", "BoxYMax",
               "PredictedIoU", "Clicks"]


@dataclass(frozen=True)
class OpenImagesFiles:
    root: Path
    images: Path
    boxes: Path
    masks_csv: Path
    masks: Path
    classes: Path
    image_list: Path
    category_map: Path
    image_labels: Path
    hierarchy: Path
    n_images: int
    n_objects: int


def files(root: str | os.PathLike) -> OpenImagesFiles:
    r = Path(root)
    return OpenImagesFiles(r, r / "validation", r / "validation-annotations-bbox.csv",
                           r / "validation-annotations-object-segmentation.csv", r / "validation-masks",
                           r / "oidv6-class-descriptions.csv", r / "image_list.txt", r / "category-map.csv",
                           r / "validation-annotations-human-imagelabels-boxable.csv",
                           r / "bbox_labels_600_hierarchy.json", 0, 0)


def hierarchy() -> dict:
    """Entity above every label, and Ball between Entity and the red and green balls."""
    leaf = [{"LabelName": mid} for mid, _, _ in LABELS]
    return {"LabelName": ROOT, "Subcategory": [{"LabelName": BALL[0], "Subcategory": leaf[:2]}, *leaf[2:]]}


def _verified(oid: str, label: str) -> bool:
    """Whether an absent class was verified absent (two in three, by a hash of image and label)."""
    return hashlib.sha256(f"{oid}/{label}".encode()).digest()[0] % 3 != 0


def _grouped(index: int, objects: list) -> int | None:
    """The category whose instances become one group-of box on this image, if any."""
    if index % 2 == 0:
        return None
    counts = {c: sum(1 for k, _ in objects if k == c) for c, _ in objects}
    best = max(sorted(counts), key=lambda c: counts[c], default=None)
    return best if best is not None and counts[best] >= 2 else None


def _image_id(seed: int, index: int) -> str:
    return hashlib.sha256(f"csalic-demo-oi/{seed}/{index}".encode()).hexdigest()[:16]


def _csv(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _norm(v: float) -> str:
    return f"{v:.6f}"


def generate_openimages_demo(out_dir: str | os.PathLike, n: int = 16, seed: int = 0) -> OpenImagesFiles:
    """Write the set; the category map is written last (it marks a complete set)."""
    if int(n) < 1:
        raise CsalicError(f"need at least one OpenImages-style image, got {n}")
    f = files(out_dir)
    w, h = SIZE
    label_of = {cid: mid for (mid, _, cid) in LABELS if cid is not None} | {_GREY_TILE["id"]: LABELS[-1][0]}
    box_rows, mask_rows, label_rows, ids = [], [], [], []
    for i in range(int(n)):
        pixels, objects = _draw_image(seed, "openimages", i, w, h, STYLE)
        oid = _image_id(seed, i)
        ids.append(oid)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="JPEG", quality=JPEG_QUALITY)
        atomic_write_bytes(f.images / f"{oid}.jpg", buf.getvalue())
        present = {label_of[c] for c, _ in objects}
        label_rows += [[oid, "verification", mid, int(mid in present)] for mid, _, _ in LABELS
                       if mid in present or _verified(oid, mid)]
        group = _grouped(i, objects)
        if group is not None:
            ys, xs = np.nonzero(np.logical_or.reduce([m for c, m in objects if c == group]))
            box = [_norm(xs.min() / w), _norm((xs.max() + 1) / w), _norm(ys.min() / h), _norm((ys.max() + 1) / h)]
            box_rows.append([oid, "xclick", label_of[group], 1, *box, 0, 0, 1, 0, 0])
        for k, (cat_id, mask) in enumerate(objects):
            if cat_id == group:
                continue
            label = label_of[cat_id]
            ys, xs = np.nonzero(mask)
            box = [_norm(xs.min() / w), _norm((xs.max() + 1) / w), _norm(ys.min() / h), _norm((ys.max() + 1) / h)]
            box_rows.append([oid, "xclick", label, 1, *box, 0, 0, 0, 0, 0])
            box_id = hashlib.sha256(f"{oid}/{k}".encode()).hexdigest()[:8]
            name = f"{oid}_{label.replace('/', '')}_{box_id}.png"
            png = io.BytesIO()
            Image.fromarray(mask.astype(np.uint8) * 255).save(png, format="PNG")
            atomic_write_bytes(f.masks / name, png.getvalue())
            mask_rows.append([name, oid, label, box_id, *box, "", ""])
    atomic_write_text(f.boxes, _csv(BOX_HEADER, box_rows))
    atomic_write_text(f.masks_csv, _csv(MASK_HEADER, mask_rows))
    atomic_write_text(f.image_labels, _csv(["ImageID", "Source", "LabelName", "Confidence"], label_rows))
    atomic_write_text(f.hierarchy, json.dumps(hierarchy(), indent=1) + "\n")
    atomic_write_text(f.classes, _csv(["LabelName", "DisplayName"],
                                      [[mid, name] for mid, name, _ in LABELS] + [list(BALL)]))
    atomic_write_text(f.image_list, "".join(f"{oid}\n" for oid in ids))
    names = {c["id"]: c["name"] for c in CATEGORIES}
    atomic_write_text(f.category_map, _csv(["LabelName", "category_id", "name"],
                                           [[mid, cid, names[cid]] for mid, _, cid in LABELS if cid is not None]))
    return OpenImagesFiles(**{**f.__dict__, "n_images": int(n), "n_objects": len(box_rows)})
