"""mAP@0.5 under the Open Images (OID) challenge protocol, for boxes and instance masks.

OpenImagesV6 numbers in the paper come from the OID challenge evaluation, which is
not COCO's.  Scoring OID detections with pycocotools gives a different number, so
the protocol is implemented here from its published definition (the Open Images
Challenge evaluation page; TF Object Detection API's OID challenge evaluator;
CompressAI-Vision), at IoU 0.5:

1. **Verified image-level labels.**  A class is evaluated on an image only where it
   is verified there: the image's positive and negative image-level labels and the
   classes of its ground-truth boxes (all after hierarchy expansion).  A detection
   of any other class is ignored (neither TP nor FP); an image with no entry at all
   evaluates nothing.  COCO evaluates every class on every image.
2. **Group-of boxes** (``IsGroupOf = 1``).  Detections are first matched greedily,
   by score, to non-group-of boxes of their class: a detection's best box by IoU,
   if IoU >= 0.5 and the box is not yet taken, makes it a TP (a taken best box
   leaves it unmatched, as in VOC).  Unmatched detections then go to the group-of
   box with the largest intersection over the *detection's* area (IoA), if
   >= 0.5: all detections inside one group-of box are ONE TP carrying the highest
   score among them, the others are ignored.  A group-of box is one ground-truth
   instance (undetected: one false negative).  COCO's ``iscrowd`` regions instead
   count for nothing (matches ignored, no instance), and COCO matches a detection
   to the best box *not yet taken*.
3. **Class hierarchy** (``bbox_labels_600_hierarchy.json``).  Ground-truth boxes
   and positive image-level labels are duplicated to every ancestor class (never
   the root ``Entity``), negative labels to every descendant.  Detections are not
   expanded: the detector is expected to output the ancestors itself.  ``Part``
   keys are read as classes of their own with no link to their owner.
   ``hierarchy=None`` evaluates a flat label set.
4. **AP**: detections of a class over all images sorted by score (ties keep the
   input order), precision made non-increasing (the maximum at any recall >= r),
   summed over every point where recall changes -- the VOC 2010+ "all points"
   area, not COCO's 101 recall samples (the two differ by at most 0.01 per class).
   A class with no positive instance in the evaluated images is left out; mAP is
   the mean over the others; a class with positives and no detections has AP 0.
   A detections file with a header and no rows is therefore valid and scores 0.0.

Instance segmentation follows the OID segmentation challenge: instances are the
masks of the segmentation CSV (PNGs resized to the image size, nearest neighbour),
matched by mask IoU; group-of boxes of the box CSV become box-shaped regions
matched by mask IoA.  Boxes are normalised to [0, 1]; masks need image sizes,
taken from ``image_sizes`` or from the detections' masks.  Bad input raises
:class:`~csalic.errors.CsalicError` with one line.
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from ..errors import CsalicError
from .matches import Matches

IOU_THRESHOLD = 0.5
IOU_TYPES = ("bbox", "segm")
BOX = ("XMin", "XMax", "YMin", "YMax")
BOX_COLUMNS = ("ImageID", "LabelName", *BOX, "IsGroupOf")
LABEL_COLUMNS = ("ImageID", "LabelName", "Confidence")
MASK_COLUMNS = ("MaskPath", "ImageID", "LabelName")
DETECTION_COLUMNS = ("ImageID", "LabelName", "Score", *BOX)
SEGM_DETECTION_COLUMNS = ("ImageID", "LabelName", "Score", "Mask", "ImageWidth", "ImageHeight")
_TEXT = {c: str for c in ("ImageID", "LabelName", "MaskPath", "Mask")}

Source = str | Path | pd.DataFrame


# ----------------------------------------------------------------------------- hierarchy

@dataclass(frozen=True)
class Hierarchy:
    """Per class: itself and its ancestors (root excluded), itself and its descendants."""

    ancestors: dict[str, tuple[str, ...]]
    descendants: dict[str, tuple[str, ...]]


def load_hierarchy(source: str | Path | Mapping) -> Hierarchy:
    """Read the nested ``{"LabelName", "Subcategory": [...]}`` tree (a path or the parsed dict)."""
    tree = source if isinstance(source, Mapping) else _read_json(source, "hierarchy")
    up: dict[str, set[str]] = {}

    def walk(node: Any, path: tuple[str, ...] | None) -> None:  # path None: the root, no class of its own
        if not isinstance(node, Mapping) or not isinstance(node.get("LabelName"), str):
            raise CsalicError(f"hierarchy {_name(source)}: a node has no LabelName: give the OID "
                              "bbox_labels_600_hierarchy.json format")
        label = node["LabelName"]
        up.setdefault(label, set()).update(path or ())
        for child in node.get("Subcategory", []):
            walk(child, () if path is None else path + (label,))
        for part in node.get("Part", []):
            walk(part, ())

    walk(tree, None)
    down: dict[str, set[str]] = {label: {label} for label in up}
    for label, ancestors in up.items():
        for a in ancestors:
            down[a].add(label)
    return Hierarchy({k: (k, *sorted(v - {k})) for k, v in up.items()},
                     {k: (k, *sorted(v - {k})) for k, v in down.items()})


def _check_known(hierarchy: Hierarchy | None, labels: pd.Series, what: str) -> None:
    if hierarchy is None or labels.empty:
        return
    unknown = ~labels.isin(list(hierarchy.ancestors))
    if unknown.any():
        raise CsalicError(f"{what}: label {labels[unknown].iloc[0]!r} is not in the class hierarchy: use the "
                          "hierarchy's LabelName MIDs (e.g. /m/01g317) or evaluate without a hierarchy")


def _expand(frame: pd.DataFrame, mapping: Mapping[str, tuple[str, ...]]) -> pd.DataFrame:
    out = frame.assign(LabelName=frame["LabelName"].map(mapping))
    return out.explode("LabelName", ignore_index=True)


# ----------------------------------------------------------------------------- reading

def _why(exc: BaseException) -> str:
    """An exception's first line, or its type when it has no message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _name(source: Any) -> str:
    return "(in memory)" if isinstance(source, (pd.DataFrame, Mapping, list)) else str(source)


def _read_json(path: str | Path, what: str) -> Any:
    p = Path(path)
    if not p.is_file():
        raise CsalicError(f"{what} {p} not found")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CsalicError(f"{what} {p} is not readable JSON ({_why(exc)})") from None


def _read_csv(source: Source, what: str, required: Iterable[str]) -> pd.DataFrame:
    """A CSV (or a DataFrame) with the ``required`` columns; one-line errors otherwise."""
    required = tuple(required)
    if isinstance(source, pd.DataFrame):
        frame, where = source.copy(), what
    else:
        p = Path(source)
        where = f"{what} {p}"
        if not p.is_file():
            raise CsalicError(f"{where} not found")
        try:
            frame = pd.read_csv(p, dtype=_TEXT)
        except pd.errors.EmptyDataError:
            raise CsalicError(f"{where} is empty (not even a header line): write at least the header "
                              f"{','.join(required)}") from None
        except (OSError, ValueError) as exc:  # ParserError and UnicodeDecodeError are ValueErrors
            raise CsalicError(f"{where} is not a readable CSV ({_why(exc)})") from None
    for column in required:
        if column not in frame.columns:
            raise CsalicError(f"{where} has no column {column}: it needs {', '.join(required)}")
    for column in ("ImageID", "LabelName"):
        if column in frame.columns:
            frame[column] = frame[column].astype(str)
    return frame.reset_index(drop=True)


def _row(what: str, source: Any, i: int) -> str:
    """Where row ``i`` is: a file's line (header = line 1) or a frame's row."""
    return f"{what} {source} line {i + 2}" if not isinstance(source, (pd.DataFrame, list)) else f"{what} row {i}"


def _numbers(frame: pd.DataFrame, column: str, what: str, source: Any) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise CsalicError(f"{_row(what, source, int(bad[0]))}: {column} {frame[column].iloc[bad[0]]!r} is not a number")
    return values


def _boxes(frame: pd.DataFrame, what: str, source: Any) -> np.ndarray:
    """(N, 4) x0, y0, x1, y1 from XMin/XMax/YMin/YMax, checked to be normalised boxes."""
    x0, x1, y0, y1 = (_numbers(frame, c, what, source) for c in BOX)
    bad = np.flatnonzero(~((0 <= x0) & (x0 <= x1) & (x1 <= 1) & (0 <= y0) & (y0 <= y1) & (y1 <= 1)))
    if bad.size:
        i = int(bad[0])
        raise CsalicError(f"{_row(what, source, i)}: box XMin={x0[i]:g} XMax={x1[i]:g} YMin={y0[i]:g} YMax={y1[i]:g} "
                          "is not inside [0, 1] with min <= max: give coordinates normalised by the image size")
    return np.stack([x0, y0, x1, y1], axis=1).reshape(-1, 4)


def _image_labels(source: Source | None) -> pd.DataFrame:
    if source is None:
        return pd.DataFrame({"ImageID": pd.Series(dtype=str), "LabelName": pd.Series(dtype=str),
                             "positive": pd.Series(dtype=bool)})
    frame = _read_csv(source, "image-labels CSV", LABEL_COLUMNS)
    conf = _numbers(frame, "Confidence", "image-labels CSV", source)
    bad = np.flatnonzero((conf != 0) & (conf != 1))
    if bad.size:
        raise CsalicError(f"{_row('image-labels CSV', source, int(bad[0]))}: Confidence {conf[bad[0]]:g} "
                          "is neither 1 (verified positive) nor 0 (verified negative)")
    return pd.DataFrame({"ImageID": frame["ImageID"], "LabelName": frame["LabelName"], "positive": conf == 1})


# ----------------------------------------------------------------------------- ground truth

@dataclass(frozen=True, eq=False)
class GroundTruth:
    """The evaluated images' expanded instances and verified classes, as integer codes.

    ``boxes``: image, label (codes), x0, y0, x1, y1, group, sorted by image; ``masks``
    (segmentation only): image, label, path; ``verified``: sorted ``image * n_classes + label``.
    """

    image_ids: pd.Index
    classes: pd.Index
    boxes: pd.DataFrame
    masks: pd.DataFrame | None
    verified: np.ndarray
    hierarchy: Hierarchy | None
    mask_dir: Path | None
    image_sizes: dict[str, tuple[int, int]]

    def positives(self, iou_type: str = "bbox") -> np.ndarray:
        """Ground-truth instances per class code (group-of boxes count one each)."""
        n = len(self.classes)
        if iou_type == "segm" and self.masks is None:
            raise CsalicError("segm evaluation needs the segmentation CSV and its mask folder (masks_csv, mask_dir)")
        group = self.boxes["label"].to_numpy()[self.boxes["group"].to_numpy()]
        if iou_type == "segm":
            return np.bincount(self.masks["label"].to_numpy(), minlength=n) + np.bincount(group, minlength=n)
        return np.bincount(self.boxes["label"].to_numpy(), minlength=n)


def load_ground_truth(boxes_csv: Source, image_labels_csv: Source | None, hierarchy_json: Any = None, *,
                      masks_csv: Source | None = None, mask_dir: str | Path | None = None,
                      image_sizes: Mapping[str, tuple[int, int]] | None = None,
                      image_ids: Iterable[str] | None = None,
                      classes: Iterable[str] | None = None) -> GroundTruth:
    """Read the OID box, image-label (and segmentation) CSVs and expand them over the hierarchy.

    Each ``*_csv`` is a path or a DataFrame with the same columns; ``hierarchy_json`` a path, the
    parsed dict or None (flat); ``image_sizes`` maps ImageID -> (height, width); ``image_ids``
    restricts the evaluated images (default: every image named in the files); ``classes`` the
    evaluated classes after expansion (default: all), e.g. those a mapped detector can name.
    """
    hierarchy = load_hierarchy(hierarchy_json) if hierarchy_json is not None else None
    raw = _read_csv(boxes_csv, "boxes CSV", BOX_COLUMNS)
    xyxy = _boxes(raw, "boxes CSV", boxes_csv)
    boxes = pd.DataFrame({"ImageID": raw["ImageID"], "LabelName": raw["LabelName"],
                          **{k: xyxy[:, j] for j, k in enumerate(("x0", "y0", "x1", "y1"))},
                          "group": pd.to_numeric(raw["IsGroupOf"], errors="coerce").to_numpy() == 1})
    labels = _image_labels(image_labels_csv)
    masks = None
    if masks_csv is not None:
        if mask_dir is None or not Path(mask_dir).is_dir():
            raise CsalicError(f"mask folder {mask_dir} not found: a segmentation CSV needs the folder of its "
                              "mask PNGs (mask_dir, --mask-dir)")
        masks = _read_csv(masks_csv, "masks CSV", MASK_COLUMNS)[list(MASK_COLUMNS)]
    for frame, what, source in ((boxes, "boxes CSV", boxes_csv), (labels, "image-labels CSV", image_labels_csv),
                                (masks, "masks CSV", masks_csv)):
        if frame is not None:
            _check_known(hierarchy, frame["LabelName"], f"{what} {_name(source)}")
    if image_ids is not None:
        keep = {str(i) for i in image_ids}
        boxes, labels = boxes[boxes["ImageID"].isin(keep)], labels[labels["ImageID"].isin(keep)]
        masks = masks[masks["ImageID"].isin(keep)] if masks is not None else None
    return _build(boxes, labels, masks, hierarchy, mask_dir, image_sizes, classes)


def _build(boxes, labels, masks, hierarchy, mask_dir, image_sizes, keep=None) -> GroundTruth:
    if hierarchy is not None:
        boxes = _expand(boxes, hierarchy.ancestors)
        masks = _expand(masks, hierarchy.ancestors) if masks is not None else None
        labels = pd.concat([_expand(labels[labels["positive"]], hierarchy.ancestors),
                            _expand(labels[~labels["positive"]], hierarchy.descendants)], ignore_index=True)
    if keep is not None:
        keep = set(keep)
        boxes, labels = boxes[boxes["LabelName"].isin(keep)], labels[labels["LabelName"].isin(keep)]
        masks = masks[masks["LabelName"].isin(keep)] if masks is not None else None
    frames = [f for f in (boxes, labels, masks) if f is not None]
    image_ids = pd.Index(sorted(set().union(*(f["ImageID"] for f in frames))), dtype=object)
    classes = pd.Index(sorted(set().union(*(f["LabelName"] for f in frames))), dtype=object)

    def coded(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.assign(image=image_ids.get_indexer(frame["ImageID"]),
                           label=classes.get_indexer(frame["LabelName"]))
        return out.sort_values("image", kind="stable").reset_index(drop=True)

    boxes = coded(boxes)
    masks = coded(masks) if masks is not None else None
    keys = [f["image"].to_numpy(np.int64) * len(classes) + f["label"].to_numpy(np.int64)
            for f in (boxes, coded(labels), masks) if f is not None]
    sizes = {str(k): (int(v[0]), int(v[1])) for k, v in (image_sizes or {}).items()}
    return GroundTruth(image_ids, classes, boxes, masks, np.unique(np.concatenate(keys)), hierarchy,
                       Path(mask_dir) if mask_dir is not None else None, sizes)


# ----------------------------------------------------------------------------- detections

def encode_challenge_mask(mask: np.ndarray) -> str:
    """A bool (H, W) mask in the challenge's submission encoding: base64(zlib(COCO RLE counts))."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return base64.b64encode(zlib.compress(rle["counts"], zlib.Z_BEST_COMPRESSION)).decode("ascii")


def decode_challenge_mask(text: str, height: int, width: int) -> dict:
    """The challenge encoding back to a COCO RLE ``{"size": [h, w], "counts": bytes}``."""
    return {"size": [int(height), int(width)], "counts": zlib.decompress(base64.b64decode(text))}


def read_detections(path: str | Path, iou_type: str = "bbox") -> pd.DataFrame:
    """A challenge submission CSV as the frame :func:`evaluate` takes.

    bbox: ImageID,LabelName,Score,XMin,XMax,YMin,YMax; segm: ImageID,LabelName,Score,Mask,ImageWidth,
    ImageHeight (Mask in the challenge encoding, decoded into a ``mask`` column of COCO RLEs).  A file with
    a header and no rows is no detections (mAP 0); a 0-byte file or one without a header is an error.
    """
    if iou_type not in IOU_TYPES:
        raise CsalicError(f"iou_type must be one of {', '.join(IOU_TYPES)}, got {iou_type!r}")
    columns = SEGM_DETECTION_COLUMNS if iou_type == "segm" else DETECTION_COLUMNS
    frame = _read_csv(path, "detections CSV", columns)
    frame["Score"] = _numbers(frame, "Score", "detections CSV", path)
    if iou_type == "bbox":
        _boxes(frame, "detections CSV", path)
    else:
        w = _numbers(frame, "ImageWidth", "detections CSV", path).astype(int)
        h = _numbers(frame, "ImageHeight", "detections CSV", path).astype(int)
        masks = []
        for i, text in enumerate(frame["Mask"]):
            try:
                masks.append(decode_challenge_mask(text, h[i], w[i]))
            except (TypeError, ValueError, zlib.error):
                raise CsalicError(f"{_row('detections CSV', path, i)}: Mask is not base64 of a zlib-compressed "
                                  "COCO RLE (the challenge's encoding)") from None
        frame["mask"] = masks
    return frame


def _detection_frame(detections: Any, iou_type: str) -> pd.DataFrame:
    columns = ("ImageID", "LabelName", "Score", "mask") if iou_type == "segm" else DETECTION_COLUMNS
    if isinstance(detections, pd.DataFrame):
        frame = detections
    else:
        frame = pd.DataFrame(list(detections))
        if frame.empty:
            frame = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return _read_csv(frame, "detections", columns)


# ----------------------------------------------------------------------------- matching

def _overlap(a: np.ndarray, b: np.ndarray, over_a: bool = False) -> np.ndarray:
    """(len(a), len(b)) IoU of x0y0x1y1 boxes, or intersection over a's area with ``over_a``."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0.0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)[:, None]
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)[None, :]
    denom = np.broadcast_to(area_a, inter.shape) if over_a else area_a + area_b - inter
    return np.divide(inter, denom, out=np.zeros_like(inter), where=denom > 0)


def _assign(det_label: np.ndarray, iou: np.ndarray, gt_label: np.ndarray, ioa: np.ndarray,
            group_label: np.ndarray) -> np.ndarray:
    """One image, detections sorted by score: 1 TP, 0 FP, -1 ignored (inside an already-counted group-of)."""
    status = np.zeros(len(det_label), dtype=np.int8)
    rows = np.arange(len(det_label))
    if iou.shape[1]:
        iou = np.where(det_label[:, None] == gt_label[None, :], iou, -1.0)
        best = iou.argmax(axis=1)
        hit = np.flatnonzero(iou[rows, best] >= IOU_THRESHOLD)
        _, first = np.unique(best[hit], return_index=True)  # the highest-scoring claimant takes the box
        status[hit[first]] = 1
    if ioa.shape[1]:
        ioa = np.where(det_label[:, None] == group_label[None, :], ioa, -1.0)
        best = ioa.argmax(axis=1)
        inside = np.flatnonzero((status == 0) & (ioa[rows, best] >= IOU_THRESHOLD))
        status[inside] = -1
        _, first = np.unique(best[inside], return_index=True)
        status[inside[first]] = 1
    return status


def _chunks(image: np.ndarray):
    """(start, end) of each run of equal image codes in a sorted array."""
    cuts = np.flatnonzero(np.diff(image)) + 1
    return zip(np.r_[0, cuts], np.r_[cuts, len(image)]) if len(image) else iter(())


def _match_boxes(gt: GroundTruth, image: np.ndarray, label: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
    b = gt.boxes
    g_image, g_label = b["image"].to_numpy(), b["label"].to_numpy()
    g_xyxy, g_group = b[["x0", "y0", "x1", "y1"]].to_numpy(float), b["group"].to_numpy(bool)
    bounds = np.searchsorted(g_image, np.arange(len(gt.image_ids) + 1))
    status = np.zeros(len(image), dtype=np.int8)
    for s, e in _chunks(image):
        g = slice(bounds[image[s]], bounds[image[s] + 1])
        grp, box = g_group[g], g_xyxy[g]
        status[s:e] = _assign(label[s:e], _overlap(xyxy[s:e], box[~grp]), g_label[g][~grp],
                              _overlap(xyxy[s:e], box[grp], over_a=True), g_label[g][grp])
    return status


def _to_rle(mask: Any, image_id: str) -> dict:
    """A detection mask (bool (H, W) array or COCO RLE, compressed or not) as a compressed RLE."""
    from pycocotools import mask as mask_utils

    if isinstance(mask, Mapping) and "size" in mask and "counts" in mask:
        h, w = (int(v) for v in mask["size"])
        if isinstance(mask["counts"], list):
            return mask_utils.frPyObjects(dict(mask), h, w)
        return {"size": [h, w], "counts": mask["counts"]}
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise CsalicError(f"a detection mask on image {image_id} is neither a (H, W) array nor a COCO RLE")
    return mask_utils.encode(np.asfortranarray(arr.astype(np.uint8)))


def _mask_size(gt: GroundTruth, image_id: str, rles: list[dict]) -> tuple[int, int]:
    sizes = {tuple(r["size"]) for r in rles} | ({gt.image_sizes[image_id]} if image_id in gt.image_sizes else set())
    if len(sizes) != 1:
        raise CsalicError(f"masks on image {image_id} come in sizes {sorted(sizes)} (height, width): give every "
                          "detection mask at the image's size")
    return sizes.pop()


def _gt_masks(gt: GroundTruth, paths: Iterable[str], h: int, w: int) -> list[dict]:
    """Ground-truth mask PNGs resized to (h, w) with nearest neighbour, as RLEs (each file read once)."""
    from PIL import Image
    from pycocotools import mask as mask_utils

    cache: dict[str, dict] = {}
    for path in paths:
        if path not in cache:
            p = gt.mask_dir / path
            try:
                with Image.open(p) as img:
                    arr = np.asarray(img.convert("L").resize((w, h), Image.Resampling.NEAREST)) > 0
            except FileNotFoundError:
                raise CsalicError(f"mask {p} not found: extract the masks of the segmentation CSV into the "
                                  "mask folder") from None
            except (OSError, ValueError) as exc:
                raise CsalicError(f"cannot read mask {p} ({_why(exc)})") from None
            cache[path] = mask_utils.encode(np.asfortranarray(arr.astype(np.uint8)))
    return [cache[path] for path in paths]


def _mask_overlap(dts: list[dict], gts: list[dict], over_dt: bool) -> np.ndarray:
    """Mask IoU, or intersection over the detection's area (pycocotools' ``iscrowd`` IoU) with ``over_dt``."""
    from pycocotools import mask as mask_utils

    if not dts or not gts:
        return np.zeros((len(dts), len(gts)))
    return np.asarray(mask_utils.iou(dts, gts, [int(over_dt)] * len(gts)), dtype=float).reshape(len(dts), len(gts))


def _match_masks(gt: GroundTruth, image: np.ndarray, label: np.ndarray, masks: list) -> np.ndarray:
    from pycocotools import mask as mask_utils

    m, groups = gt.masks, gt.boxes[gt.boxes["group"].to_numpy(bool)]
    m_bounds = np.searchsorted(m["image"].to_numpy(), np.arange(len(gt.image_ids) + 1))
    g_bounds = np.searchsorted(groups["image"].to_numpy(), np.arange(len(gt.image_ids) + 1))
    m_label, m_path, g_label = m["label"].to_numpy(), m["MaskPath"].to_numpy(), groups["label"].to_numpy()
    g_xyxy = groups[["x0", "y0", "x1", "y1"]].to_numpy(float)
    status = np.zeros(len(image), dtype=np.int8)
    for s, e in _chunks(image):
        i = image[s]
        image_id = gt.image_ids[i]
        dts = [_to_rle(x, image_id) for x in masks[s:e]]
        h, w = _mask_size(gt, image_id, dts)
        mg, gg = slice(m_bounds[i], m_bounds[i + 1]), slice(g_bounds[i], g_bounds[i + 1])
        box = g_xyxy[gg] * [w, h, w, h]
        # C order: pycocotools reads the array's memory row by row, and np.c_ returns Fortran order
        xywh = np.ascontiguousarray(np.c_[box[:, :2], box[:, 2:] - box[:, :2]])
        regions = mask_utils.frPyObjects(xywh, h, w) if len(box) else []
        status[s:e] = _assign(label[s:e], _mask_overlap(dts, _gt_masks(gt, m_path[mg], h, w), False), m_label[mg],
                              _mask_overlap(dts, regions, True), g_label[gg])
    return status


def _codes(gt: GroundTruth, dets: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Image and class codes of each detection, -1 for both where its class is not verified on its image."""
    _check_known(gt.hierarchy, dets["LabelName"], "detections")
    image = gt.image_ids.get_indexer(dets["ImageID"])
    label = gt.classes.get_indexer(dets["LabelName"])
    key = image.astype(np.int64) * len(gt.classes) + label
    ok = (image >= 0) & (label >= 0) & np.isin(key, gt.verified)
    return np.where(ok, image, -1), np.where(ok, label, -1)


def match_detections(gt: GroundTruth, detections: Any, iou_type: str = "bbox") -> pd.DataFrame:
    """Each detection's fate: a frame ImageID, LabelName, Score, Status (1 TP, 0 FP, -1 ignored).

    Ignored: its class is not verified on its image, or it lies in a group-of box already counted.
    """
    if iou_type not in IOU_TYPES:
        raise CsalicError(f"iou_type must be one of {', '.join(IOU_TYPES)}, got {iou_type!r}")
    dets = _detection_frame(detections, iou_type)
    score = _numbers(dets, "Score", "detections", dets)
    image, label = _codes(gt, dets)
    status = np.full(len(dets), -1, dtype=np.int8)
    sel = np.flatnonzero(image >= 0)
    sel = sel[np.lexsort((sel, -score[sel], image[sel]))]
    if iou_type == "segm":
        if gt.masks is None:
            raise CsalicError("segm evaluation needs the segmentation CSV and its mask folder (masks_csv, mask_dir)")
        status[sel] = _match_masks(gt, image[sel], label[sel], [dets["mask"].iloc[i] for i in sel])
    else:
        xyxy = _boxes(dets, "detections", dets)
        status[sel] = _match_boxes(gt, image[sel], label[sel], xyxy[sel])
    return pd.DataFrame({"ImageID": dets["ImageID"], "LabelName": dets["LabelName"], "Score": score,
                         "Status": status})


# ----------------------------------------------------------------------------- AP

def matches(gt: GroundTruth, detections: Any, iou_type: str = "bbox") -> Matches:
    """The detections that count (true or false positives) and each image's positives per class, as
    :class:`~csalic.metrics.matches.Matches` with the challenge's all-points AP."""
    matched = match_detections(gt, detections, iou_type)
    kept = matched[matched["Status"] >= 0]
    n_img, n_cls = len(gt.image_ids), len(gt.classes)
    boxes = gt.boxes
    if iou_type == "segm":
        gt.positives("segm")  # the clear error when the masks are missing
        groups = boxes[boxes["group"].to_numpy()]
        img = np.concatenate([gt.masks["image"].to_numpy(), groups["image"].to_numpy()])
        lab = np.concatenate([gt.masks["label"].to_numpy(), groups["label"].to_numpy()])
    else:
        img, lab = boxes["image"].to_numpy(), boxes["label"].to_numpy()
    positives = np.bincount(img.astype(np.int64) * n_cls + lab, minlength=n_img * n_cls).reshape(n_img, n_cls)
    return Matches(np.asarray(gt.image_ids, dtype=object).astype(str), np.asarray(gt.classes, dtype=object).astype(str),
                   gt.image_ids.get_indexer(kept["ImageID"]).astype(np.int64),
                   gt.classes.get_indexer(kept["LabelName"]).astype(np.int64), kept["Score"].to_numpy(np.float64),
                   kept["Status"].to_numpy() == 1, positives, "all_points")


def evaluate(gt: GroundTruth, detections: Any, iou_type: str = "bbox", *, curves: bool = False) -> dict:
    """``{"map50": float | None, "per_class": {label: ap}, "n_classes": int}`` under the OID protocol.

    ``detections``: a frame or a list of dicts ImageID, LabelName, Score and XMin, XMax, YMin, YMax
    (bbox) or ``mask`` (segm: bool (H, W) array or COCO RLE).  ``map50`` is None when no class has a
    positive.  With ``curves``, ``"curves": {label: (precision, recall)}`` in score order.
    """
    m = matches(gt, detections, iou_type)
    per_class = m.per_class()
    out = {"map50": m.map50(), "per_class": per_class, "n_classes": len(per_class)}
    if curves:
        pr = {}
        for c, idx in m._by_class():
            cum = np.cumsum(m.tp[idx])
            pr[str(m.classes[c])] = (cum / np.arange(1, len(cum) + 1), cum / m.positives[:, c].sum())
        out["curves"] = pr
    return out
