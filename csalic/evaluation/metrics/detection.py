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


def _cocoeval_50(coco_gt, dets: list[dict[str, Any]], iou_type: str, ids: list[int]):
    """COCOeval at the single IoU threshold 0.5, evaluated, accumulated and summarised (quietly)."""
    from pycocotools.cocoeval import COCOeval

    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        coco_dt = coco_gt.loadRes(dets)
        ev = COCOeval(coco_gt, coco_dt, iou_type)
        ev.params.imgIds = ids
        ev.params.iouThrs = np.array([0.5])
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def coco_map50(coco_gt, results: Sequence[dict[str, Any]], iou_type: str = "bbox",
               image_ids: Sequence[int] | None = None) -> float | None:
    """AP@0.5 (COCOeval ``stats[1]``) of ``results`` against the ``coco_gt`` COCO object."""
    ids = _image_ids(coco_gt, iou_type, image_ids)
    if not coco_gt.getAnnIds(imgIds=ids, iscrowd=None):
        return None
    dets = _results_for(results, iou_type, ids)
    if not dets:
        return 0.0
    value = float(_cocoeval_50(coco_gt, dets, iou_type, ids).stats[1])
    return None if value < 0 else value


def coco_ap50_per_class(coco_gt, results: Sequence[dict[str, Any]], iou_type: str = "bbox",
                        image_ids: Sequence[int] | None = None) -> dict[int, float]:
    """AP@0.5 per category id, for the categories with (non-crowd) ground truth in the evaluated images.

    Read from COCOeval's ``eval["precision"]`` at IoU 0.5, area "all", maxDets 100: the mean over the
    101 recall thresholds, -1 (no ground truth) left out, so the mean over categories is
    :func:`coco_map50`.  No results at all: AP 0 for every such category.
    """
    ids = _image_ids(coco_gt, iou_type, image_ids)
    dets = _results_for(results, iou_type, ids)
    if not dets:
        anns = coco_gt.loadAnns(coco_gt.getAnnIds(imgIds=ids, iscrowd=None))
        return {int(c): 0.0 for c in sorted({a["category_id"] for a in anns if not a.get("iscrowd", 0)})}
    ev = _cocoeval_50(coco_gt, dets, iou_type, ids)
    area, m = ev.params.areaRngLbl.index("all"), list(ev.params.maxDets).index(100)
    out = {}
    for k, cat in enumerate(ev.params.catIds):
        p = ev.eval["precision"][0, :, k, area, m]
        if (p > -1).any():
            out[int(cat)] = float(np.mean(p[p > -1]))
    return out


def map50_all(coco_gt, results: Sequence[dict[str, Any]], image_ids: Sequence[int] | None = None,
              segmentation: bool | None = None) -> dict[str, float | None]:
    """``{"map50_bbox": ..., "map50_segm": ...}``; segm is None when the network predicts no masks."""
    segm = has_masks(results) if segmentation is None else segmentation
    return {"map50_bbox": coco_map50(coco_gt, results, "bbox", image_ids),
            "map50_segm": coco_map50(coco_gt, results, "segm", image_ids) if segm else None}
