"""mAP@0.5 through pycocotools on a hand-made COCO set with known answers."""

import contextlib
import io
import json

import numpy as np
import pytest
import torch

from csalic.metrics.detection import coco_map50, encode_masks, map50_all, to_coco_results

H = W = 100
GT_BOXES = {1: (10, 10, 40, 40), 2: (50, 50, 30, 30)}  # xywh, one object of category 1 per image
ONE_POINT = 51 / 101  # 101-point AP when recall stops at 0.5 with precision 1


def _mask(x, y, w, h):
    m = np.zeros((H, W), dtype=bool)
    m[y:y + h, x:x + w] = True
    return m


def _gt(with_annotations=True):
    from pycocotools.coco import COCO

    anns = []
    if with_annotations:
        for i, (img, (x, y, w, h)) in enumerate(GT_BOXES.items(), start=1):
            poly = [x, y, x + w, y, x + w, y + h, x, y + h]
            anns.append({"id": i, "image_id": img, "category_id": 1, "bbox": [x, y, w, h], "area": w * h,
                         "iscrowd": 0, "segmentation": [poly]})
    api = COCO()
    api.dataset = {"images": [{"id": i, "width": W, "height": H, "file_name": f"{i}.png"} for i in GT_BOXES],
                   "annotations": anns, "categories": [{"id": 1, "name": "thing"}, {"id": 2, "name": "other"}]}
    with contextlib.redirect_stdout(io.StringIO()):
        api.createIndex()
    return api


def _pred(boxes_xywh, scores, labels=None):
    boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in boxes_xywh], dtype=torch.float32).reshape(-1, 4)
    masks = torch.from_numpy(np.stack([_mask(*b) for b in boxes_xywh])) if boxes_xywh else \
        torch.zeros((0, H, W), dtype=torch.bool)
    return {"boxes": boxes, "scores": torch.tensor(scores, dtype=torch.float32),
            "labels": torch.tensor(labels or [1] * len(scores), dtype=torch.int64), "masks": masks}


def _results(per_image):
    out = []
    for img, pred in per_image.items():
        out += to_coco_results(img, pred)
    return out


def test_perfect_predictions_give_one_for_boxes_and_masks():
    res = _results({i: _pred([b], [0.9]) for i, b in GT_BOXES.items()})
    assert map50_all(_gt(), res) == {"map50_bbox": pytest.approx(1.0), "map50_segm": pytest.approx(1.0)}


def test_one_of_two_objects_missed():
    res = _results({1: _pred([GT_BOXES[1]], [0.9]), 2: _pred([], [])})
    assert coco_map50(_gt(), res, "bbox") == pytest.approx(ONE_POINT)
    assert coco_map50(_gt(), res, "segm") == pytest.approx(ONE_POINT)


def test_equal_scores_true_positive_and_false_positive():
    # Same score: COCOeval's stable sort keeps image order. TP on image 1 first -> precision 1 up to recall 0.5.
    tp_first = _results({1: _pred([GT_BOXES[1]], [0.8]), 2: _pred([(0, 0, 20, 20)], [0.8])})
    assert coco_map50(_gt(), tp_first) == pytest.approx(ONE_POINT)
    # FP on image 1 first -> the best precision reachable at recall 0.5 is 1/2.
    fp_first = _results({1: _pred([(60, 60, 20, 20)], [0.8]), 2: _pred([GT_BOXES[2]], [0.8])})
    assert coco_map50(_gt(), fp_first) == pytest.approx(ONE_POINT / 2)


def test_box_just_above_and_below_iou_half():
    x, y, w, h = GT_BOXES[1]
    above = _results({1: _pred([(x, y, w, 26)], [0.9]), 2: _pred([GT_BOXES[2]], [0.9])})  # IoU 0.65
    below = _results({1: _pred([(x, y, w, 18)], [0.5]), 2: _pred([GT_BOXES[2]], [0.9])})  # IoU 0.45: an FP
    assert coco_map50(_gt(), above) == pytest.approx(1.0)
    assert coco_map50(_gt(), below) == pytest.approx(ONE_POINT)


def test_wrong_category_counts_as_a_miss_and_unknown_categories_are_ignored():
    res = _results({1: _pred([GT_BOXES[1]], [0.9]), 2: _pred([GT_BOXES[2]], [0.9], labels=[2])})
    assert coco_map50(_gt(), res) == pytest.approx(ONE_POINT)
    res = _results({1: _pred([GT_BOXES[1]], [0.9]), 2: _pred([GT_BOXES[2], GT_BOXES[2]], [0.9, 0.5], [1, 77])})
    assert coco_map50(_gt(), res) == pytest.approx(1.0)


def test_no_predictions_at_all_is_zero_not_a_crash():
    assert map50_all(_gt(), [], segmentation=True) == {"map50_bbox": 0.0, "map50_segm": 0.0}
    assert map50_all(_gt(), []) == {"map50_bbox": 0.0, "map50_segm": None}  # no masks: not a segmenter


def test_no_ground_truth_is_undefined():
    assert coco_map50(_gt(with_annotations=False), _results({1: _pred([GT_BOXES[1]], [0.9])})) is None


def test_image_subset_only_scores_those_images():
    res = _results({1: _pred([GT_BOXES[1]], [0.9]), 2: _pred([], [])})
    assert coco_map50(_gt(), res, image_ids=[1]) == pytest.approx(1.0)


def test_results_are_json_and_rle_round_trips():
    from pycocotools import mask as mask_utils

    pred = _pred([GT_BOXES[1]], [0.75])
    (r,) = to_coco_results(7, pred)
    json.dumps(r)
    assert r["image_id"] == 7 and r["category_id"] == 1 and r["bbox"] == [10.0, 10.0, 40.0, 40.0]
    rle = dict(r["segmentation"], counts=r["segmentation"]["counts"].encode())
    assert np.array_equal(mask_utils.decode(rle).astype(bool), _mask(*GT_BOXES[1]))
    assert encode_masks(np.zeros((0, 5, 5), bool)) == []
    (nomask,) = to_coco_results(1, {k: v for k, v in pred.items() if k != "masks"})
    assert "segmentation" not in nomask
