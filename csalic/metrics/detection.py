"""mAP@0.5 with pycocotools: task-network predictions -> COCO results -> COCOeval.

COCOeval runs with the single IoU threshold 0.5 (``params.iouThrs = [0.5]``; the
101-point interpolated AP over all areas and 100 detections, i.e. what
``stats[1]`` reports in a standard run) and the value returned is ``stats[1]``.
A set with no predictions at all gets mAP 0 (not a pycocotools crash); a set with
no ground truth for the evaluated images gets ``None`` (mAP is undefined).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, Iterable, Sequence

import numpy as np

from .matches import Matches

IOU_TYPES = ("bbox", "segm")


def _array(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def encode_masks(masks: Any) -> list[dict[str, Any]]:
    """(N, H, W) bool -> COCO RLEs with str counts (JSON-serialisable)."""
    from pycocotools import mask as mask_utils

    m = _array(masks).astype(np.uint8)
    if m.ndim != 3:
        raise ValueError(f"masks must be (N, H, W), got shape {m.shape}")
    if m.shape[0] == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray(m.transpose(1, 2, 0)))
    for r in rles:
        r["counts"] = r["counts"].decode("ascii")
    return rles


def to_coco_results(image_id: int, prediction: dict[str, Any]) -> list[dict[str, Any]]:
    """One image's ``predict`` output (boxes xyxy in pixels, scores, labels = COCO ids,
    optional masks) -> COCO result dicts (bbox xywh, and ``segmentation`` RLE when masks exist)."""
    boxes = _array(prediction["boxes"]).reshape(-1, 4).astype(float)
    scores = _array(prediction["scores"]).reshape(-1).astype(float)
    labels = _array(prediction["labels"]).reshape(-1).astype(int)
    if not len(boxes) == len(scores) == len(labels):
        raise ValueError(f"prediction has {len(boxes)} boxes, {len(scores)} scores, {len(labels)} labels")
    rles = encode_masks(prediction["masks"]) if prediction.get("masks") is not None else None
    out = []
    for k in range(len(scores)):
        x0, y0, x1, y1 = boxes[k].tolist()
        r = {"image_id": int(image_id), "category_id": int(labels[k]),
             "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(scores[k])}
        if rles is not None:
            r["segmentation"] = rles[k]
        out.append(r)
    return out


def has_masks(results: Iterable[dict[str, Any]]) -> bool:
    return any("segmentation" in r for r in results)


def _image_ids(coco_gt, iou_type: str, image_ids: Sequence[int] | None) -> list[int]:
    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type must be one of {IOU_TYPES}, got {iou_type!r}")
    return sorted(int(i) for i in (image_ids if image_ids is not None else coco_gt.getImgIds()))


def _results_for(results: Sequence[dict[str, Any]], iou_type: str, ids: list[int]) -> list[dict[str, Any]]:
    """The results COCOeval should see for ``iou_type`` on the images ``ids``."""
    if iou_type == "segm":
        dets = [{k: v for k, v in r.items() if k != "bbox"} for r in results if "segmentation" in r]
    else:
        dets = [{k: v for k, v in r.items() if k != "segmentation"} for r in results]
    wanted = set(ids)
    return [d for d in dets if int(d["image_id"]) in wanted]


def _cocoeval_50(coco_gt, dets: list[dict[str, Any]], iou_type: str, ids: list[int], summarize: bool = True):
    """COCOeval at the single IoU threshold 0.5, evaluated (and accumulated and summarised), quietly."""
    from pycocotools.cocoeval import COCOeval

    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        coco_dt = coco_gt.loadRes(dets)
        ev = COCOeval(coco_gt, coco_dt, iou_type)
        ev.params.imgIds = ids
        ev.params.iouThrs = np.array([0.5])
        ev.evaluate()
        if summarize:
            ev.accumulate()
            ev.summarize()
    return ev


def coco_matches(coco_gt, results: Sequence[dict[str, Any]], iou_type: str = "bbox",
                 image_ids: Sequence[int] | None = None) -> Matches:
    """COCOeval's per-image matching at IoU 0.5 (area "all", 100 detections per image and class), as
    :class:`~csalic.metrics.matches.Matches`: the one place this package matches COCO detections."""
    ids = _image_ids(coco_gt, iou_type, image_ids)
    cats = sorted(int(c) for c in coco_gt.getCatIds())
    image, cls, score, tp = [], [], [], []
    positives = np.zeros((len(ids), len(cats)), dtype=np.int64)
    dets = _results_for(results, iou_type, ids)
    if dets:
        ev = _cocoeval_50(coco_gt, dets, iou_type, ids, summarize=False)
        area = ev.params.areaRngLbl.index("all")
        n_area, n_img = len(ev.params.areaRng), len(ev.params.imgIds)
        row = {int(i): r for r, i in enumerate(ev.params.imgIds)}
        for k, cat in enumerate(ev.params.catIds):
            col = cats.index(int(cat))
            for e in ev.evalImgs[k * n_area * n_img + area * n_img:k * n_area * n_img + (area + 1) * n_img]:
                if e is None:
                    continue
                r = row[int(e["image_id"])]
                positives[r, col] = int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0))
                keep = ~np.asarray(e["dtIgnore"][0], dtype=bool)
                n = int(keep.sum())
                image.append(np.full(n, r))
                cls.append(np.full(n, col))
                score.append(np.asarray(e["dtScores"], dtype=np.float64)[keep])
                tp.append(np.asarray(e["dtMatches"][0])[keep] > 0)
    else:  # no detections: every positive is missed
        row = {i: r for r, i in enumerate(ids)}
        col = {c: k for k, c in enumerate(cats)}
        for a in coco_gt.loadAnns(coco_gt.getAnnIds(imgIds=ids, iscrowd=None)):
            if not a.get("iscrowd", 0):  # COCOeval ignores exactly the crowd regions
                positives[row[int(a["image_id"])], col[int(a["category_id"])]] += 1

    def cat(parts, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    return Matches(np.asarray(ids, dtype=np.int64), np.asarray(cats, dtype=np.int64), cat(image, np.int64),
                   cat(cls, np.int64), cat(score, np.float64), cat(tp, bool), positives, "coco101")


def coco_map50(coco_gt, results: Sequence[dict[str, Any]], iou_type: str = "bbox",
               image_ids: Sequence[int] | None = None) -> float | None:
    """AP@0.5 (COCOeval ``stats[1]``) of ``results`` against the ``coco_gt`` COCO object."""
    return coco_matches(coco_gt, results, iou_type, image_ids).map50()


def coco_ap50_per_class(coco_gt, results: Sequence[dict[str, Any]], iou_type: str = "bbox",
                        image_ids: Sequence[int] | None = None) -> dict[int, float]:
    """AP@0.5 per category id, for the categories with (non-crowd) ground truth in the evaluated images;
    their mean is :func:`coco_map50`.  No results at all: AP 0 for every such category."""
    m = coco_matches(coco_gt, results, iou_type, image_ids)
    return {int(k): v for k, v in m.per_class().items()}


def matches_all(coco_gt, results: Sequence[dict[str, Any]], image_ids: Sequence[int] | None = None,
                segmentation: bool | None = None) -> dict[str, Matches]:
    """The matches per IoU type: ``bbox`` always, ``segm`` when the network predicts masks."""
    segm = has_masks(results) if segmentation is None else segmentation
    out = {"bbox": coco_matches(coco_gt, results, "bbox", image_ids)}
    if segm:
        out["segm"] = coco_matches(coco_gt, results, "segm", image_ids)
    return out


def maps_of(matches: dict[str, Matches]) -> dict[str, float | None]:
    """``{"map50_bbox": ..., "map50_segm": ...}`` of a point's matches (None for a type not evaluated)."""
    return {f"map50_{k}": (matches[k].map50() if k in matches else None) for k in IOU_TYPES}


def map50_all(coco_gt, results: Sequence[dict[str, Any]], image_ids: Sequence[int] | None = None,
              segmentation: bool | None = None) -> dict[str, float | None]:
    """``{"map50_bbox": ..., "map50_segm": ...}``; segm is None when the network predicts no masks."""
    return maps_of(matches_all(coco_gt, results, image_ids, segmentation))
