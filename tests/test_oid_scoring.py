"""The study's OID route: a task network's COCO-format predictions on demo_oi, scored by the challenge rules."""

from __future__ import annotations

import json

import pytest
from pycocotools import mask as mask_utils

from csalic.data.demo_openimages import BALL, LABELS, generate_openimages_demo
from csalic.data.openimages import convert_openimages
from csalic.errors import CsalicError
from csalic.evaluation.oid_scoring import OidFiles, OidScorer

RED, GREEN = LABELS[0][0], LABELS[1][0]


@pytest.fixture(scope="module")
def demo_oi(tmp_path_factory):
    f = generate_openimages_demo(tmp_path_factory.mktemp("oi"), n=8, seed=0)
    coco, _ = convert_openimages(f.images, f.classes, masks_csv=f.masks_csv, mask_dir=f.masks,
                                 image_list=f.image_list, category_map=f.category_map)
    files = OidFiles(f.boxes, f.image_labels, f.hierarchy, f.masks_csv, f.masks)
    return f, coco, files


def _rows(f):
    return [r.split(",") for r in f.boxes.read_text().splitlines()[1:]]


def _perfect(f, coco):
    """A detection on every mapped instance (mask and box) and one on every group-of box, score 1."""
    by_oid = {im["oid_image_id"]: im for im in coco["images"]}
    cat_of = {lab: c["id"] for c in coco["categories"] for lab in c["label_names"]}
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0,
             "segmentation": a["segmentation"]} for a in coco["annotations"]]
    for r in _rows(f):
        if r[10] == "1" and r[2] in cat_of:
            im = by_oid[r[0]]
            w, h = im["width"], im["height"]
            x0, x1, y0, y1 = (float(v) for v in r[4:8])
            box = [x0 * w, y0 * h, (x1 - x0) * w, (y1 - y0) * h]
            full = mask_utils.frPyObjects([[box[0], box[1], box[0] + box[2], box[1], box[0] + box[2], box[1] + box[3],
                                            box[0], box[1] + box[3]]], h, w)[0]
            full["counts"] = full["counts"].decode()
            dets.append({"image_id": im["id"], "category_id": cat_of[r[2]], "bbox": box, "score": 1.0,
                         "segmentation": full})
    return dets


def test_every_instance_and_group_found_scores_one_and_the_parent_class_is_evaluated(demo_oi):
    f, coco, files = demo_oi
    scorer = OidScorer(files, coco)
    assert BALL[0] in scorer.classes and LABELS[-1][0] not in scorer.classes  # the unmapped grey tile is out
    ids = [im["id"] for im in coco["images"]]
    dets = _perfect(f, coco)
    got = scorer(dets, ids, segmentation=True)
    assert got == {"map50_bbox": 1.0, "map50_segm": 1.0}
    boxes, _ = scorer.detections(dets)
    # a red or green ball's detection is also a Ball detection (the ancestors a submission names)
    balls = sum(1 for d in dets if d["category_id"] in (1, 2))
    assert sum(b["LabelName"] == BALL[0] for b in boxes) == balls > 0
    # without the group-of boxes' detections, each group is a missed instance: mAP drops
    groups = len([r for r in _rows(f) if r[10] == "1"])
    assert groups > 0
    assert scorer(dets[:len(coco["annotations"])], ids)["map50_bbox"] < 1.0


def test_a_second_detection_inside_a_group_of_box_is_ignored_and_unverified_classes_score_nothing(demo_oi):
    f, coco, files = demo_oi
    scorer = OidScorer(files, coco)
    ids = [im["id"] for im in coco["images"]]
    dets = _perfect(f, coco)
    group = next(d for d in dets[len(coco["annotations"]):])
    x, y, w, h = group["bbox"]
    inside = dict(group, bbox=[x + w / 4, y + h / 4, w / 2, h / 2], score=0.9)
    assert scorer(dets + [inside], ids)["map50_bbox"] == 1.0  # COCO would call it a false positive
    # a class detected where it is absent: a false positive where verified absent, ignored where unverified
    verified = {(r.split(",")[0], r.split(",")[2]) for r in f.image_labels.read_text().splitlines()[1:]}
    by_oid = {im["oid_image_id"]: im for im in coco["images"]}
    cat_of = {c["label_names"][0]: c["id"] for c in coco["categories"]}
    # (not a ball: a red or green ball is also a Ball, which may be verified there through its sibling)
    nowhere = [(oid_, lab) for oid_ in by_oid for lab in cat_of if (oid_, lab) not in verified and lab not in (RED, GREEN)]
    negative = [(oid_, lab) for oid_ in by_oid for lab in cat_of
                if f"{oid_},verification,{lab},0" in f.image_labels.read_text()]
    assert nowhere and negative

    def stray(oid_, lab):
        return {"image_id": by_oid[oid_]["id"], "category_id": cat_of[lab], "bbox": [1.0, 1.0, 30.0, 30.0],
                "score": 2.0}

    assert scorer(dets + [stray(*nowhere[0])], ids)["map50_bbox"] == 1.0
    assert scorer(dets + [stray(*negative[0])], ids)["map50_bbox"] < 1.0


def test_the_scorer_refuses_sets_it_cannot_score(demo_oi, tmp_path):
    f, coco, files = demo_oi
    bare = dict(coco, categories=[{k: v for k, v in c.items() if k != "label_names"} for c in coco["categories"]])
    with pytest.raises(CsalicError, match="names no OpenImages label"):
        OidScorer(files, bare)
    with pytest.raises(CsalicError, match="protocol coco"):
        OidScorer(OidFiles(f.boxes, tmp_path / "absent.csv", f.hierarchy), coco)
    no_ids = dict(coco, images=[{k: v for k, v in im.items() if k != "oid_image_id"} for im in coco["images"]])
    with pytest.raises(CsalicError, match="oid_image_id"):
        OidScorer(files, no_ids)
    other = tmp_path / "h.json"
    other.write_text(json.dumps({"LabelName": "/m/0bl9f", "Subcategory": [{"LabelName": RED}]}))
    with pytest.raises(CsalicError, match="not in the hierarchy"):
        OidScorer(OidFiles(f.boxes, f.image_labels, other), coco)


def test_the_matches_cover_every_evaluated_image_even_one_without_ground_truth(demo_oi, tmp_path):
    """The bootstrap resamples the bpp of the images the matches name: an image whose verified labels
    and boxes all fall outside the task classes is left out of the ground truth, but its bits count
    (the matches used to name only the images with ground truth, so the resampled bpp was another mean)."""
    import numpy as np

    f, coco, files = demo_oi
    gone = coco["images"][0]["oid_image_id"]

    def without(path):
        if path is None:
            return None
        lines = path.read_text().splitlines()  # the image id leads a row, or follows the mask's path
        out = tmp_path / path.name
        out.write_text("\n".join([lines[0]] + [x for x in lines[1:] if gone not in x.split(",")[:2]]) + "\n")
        return out

    bare = OidFiles(without(f.boxes), without(f.image_labels), f.hierarchy, without(f.masks_csv), f.masks)
    ids = [im["id"] for im in coco["images"]]
    dets = _perfect(f, coco)
    for scorer, empty in ((OidScorer(files, coco), False), (OidScorer(bare, coco), True)):
        got = scorer.matches(dets, ids, segmentation=True)
        for m in got.values():
            assert list(m.image_ids) == ids
            assert (m.positives[0].sum() == 0) == empty and m.positives[1:].sum() > 0
            assert m.map50() == 1.0 and m.map50(np.ones((1, len(ids)))).tolist() == [1.0]
            assert set(m.image.tolist()) <= set(range(len(ids)))
