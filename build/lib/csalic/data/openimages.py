"""OpenImagesV6 as used by MPEG VCM: 5,000 detection and 5,000 segmentation images.

Two ways in: the COCO-format JSON conversions circulated with the VCM common
test conditions load directly with :func:`load_eval_set` (the same loader as
COCO val), or :func:`convert_openimages` builds that JSON from the official
CSVs, restricted to the images present in a folder and, optionally, to an
image list (the VCM subset).  Image sizes come from the image headers because
the CSVs store normalised coordinates only.

Conventions of the conversion, chosen to match pycocotools' evaluation:
image ids are 1..N in sorted ImageID order (the OpenImages id is kept as
``oid_image_id``); category ids are 1..K in class-descriptions order over the
labels that occur; boxes are pixel ``[x, y, w, h]``; ``iscrowd`` is
``IsGroupOf`` (so group boxes neither count as misses nor as false positives);
segmentation masks are resized to the image with nearest-neighbour when the PNG
differs in size, RLE-encoded, and ``iscrowd=0`` (the masks CSV has no group flag).
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import CsalicError
from ..io import atomic_write_json
from .coco import IMAGE_EXTENSIONS, CocoEvalSet, _header_size

log = logging.getLogger(__name__)

BOX_COLUMNS = ("ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax")
MASK_COLUMNS = ("MaskPath", "ImageID", "LabelName", "BoxXMin", "BoxXMax", "BoxYMin", "BoxYMax")


def load_eval_set(image_dir: str | os.PathLike, annotation_json: str | os.PathLike, **kw) -> CocoEvalSet:
    """The VCM COCO-format conversions are plain COCO instances files."""
    return CocoEvalSet(image_dir, annotation_json, **kw)


def _need_file(path: str | os.PathLike | None, what: str, hint: str) -> Path:
    if path is None or not Path(path).is_file():
        raise CsalicError(f"{what} {path} does not exist: {hint}")
    return Path(path)


def read_class_descriptions(path: str | os.PathLike) -> dict[str, str]:
    """LabelName -> DisplayName; accepts the V6 file (with header) and the older header-less one."""
    p = _need_file(path, "class-descriptions CSV", "pass oidv6-class-descriptions.csv (LabelName,DisplayName)")
    out: dict[str, str] = {}
    with open(p, newline="", encoding="utf-8") as fh:
        for i, row in enumerate(csv.reader(fh)):
            if i == 0 and [c.strip() for c in row[:2]] == ["LabelName", "DisplayName"]:
                continue
            if len(row) < 2:
                if row:
                    raise CsalicError(f"{p}:{i + 1}: expected LabelName,DisplayName, got {row!r}: "
                                      "pass the OpenImages class-descriptions CSV")
                continue
            out[row[0].strip()] = row[1].strip()
    if not out:
        raise CsalicError(f"{p} lists no classes: pass the OpenImages class-descriptions CSV")
    return out


def read_category_map(path: str | os.PathLike) -> dict[str, tuple[int, str]]:
    """LabelName -> (category id, name) of the task network's vocabulary, from ``LabelName,category_id,name``.

    The MPEG VCM subsets are evaluated with a COCO-trained network, so their labels are mapped onto
    COCO's categories; several labels may share a category, and a label left out is not evaluated.
    """
    p = _need_file(path, "category map", "pass a CSV with the columns LabelName,category_id,name")
    out: dict[str, tuple[int, str]] = {}
    names: dict[int, str] = {}
    for i, row in enumerate(_rows(p, ("LabelName", "category_id", "name"), "category map"), start=2):
        try:
            cid = int(row["category_id"])
        except (TypeError, ValueError):
            cid = 0
        name = (row["name"] or "").strip()
        if cid < 1 or not name:
            raise CsalicError(f"{p}:{i}: category_id must be a positive integer and name non-empty, "
                              f"got {row['category_id']!r}, {row['name']!r}")
        if names.setdefault(cid, name) != name:
            raise CsalicError(f"{p}:{i}: category {cid} is named both {names[cid]!r} and {name!r}")
        out[row["LabelName"].strip()] = (cid, name)
    if not out:
        raise CsalicError(f"category map {p} maps no label: one row per OpenImages label to evaluate")
    return out


def read_image_list(path: str | os.PathLike) -> list[str]:
    """ImageIDs from a list file: one per line, with or without folder and extension; '#' comments skipped."""
    p = _need_file(path, "image list", "pass a text file with one OpenImages ImageID per line")
    ids = []
    for line in p.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            ids.append(os.path.splitext(os.path.basename(line.split(",")[0].strip()))[0])
    if not ids:
        raise CsalicError(f"image list {p} is empty: pass the VCM image list")
    return ids


def _rows(path: Path, required: Iterable[str], what: str):
    fh = open(path, newline="", encoding="utf-8")
    reader = csv.DictReader(fh)
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        fh.close()
        raise CsalicError(f"{path} is not an OpenImages {what} CSV (no column {', '.join(missing)}): "
                          f"pass the {what} CSV from the OpenImages V6 download")
    try:
        yield from reader
    finally:
        fh.close()


def _scan(folder: Path, extensions: frozenset[str] | None) -> dict[str, Path]:
    """Name (stem for images, full name for masks) -> path, from one recursive listing."""
    out: dict[str, Path] = {}
    stack = [folder]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                if e.is_dir():
                    stack.append(Path(e.path))
                elif extensions is None:
                    out[e.name] = Path(e.path)
                elif os.path.splitext(e.name)[1].lower() in extensions:
                    out[os.path.splitext(e.name)[0]] = Path(e.path)
    return out


def _float(row: dict, key: str, path: Path) -> float:
    try:
        return float(row[key])
    except (TypeError, ValueError):
        raise CsalicError(f"{path}: bad {key} value {row.get(key)!r} for image {row.get('ImageID')}: "
                          "the CSV is damaged, download it again") from None


def _pixel_box(row: dict, prefix: str, w: int, h: int, path: Path) -> list[float]:
    x0, x1 = _float(row, prefix + "XMin", path) * w, _float(row, prefix + "XMax", path) * w
    y0, y1 = _float(row, prefix + "YMin", path) * h, _float(row, prefix + "YMax", path) * h
    return [round(x0, 2), round(y0, 2), round(max(x1 - x0, 0.0), 2), round(max(y1 - y0, 0.0), 2)]


def _load_mask(path: Path, w: int, h: int) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        m = im.convert("L")
        if m.size != (w, h):
            m = m.resize((w, h), Image.NEAREST)
        return np.asarray(m) > 0


def _select_images(img_dir: Path, image_list) -> tuple[dict[str, Path], dict[str, tuple[int, int]], list, list]:
    """The images to convert: (files by ImageID, sizes of the readable ones, listed-but-missing, unreadable)."""
    on_disk = _scan(img_dir, IMAGE_EXTENSIONS)
    if image_list is not None:
        wanted = sorted(set(read_image_list(image_list)))
        missing_images = [i for i in wanted if i not in on_disk]
        selected = [i for i in wanted if i in on_disk]
    else:
        missing_images, selected = [], sorted(on_disk)
    if missing_images:
        log.warning("%d listed image(s) not in %s, skipped: %s", len(missing_images), img_dir,
                    ", ".join(missing_images[:3]))
    sizes: dict[str, tuple[int, int]] = {}
    unreadable = []
    for oid in selected:
        s = _header_size(on_disk[oid])
        if isinstance(s, str):
            unreadable.append(oid)
        else:
            sizes[oid] = s
    if unreadable:
        log.warning("%d image(s) unreadable, skipped: %s", len(unreadable), ", ".join(unreadable[:3]))
    if not sizes:
        raise CsalicError(f"no usable images in {img_dir}" + (" from the image list" if image_list else "")
                          + ": check the image folder and the list")
    return on_disk, sizes, missing_images, unreadable


def _box_annotations(boxes_path: Path, sizes: dict) -> list[tuple[str, str, dict]]:
    """(ImageID, LabelName, COCO fields) per box of a selected image, in CSV order."""
    raw = []
    for row in _rows(boxes_path, BOX_COLUMNS, "boxes"):
        oid = row["ImageID"]
        if oid not in sizes:
            continue
        w, h = sizes[oid]
        box = _pixel_box(row, "", w, h, boxes_path)
        group = str(row.get("IsGroupOf", "0")).strip() == "1"
        raw.append((oid, row["LabelName"], {"bbox": box, "area": round(box[2] * box[3], 2), "iscrowd": int(group)}))
    return raw


def _mask_annotations(masks_path: Path, mask_dir, sizes: dict) -> tuple[list[tuple[str, str, dict]], list[str], int]:
    """As :func:`_box_annotations` with RLE masks; also the masks missing or unreadable, and the empty ones."""
    from pycocotools import mask as mask_utils

    raw, missing_masks, empty_masks = [], [], 0
    masks_on_disk = _scan(Path(mask_dir), None)
    for row in _rows(masks_path, MASK_COLUMNS, "segmentation masks"):
        oid = row["ImageID"]
        if oid not in sizes:
            continue
        mp = masks_on_disk.get(os.path.basename(row["MaskPath"]))
        if mp is None:
            missing_masks.append(row["MaskPath"])
            continue
        w, h = sizes[oid]
        try:
            m = _load_mask(mp, w, h)
        except OSError:
            missing_masks.append(row["MaskPath"])
            continue
        if not m.any():
            empty_masks += 1
            continue
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        raw.append((oid, row["LabelName"], {
            "bbox": _pixel_box(row, "Box", w, h, masks_path),
            "area": int(mask_utils.area(rle)),
            "segmentation": {"size": [h, w], "counts": rle["counts"].decode("ascii")},
            "iscrowd": 0,
        }))
    if missing_masks:
        log.warning("%d mask PNG(s) missing or unreadable, skipped: %s", len(missing_masks),
                    ", ".join(missing_masks[:3]))
    return raw, missing_masks, empty_masks


def _categories(raw: list, classes: dict[str, str], mapping: dict | None) -> tuple[list, dict, list, int]:
    """(annotations kept, category id by label, COCO categories, annotations of unmapped labels)."""
    unknown = sorted({lab for _, lab, _ in raw if lab not in classes})
    if unknown:
        raise CsalicError(f"{len(unknown)} label(s) not in the class descriptions (e.g. {unknown[0]}): "
                          "pass the class-descriptions CSV of the same OpenImages version")
    if mapping is not None:
        unmapped = sum(lab not in mapping for _, lab, _ in raw)
        raw = [r for r in raw if r[1] in mapping]
        cat_ids = {lab: mapping[lab][0] for lab in classes if lab in mapping}
        categories = [{"id": cid, "name": name, "supercategory": "none",
                       "label_names": sorted(lab for lab, (c, _) in mapping.items() if c == cid)}
                      for cid, name in sorted({c: n for c, n in mapping.values()}.items())]
        return raw, cat_ids, categories, unmapped
    used = {lab for _, lab, _ in raw}
    cat_ids = {lab: k + 1 for k, lab in enumerate(lab for lab in classes if lab in used)}
    categories = [{"id": i, "name": classes[lab], "supercategory": "none", "label_name": lab}
                  for lab, i in cat_ids.items()]
    return raw, cat_ids, categories, 0


def convert_openimages(
    image_dir: str | os.PathLike,
    classes_csv: str | os.PathLike,
    boxes_csv: str | os.PathLike | None = None,
    masks_csv: str | os.PathLike | None = None,
    mask_dir: str | os.PathLike | None = None,
    image_list: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    category_map: str | os.PathLike | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """OpenImages CSVs -> (COCO instances dict, summary counts); writes ``out`` atomically if given.

    Detection when ``boxes_csv`` is given, segmentation when ``masks_csv`` (and
    ``mask_dir``) are.  Images are those in ``image_dir``, restricted to
    ``image_list`` when given; listed images absent from the folder are counted
    and reported, not fatal.  With ``category_map`` the categories are the task
    network's (:func:`read_category_map`) and unmapped labels are dropped, counted.
    """
    if (boxes_csv is None) == (masks_csv is None):
        raise CsalicError("give exactly one of --boxes (detection) or --masks (segmentation)")
    img_dir = Path(image_dir)
    if not img_dir.is_dir():
        raise CsalicError(f"image folder {img_dir} does not exist: pass the folder holding the OpenImages JPEGs")
    classes = read_class_descriptions(classes_csv)
    mapping = read_category_map(category_map) if category_map is not None else None
    if masks_csv is not None:
        masks_path = _need_file(masks_csv, "masks CSV", "pass the OpenImages *-annotations-object-segmentation.csv")
        if mask_dir is None or not Path(mask_dir).is_dir():
            raise CsalicError(f"mask folder {mask_dir} does not exist: pass --mask-dir, the folder of mask PNGs")
    else:
        boxes_path = _need_file(boxes_csv, "boxes CSV", "pass the OpenImages *-annotations-bbox.csv")

    on_disk, sizes, missing_images, unreadable = _select_images(img_dir, image_list)
    ids = {oid: k + 1 for k, oid in enumerate(sorted(sizes))}
    if masks_csv is None:
        raw, missing_masks, empty_masks = _box_annotations(boxes_path, sizes), [], 0
    else:
        raw, missing_masks, empty_masks = _mask_annotations(masks_path, mask_dir, sizes)
    raw, cat_ids, categories, unmapped = _categories(raw, classes, mapping)
    annotations = []
    for oid, lab, fields in sorted(raw, key=lambda r: ids[r[0]]):  # stable: CSV order within an image
        annotations.append({"id": len(annotations) + 1, "image_id": ids[oid], "category_id": cat_ids[lab], **fields})
    coco = {
        "info": {"description": "OpenImagesV6 converted by csalic convert-openimages",
                 "task": "segmentation" if masks_csv is not None else "detection"},
        "licenses": [],
        "images": [{"id": ids[o], "file_name": on_disk[o].relative_to(img_dir).as_posix(),
                    "width": sizes[o][0], "height": sizes[o][1], "oid_image_id": o} for o in sorted(sizes)],
        "annotations": annotations,
        "categories": categories,
    }
    summary = {"images": len(sizes), "annotations": len(annotations), "categories": len(categories),
               "unmapped_annotations": unmapped,
               "missing_images": len(missing_images), "unreadable_images": len(unreadable),
               "missing_masks": len(missing_masks), "empty_masks": empty_masks}
    if out is not None:
        atomic_write_json(out, coco)
    return coco, summary
