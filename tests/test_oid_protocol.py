"""The Open Images challenge protocol (csalic.metrics.oid) on hand-built cases.

Every expected value is worked out by hand in the comment above it.  Each of the four rules
(verified labels, group-of boxes, the hierarchy, all-points AP) has a case where it changes the
answer, and the test says (and, where the module can compute it, asserts) what ignoring the rule
would give.  Last, a seeded random case where the OID and COCO protocols coincide is checked
against pycocotools.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from csalic.errors import CsalicError
from csalic.metrics import oid

A = (0.1, 0.4, 0.1, 0.4)  # XMin, XMax, YMin, YMax
B = (0.5, 0.9, 0.5, 0.9)
FAR = (0.6, 0.9, 0.0, 0.3)


def box(image, label, xy, group=0):
    return dict(ImageID=image, LabelName=label, XMin=xy[0], XMax=xy[1], YMin=xy[2], YMax=xy[3], IsGroupOf=group)


def det(image, label, score, xy):
    return dict(ImageID=image, LabelName=label, Score=score, XMin=xy[0], XMax=xy[1], YMin=xy[2], YMax=xy[3])


def labels(*rows):
    return pd.DataFrame([dict(ImageID=i, LabelName=c, Confidence=v) for i, c, v in rows],
                        columns=["ImageID", "LabelName", "Confidence"])


def gt_of(boxes, image_labels, hierarchy=None, **kw):
    return oid.load_ground_truth(pd.DataFrame(boxes, columns=oid.BOX_COLUMNS), image_labels, hierarchy, **kw)


# ----------------------------------------------------------------------------- AP definition

def _one_class(tp, positives):
    from csalic.metrics.matches import Matches

    n = len(tp)
    return Matches(np.array(["a"]), np.array(["A"]), np.zeros(n, int), np.zeros(n, int),
                   np.linspace(0.9, 0.1, n) if n else np.zeros(0), np.array(tp, bool), np.array([[positives]]),
                   "all_points")


def test_average_precision_all_points():
    # dets sorted: TP, FP, TP with 2 positives; precision 1, 1/2, 2/3; recall 1/2, 1/2, 1
    # -> AP = 1/2 * 1 + 1/2 * 2/3 = 0.8333
    assert _one_class([1, 0, 1], 2).map50() == pytest.approx(5 / 6)
    assert _one_class([], 2).map50() == 0.0


def test_precision_is_made_monotone_and_every_recall_point_counts():
    # 3 boxes of A on one image; dets TP .9, FP .8, TP .7, TP .6.
    # precision 1, 1/2, 2/3, 3/4; recall 1/3, 1/3, 2/3, 1.
    # Monotone (max precision at recall >= r): 1 at r=1/3, 3/4 at r=2/3 and r=1
    # -> AP = 1/3 * (1 + 3/4 + 3/4) = 0.8333.
    # Without the monotone envelope: 1/3 * (1 + 2/3 + 3/4) = 0.8056.
    # COCO's 101 samples: r = 0..0.33 (34 points) -> 1, 0.34..1 (67 points) -> 3/4: (34 + 50.25)/101 = 0.8342.
    # VOC2007's 11 samples: 0..0.3 (4) -> 1, 0.4..1 (7) -> 3/4: (4 + 5.25)/11 = 0.8409.
    a1, a2, a3 = (0.0, 0.2, 0.0, 0.2), (0.4, 0.6, 0.4, 0.6), (0.8, 1.0, 0.8, 1.0)
    gt = gt_of([box("i", "A", a) for a in (a1, a2, a3)], labels(("i", "A", 1)))
    dets = [det("i", "A", 0.9, a1), det("i", "A", 0.8, FAR), det("i", "A", 0.7, a2), det("i", "A", 0.6, a3)]
    res = oid.evaluate(gt, dets, curves=True)
    assert res["per_class"] == {"A": pytest.approx(5 / 6)}
    precision, recall = res["curves"]["A"]
    np.testing.assert_allclose(precision, [1, 1 / 2, 2 / 3, 3 / 4])
    np.testing.assert_allclose(recall, [1 / 3, 1 / 3, 2 / 3, 1])
    raw = float(np.sum(np.diff(np.r_[0, recall[[0, 2, 3]]]) * precision[[0, 2, 3]]))
    assert raw == pytest.approx(0.8056, abs=1e-4) and res["map50"] != pytest.approx(raw)
    assert res["map50"] != pytest.approx(84.25 / 101)


def test_equal_scores_keep_the_input_order():
    # One box; two detections with the same score.  TP listed first: precision 1, 1/2 at recall 1, 1 -> AP 1.
    # FP listed first: precision 0, 1/2 at recall 0, 1 -> AP 1/2.
    gt = gt_of([box("i", "A", A)], labels(("i", "A", 1)))
    assert oid.evaluate(gt, [det("i", "A", 0.5, A), det("i", "A", 0.5, B)])["map50"] == pytest.approx(1.0)
    assert oid.evaluate(gt, [det("i", "A", 0.5, B), det("i", "A", 0.5, A)])["map50"] == pytest.approx(0.5)


def test_classes_without_positives_are_left_out_and_missed_classes_score_zero():
    # A has a box and a TP (AP 1); B has a box and no detection (AP 0); C is only a verified negative
    # with one FP detection: no positive, so it is not averaged.  mAP = (1 + 0)/2 = 0.5.
    gt = gt_of([box("i", "A", A), box("i", "B", B)], labels(("i", "A", 1), ("i", "C", 0)))
    res = oid.evaluate(gt, [det("i", "A", 0.9, A), det("i", "C", 0.8, FAR)])
    assert res == {"map50": pytest.approx(0.5), "per_class": {"A": 1.0, "B": 0.0}, "n_classes": 2}
    # No detections at all: every class with a positive has recall 0 -> AP 0, mAP 0.0 (not undefined).
    assert oid.evaluate(gt, [])["map50"] == 0.0
    # No positive anywhere: mAP is undefined.
    assert oid.evaluate(gt_of([], labels(("i", "C", 0))), [det("i", "C", 0.8, FAR)])["map50"] is None


# ----------------------------------------------------------------------------- verified labels

def _verified_case():
    boxes = [box("i1", "A", A), box("i2", "A", A), box("i3", "B", A)]
    dets = [det("i1", "A", 0.9, A), det("i2", "A", 0.8, A),
            det("i3", "A", 0.99, A),   # A is not verified on i3: ignored
            det("i3", "B", 0.7, A),
            det("i1", "B", 0.85, A),   # B is a verified negative on i1: a false positive
            det("i2", "B", 0.95, A),   # B is not verified on i2: ignored
            det("i1", "C", 0.6, A)]    # C is verified nowhere and has no box: ignored, class left out
    return boxes, dets


def test_detections_of_unverified_classes_are_ignored():
    boxes, dets = _verified_case()
    gt = gt_of(boxes, labels(("i1", "A", 1), ("i1", "B", 0), ("i2", "A", 1), ("i3", "B", 1)))
    assert oid.match_detections(gt, dets)["Status"].tolist() == [1, 1, -1, 1, 0, -1, -1]
    # A: TP .9, TP .8 -> AP 1.   B: FP .85, TP .7 -> precision 0, 1/2 at recall 0, 1 -> AP 1/2.
    # mAP = (1 + 1/2)/2 = 0.75
    res = oid.evaluate(gt, dets)
    assert res["per_class"] == {"A": pytest.approx(1.0), "B": pytest.approx(0.5)}
    assert res["map50"] == pytest.approx(0.75)
    # Ignoring the rule (every class evaluated on every image, as COCO does):
    # A: FP .99, TP .9, TP .8 -> precision 0, 1/2, 2/3, recall 0, 1/2, 1 -> AP = 1/2 * 2/3 + 1/2 * 2/3 = 2/3;
    # B: FP .95, FP .85, TP .7 -> AP 1/3; mAP = 0.5.
    everything = labels(*[(i, c, int((i, c) in {("i1", "A"), ("i2", "A"), ("i3", "B")}))
                          for i in ("i1", "i2", "i3") for c in ("A", "B")])
    naive = oid.evaluate(gt_of(boxes, everything), dets)
    assert naive["per_class"] == {"A": pytest.approx(2 / 3), "B": pytest.approx(1 / 3)}
    assert naive["map50"] == pytest.approx(0.5)


def test_images_without_any_entry_evaluate_nothing():
    gt = gt_of([box("i1", "A", A)], labels(("i1", "A", 1)))
    # a detection on an image the ground truth never names is ignored: AP stays 1, not 1/2
    res = oid.evaluate(gt, [det("elsewhere", "A", 0.99, A), det("i1", "A", 0.5, A)])
    assert res["map50"] == pytest.approx(1.0)
    # restricting the evaluated images drops i1's positive as well
    assert oid.evaluate(gt_of([box("i1", "A", A)], labels(("i1", "A", 1)), image_ids=["x"]), [])["map50"] is None


# ----------------------------------------------------------------------------- group-of

G1, N, G2 = (0.0, 0.5, 0.0, 0.5), (0.6, 0.9, 0.6, 0.9), (0.0, 0.3, 0.6, 0.9)


def _group_case(group=1):
    boxes = [box("i", "A", G1, group), box("i", "A", N, 0), box("i", "A", G2, group)]
    dets = [det("i", "A", 0.9, (0.1, 0.2, 0.1, 0.2)),   # inside G1 (IoA 1)
            det("i", "A", 0.8, (0.2, 0.3, 0.2, 0.3)),   # inside G1
            det("i", "A", 0.7, N),                      # on the ordinary box (IoU 1)
            det("i", "A", 0.6, (0.3, 0.4, 0.3, 0.4)),   # inside G1
            det("i", "A", 0.5, FAR)]                    # nowhere
    return gt_of(boxes, labels(("i", "A", 1))), dets


def test_group_of_box_is_one_instance_detected_once():
    gt, dets = _group_case()
    # G1's three detections are one TP (score .9); the other two are ignored; G2 is a missed instance.
    assert oid.match_detections(gt, dets)["Status"].tolist() == [1, -1, 1, -1, 0]
    # 3 positives (G1, N, G2); kept dets TP .9, TP .7, FP .5: precision 1, 1, 2/3; recall 1/3, 2/3, 2/3
    # -> AP = 1/3 * 1 + 1/3 * 1 = 2/3
    assert oid.evaluate(gt, dets)["map50"] == pytest.approx(2 / 3)
    # Group-of boxes taken as ordinary boxes: the small dets have IoU 0.04 with G1, so
    # FP .9, FP .8, TP .7, FP .6, FP .5: precision 1/3 at recall 1/3 -> AP = 1/3 * 1/3 = 1/9.
    # (COCO's iscrowd would instead drop G1, G2 and their dets: 1 positive, TP .7, FP .5 -> AP 1.)
    naive_gt, _ = _group_case(group=0)
    assert oid.evaluate(naive_gt, dets)["map50"] == pytest.approx(1 / 9)


def test_ordinary_boxes_match_first_and_duplicates_can_fall_into_a_group():
    n1, n2, g = (0.1, 0.3, 0.1, 0.3), (0.6, 0.9, 0.6, 0.9), (0.0, 0.5, 0.0, 0.5)  # n1 lies inside g
    gt = gt_of([box("j", "A", n1), box("j", "A", n2), box("j", "A", g, 1)], labels(("j", "A", 1)))
    dets = [det("j", "A", 0.9, n1),     # TP on n1 (ordinary boxes first, though it is inside g)
            det("j", "A", 0.85, n2),    # TP on n2
            det("j", "A", 0.8, n1),     # best box n1 taken: unmatched, then inside g -> g's TP
            det("j", "A", 0.75, n2),    # best box n2 taken, in no group-of box: FP
            det("j", "A", 0.7, (0.35, 0.45, 0.35, 0.45)),  # inside g, already counted: ignored
            det("j", "A", 0.65, FAR)]   # FP
    assert oid.match_detections(gt, dets)["Status"].tolist() == [1, 1, 1, 0, -1, 0]
    # 3 positives; TP TP TP FP FP -> AP 1
    assert oid.evaluate(gt, dets)["map50"] == pytest.approx(1.0)


def test_a_group_of_box_of_another_class_does_not_absorb():
    gt = gt_of([box("i", "A", A), box("i", "B", G1, 1)], labels(("i", "A", 1), ("i", "B", 1)))
    # an A detection inside B's group-of box is an A false positive, not ignored
    assert oid.match_detections(gt, [det("i", "A", 0.9, (0.0, 0.1, 0.0, 0.1))])["Status"].tolist() == [0]


# ----------------------------------------------------------------------------- hierarchy

HIERARCHY = {"LabelName": "/m/0bl9f", "Subcategory": [
    {"LabelName": "/m/animal", "Subcategory": [{"LabelName": "/m/cat"}, {"LabelName": "/m/dog"}]},
    {"LabelName": "/m/vehicle", "Subcategory": [{"LabelName": "/m/car", "Part": [{"LabelName": "/m/wheel"}]}]}]}


def test_hierarchy_reading():
    h = oid.load_hierarchy(HIERARCHY)
    assert h.ancestors["/m/cat"] == ("/m/cat", "/m/animal")  # the root Entity is not an ancestor class
    assert set(h.descendants["/m/animal"]) == {"/m/animal", "/m/cat", "/m/dog"}
    assert h.ancestors["/m/wheel"] == ("/m/wheel",)  # a Part is a class of its own, not a kind of car


def _hierarchy_case():
    boxes = [box("i1", "/m/cat", A), box("i2", "/m/dog", B)]
    image_labels = labels(("i1", "/m/cat", 1), ("i2", "/m/dog", 1), ("i3", "/m/animal", 0))
    dets = [det("i1", "/m/cat", 0.9, A), det("i1", "/m/animal", 0.8, A),
            det("i2", "/m/dog", 0.7, B), det("i2", "/m/animal", 0.6, B),
            det("i3", "/m/cat", 0.5, A), det("i3", "/m/dog", 0.95, B)]
    return boxes, image_labels, dets


def test_hierarchy_expands_ground_truth_not_detections():
    boxes, image_labels, dets = _hierarchy_case()
    gt = gt_of(boxes, image_labels, HIERARCHY)
    # Expanded: the cat and dog boxes are also animal boxes (2 positives); "animal" negative on i3
    # makes cat and dog verified negatives there, so both i3 detections are FPs.
    assert oid.match_detections(gt, dets)["Status"].tolist() == [1, 1, 1, 1, 0, 0]
    # cat: TP .9, FP .5 -> AP 1.  dog: FP .95, TP .7 -> AP 1/2.  animal: TP .8, TP .6 -> AP 1.
    # mAP = (1 + 1/2 + 1)/3 = 0.8333
    res = oid.evaluate(gt, dets)
    assert res["per_class"] == {"/m/animal": 1.0, "/m/cat": 1.0, "/m/dog": 0.5}
    assert res["map50"] == pytest.approx(5 / 6)
    # Flat: animal has no positive (left out) and is not verified on i1, i2; cat and dog are not
    # verified on i3, so its two detections are ignored: cat 1, dog 1 -> mAP 1.0 over 2 classes.
    flat = oid.evaluate(gt_of(boxes, image_labels), dets)
    assert flat["per_class"] == {"/m/cat": 1.0, "/m/dog": 1.0} and flat["n_classes"] == 2
    # Detections are not expanded: without the detector's own "animal" outputs, animal (2 positives)
    # has no detection -> AP 0, mAP = (1 + 1/2 + 0)/3 = 0.5.
    only_leaves = [d for d in dets if d["LabelName"] != "/m/animal"]
    assert oid.evaluate(gt, only_leaves)["per_class"]["/m/animal"] == 0.0
    assert oid.evaluate(gt, only_leaves)["map50"] == pytest.approx(0.5)


def test_labels_outside_the_hierarchy_are_bad_input():
    boxes, image_labels, dets = _hierarchy_case()
    with pytest.raises(CsalicError, match="'/m/unicorn'"):
        gt_of(boxes + [box("i1", "/m/unicorn", A)], image_labels, HIERARCHY)
    with pytest.raises(CsalicError, match="'/m/unicorn'"):
        oid.evaluate(gt_of(boxes, image_labels, HIERARCHY), dets + [det("i1", "/m/unicorn", 0.1, A)])
    with pytest.raises(CsalicError, match="no LabelName"):
        oid.load_hierarchy({"Subcategory": []})


# ----------------------------------------------------------------------------- files and bad input

def _csv(path, rows, columns):
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path


def test_files_and_their_errors(tmp_path):
    boxes_csv = _csv(tmp_path / "b.csv", [box("i", "A", A)], oid.BOX_COLUMNS)
    labels_csv = tmp_path / "l.csv"
    labels_csv.write_text("ImageID,Source,LabelName,Confidence\ni,verification,A,1\n")
    gt = oid.load_ground_truth(boxes_csv, labels_csv)
    header_only = tmp_path / "d.csv"
    header_only.write_text(",".join(oid.DETECTION_COLUMNS) + "\n")
    # a header and no rows: no detections -> A has recall 0 -> AP 0, mAP 0.0
    assert oid.evaluate(gt, oid.read_detections(header_only)) == {"map50": 0.0, "per_class": {"A": 0.0},
                                                                 "n_classes": 1}
    for content in ("", "\n\n"):
        (tmp_path / "e.csv").write_text(content)
        with pytest.raises(CsalicError, match="is empty"):
            oid.read_detections(tmp_path / "e.csv")
    with pytest.raises(CsalicError, match="no column IsGroupOf"):
        oid.load_ground_truth(_csv(tmp_path / "nb.csv", [box("i", "A", A)], oid.BOX_COLUMNS[:-1]), labels_csv)
    with pytest.raises(CsalicError, match=r"b2.csv line 3: box XMin=0.1 XMax=1.2"):
        oid.load_ground_truth(_csv(tmp_path / "b2.csv", [box("i", "A", A), box("i", "A", (0.1, 1.2, 0, 1))],
                                   oid.BOX_COLUMNS), labels_csv)
    with pytest.raises(CsalicError, match=r"line 2: box XMin=0.5 XMax=0.4"):
        oid.read_detections(_csv(tmp_path / "d2.csv", [det("i", "A", 0.5, (0.5, 0.4, 0, 1))], oid.DETECTION_COLUMNS))
    with pytest.raises(CsalicError, match="not found"):
        oid.read_detections(tmp_path / "missing.csv")
    with pytest.raises(CsalicError, match="Confidence 0.5"):
        oid.load_ground_truth(boxes_csv, _csv(tmp_path / "l2.csv", [("i", "A", 0.5)], oid.LABEL_COLUMNS))


def test_the_module_does_not_import_torch():
    code = ("import sys, csalic.metrics.oid, csalic.commands.score\n"
            "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- segmentation

def rect(r0, r1, c0, c1, size=10):
    m = np.zeros((size, size), dtype=bool)
    m[r0:r1, c0:c1] = True
    return m


def write_segm_case(tmp_path):
    """A 10x10 image: one mask instance of A (a 5x5 PNG, rows/cols 0-1, upsampled to rows/cols 0-3)
    and a group-of box of A over rows/cols 5-9; the box CSV also has A's ordinary box (not an instance
    for segm: the masks are)."""
    (tmp_path / "masks").mkdir()
    small = np.zeros((5, 5), dtype=np.uint8)
    small[:2, :2] = 255
    Image.fromarray(small).save(tmp_path / "masks" / "s1_a.png")
    masks_csv = _csv(tmp_path / "m.csv", [("s1_a.png", "s1", "A", "b1", 0.0, 0.4, 0.0, 0.4, 0.9, "")],
                     ["MaskPath", "ImageID", "LabelName", "BoxID", "BoxXMin", "BoxXMax", "BoxYMin", "BoxYMax",
                      "PredictedIoU", "Clicks"])
    boxes_csv = _csv(tmp_path / "b.csv", [box("s1", "A", (0.0, 0.4, 0.0, 0.4)),
                                          box("s1", "A", (0.5, 1.0, 0.5, 1.0), 1)], oid.BOX_COLUMNS)
    labels_csv = _csv(tmp_path / "l.csv", [("s1", "A", 1)], oid.LABEL_COLUMNS)
    dets = [("s1", "A", 0.9, rect(0, 4, 0, 3)),    # 12 px inside the 16-px instance: IoU 12/16 = 0.75 -> TP
            ("s1", "A", 0.85, rect(0, 2, 6, 10)),  # touches nothing: FP
            ("s1", "A", 0.8, rect(5, 7, 5, 7)),    # inside the group-of box (IoA 1): its one TP
            ("s1", "A", 0.7, rect(8, 10, 8, 10)),  # inside the group-of box too: ignored
            ("s1", "A", 0.5, rect(4, 6, 4, 6))]    # 1 of its 4 px in the group-of box (IoA 1/4): FP
    return boxes_csv, labels_csv, masks_csv, tmp_path / "masks", dets


# 2 positives (the mask, the group-of box); kept dets TP .9, FP .85, TP .8, FP .5:
# precision 1, 1/2, 2/3, 1/2; recall 1/2, 1/2, 1, 1 -> AP = 1/2 * 1 + 1/2 * 2/3 = 0.8333.
# Were the group-of box an ordinary instance matched by IoU, .8 (IoU 4/25) and .7 would be FPs:
# TP .9 then four FPs -> AP = 1/2 * 1 = 0.5.
SEGM_AP = 5 / 6


def test_segmentation_masks_and_a_group_of_box(tmp_path):
    from pycocotools import mask as mask_utils

    boxes_csv, labels_csv, masks_csv, mask_dir, dets = write_segm_case(tmp_path)
    gt = oid.load_ground_truth(boxes_csv, labels_csv, masks_csv=masks_csv, mask_dir=mask_dir,
                               image_sizes={"s1": (10, 10)})
    frame = [dict(ImageID=i, LabelName=c, Score=s, mask=m) for i, c, s, m in dets]
    frame[1]["mask"] = mask_utils.encode(np.asfortranarray(frame[1]["mask"].astype(np.uint8)))  # RLEs work too
    assert oid.match_detections(gt, frame, "segm")["Status"].tolist() == [1, 0, 1, -1, 0]
    assert oid.evaluate(gt, frame, "segm")["map50"] == pytest.approx(SEGM_AP)
    # the box protocol on the same files uses the boxes: A's ordinary box and the group-of box
    assert oid.evaluate(gt, [det("s1", "A", 0.9, (0.0, 0.4, 0.0, 0.4))])["map50"] == pytest.approx(0.5)
    with pytest.raises(CsalicError, match="sizes"):
        oid.evaluate(gt, [dict(ImageID="s1", LabelName="A", Score=0.5, mask=rect(0, 2, 0, 2, size=8))], "segm")


def test_challenge_mask_encoding_round_trip():
    from pycocotools import mask as mask_utils

    m = rect(2, 5, 1, 7)
    rle = oid.decode_challenge_mask(oid.encode_challenge_mask(m), 10, 10)
    assert (mask_utils.decode(rle).astype(bool) == m).all()


# ----------------------------------------------------------------------------- agreement with pycocotools

def _random_case(seed=7):
    """Boxes on distinct cells of a 4x4 grid (so no detection can reach IoU 0.5 with two boxes and
    COCO's "best box not yet taken" equals OID's "best box"), jittered detections (some below
    IoU 0.5), duplicates and random false positives, random scores."""
    rng = np.random.default_rng(seed)
    sizes = {"im0": (480, 640), "im1": (375, 500), "im2": (600, 800), "im3": (300, 300)}
    classes = ["a", "b", "c"]
    boxes, dets = [], []
    for image in sizes:
        for cell in rng.choice(16, size=6, replace=False):
            x0, y0 = (cell % 4) / 4, (cell // 4) / 4
            m = rng.uniform(0.02, 0.08, size=4)
            b = (x0 + m[0], x0 + 0.25 - m[1], y0 + m[2], y0 + 0.25 - m[3])
            label = classes[rng.integers(3)]
            boxes.append(box(image, label, b))
            for _ in range(int(rng.random() < 0.8) + int(rng.random() < 0.3)):
                j = np.clip(np.array(b) + rng.normal(0, 0.03, size=4), 0, 1)
                if j[0] < j[1] and j[2] < j[3]:
                    dets.append(det(image, label, float(rng.random()), tuple(j)))
        for _ in range(3):
            x, y, w, h = rng.uniform(0, 0.7), rng.uniform(0, 0.7), *rng.uniform(0.05, 0.3, size=2)
            dets.append(det(image, classes[rng.integers(3)], float(rng.random()), (x, x + w, y, y + h)))
    return sizes, classes, boxes, dets


def _coco(sizes, classes, boxes, dets):
    from pycocotools.coco import COCO

    ids = {image: k + 1 for k, image in enumerate(sizes)}
    cats = {c: k + 1 for k, c in enumerate(classes)}

    def xywh(r):
        h, w = sizes[r["ImageID"]]
        return [r["XMin"] * w, r["YMin"] * h, (r["XMax"] - r["XMin"]) * w, (r["YMax"] - r["YMin"]) * h]

    anns = [{"id": k + 1, "image_id": ids[b["ImageID"]], "category_id": cats[b["LabelName"]], "bbox": xywh(b),
             "area": xywh(b)[2] * xywh(b)[3], "iscrowd": 0} for k, b in enumerate(boxes)]
    api = COCO()
    api.dataset = {"images": [{"id": ids[i], "height": h, "width": w} for i, (h, w) in sizes.items()],
                   "annotations": anns, "categories": [{"id": v, "name": c} for c, v in cats.items()]}
    with contextlib.redirect_stdout(io.StringIO()):
        api.createIndex()
    results = [{"image_id": ids[d["ImageID"]], "category_id": cats[d["LabelName"]], "bbox": xywh(d),
                "score": d["Score"]} for d in dets]
    return api, results, cats


def _coco_101(precision, recall):
    """COCO's AP from the same precision/recall arrays: the monotone precision at 101 recall thresholds."""
    p = np.maximum.accumulate(precision[::-1])[::-1]
    at = np.searchsorted(recall, np.linspace(0, 1, 101), side="left")
    return float(np.where(at < len(p), p[np.minimum(at, len(p) - 1)], 0.0).mean())


def test_agrees_with_pycocotools_where_the_protocols_coincide():
    from csalic.metrics.detection import coco_ap50_per_class, coco_map50

    sizes, classes, boxes, dets = _random_case()
    # no group-of, flat hierarchy, every class verified on every image (1 where it has a box, else 0)
    present = {(b["ImageID"], b["LabelName"]) for b in boxes}
    everything = labels(*[(i, c, int((i, c) in present)) for i in sizes for c in classes])
    res = oid.evaluate(gt_of(boxes, everything), dets, curves=True)
    api, results, cats = _coco(sizes, classes, boxes, dets)
    coco = {c: coco_ap50_per_class(api, results)[cats[c]] for c in classes}
    assert set(res["per_class"]) == set(classes)
    assert all(0 < ap < 1 for ap in res["per_class"].values())  # misses and false positives in every class
    for c in classes:
        # Same TP/FP labels, so COCO's 101-point AP recomputed from OID's precision/recall is COCO's.
        assert _coco_101(*res["curves"][c]) == pytest.approx(coco[c], abs=1e-9)
        # Both APs lie between the lower and upper Riemann sums (step 1/100) of the same non-increasing
        # envelope p(r), whose gap is (p(0) - p(1))/100 <= 0.01: they differ by at most 0.01 per class.
        assert abs(res["per_class"][c] - coco[c]) <= 0.01 + 1e-12
    assert abs(res["map50"] - coco_map50(api, results)) <= 0.01 + 1e-12
    assert np.mean(list(coco.values())) == pytest.approx(coco_map50(api, results), abs=1e-12)
    json.dumps(res["per_class"])  # plain floats
