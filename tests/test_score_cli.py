"""``csalic score`` as a user runs it: real files, the JSON and table outputs, one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from csalic.cli import main
from csalic.metrics import oid
from test_oid_protocol import HIERARCHY, SEGM_AP, write_segm_case

CAT, DOG = (0.1, 0.4, 0.1, 0.4), (0.5, 0.9, 0.5, 0.9)


def _csv(path, rows, columns):
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return str(path)


def _det(image, label, score, xy):
    return (image, label, score, *xy)


@pytest.fixture
def oid_files(tmp_path):
    """The hierarchy case of test_oid_protocol: cat/dog boxes, "animal" a verified negative on i3."""
    boxes = _csv(tmp_path / "boxes.csv", [("i1", "xclick", "/m/cat", 1, *CAT, 0, 0, 0, 0, 0),
                                          ("i2", "xclick", "/m/dog", 1, *DOG, 0, 0, 0, 0, 0)],
                 ["ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax", "IsOccluded",
                  "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside"])
    labels = _csv(tmp_path / "labels.csv", [("i1", "verification", "/m/cat", 1), ("i2", "verification", "/m/dog", 1),
                                            ("i3", "verification", "/m/animal", 0)],
                  ["ImageID", "Source", "LabelName", "Confidence"])
    (tmp_path / "hierarchy.json").write_text(json.dumps(HIERARCHY))
    dets = _csv(tmp_path / "dets.csv", [_det("i1", "/m/cat", 0.9, CAT), _det("i1", "/m/animal", 0.8, CAT),
                                        _det("i2", "/m/dog", 0.7, DOG), _det("i2", "/m/animal", 0.6, DOG),
                                        _det("i3", "/m/cat", 0.5, CAT), _det("i3", "/m/dog", 0.95, DOG)],
                oid.DETECTION_COLUMNS)
    return {"--boxes": boxes, "--image-labels": labels, "--hierarchy": str(tmp_path / "hierarchy.json"),
            "--detections": dets}


def _args(files, **override):
    merged = {**files, **override}
    return ["score", "--protocol", "oid", *[x for k, v in merged.items() if v is not None for x in (k, v)]]


def _run(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _error(capsys, argv):
    code, out, err = _run(capsys, argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("csalic: error: "), (code, out, err)
    return lines[0]


def test_oid_json(capsys, oid_files):
    # cat: TP .9, FP .5 -> 1; dog: FP .95, TP .7 -> 1/2; animal (expanded, 2 positives): TP .8, TP .6 -> 1
    code, out, _ = _run(capsys, _args(oid_files) + ["--json"])
    assert code == 0
    got = json.loads(out)
    assert set(got) == {"protocol", "iou_type", "map50", "per_class"}
    assert got["protocol"] == "oid" and got["iou_type"] == "bbox"
    assert got["per_class"] == {"/m/animal": 1.0, "/m/cat": 1.0, "/m/dog": 0.5}
    assert got["map50"] == pytest.approx(5 / 6)
    # no --hierarchy: flat labels; the i3 detections are unverified (ignored), animal has no positive
    code, out, _ = _run(capsys, _args(oid_files, **{"--hierarchy": None}) + ["--json"])
    assert json.loads(out)["per_class"] == {"/m/cat": 1.0, "/m/dog": 1.0} and json.loads(out)["map50"] == 1.0


def test_oid_table(capsys, oid_files):
    code, out, _ = _run(capsys, _args(oid_files))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["class", "AP@0.5"]
    assert [ln.split() for ln in lines[1:4]] == [["/m/animal", "1.0000"], ["/m/cat", "1.0000"], ["/m/dog", "0.5000"]]
    assert lines[4] == "mAP@0.5 (oid, bbox, 3 classes): 0.8333"
    assert len({ln.index("AP@0.5") if i == 0 else ln.rindex(" ") + 1 for i, ln in enumerate(lines[:4])}) == 1


def test_oid_header_only_detections_score_zero(capsys, oid_files, tmp_path):
    (tmp_path / "empty.csv").write_text(",".join(oid.DETECTION_COLUMNS) + "\n")
    code, out, _ = _run(capsys, _args(oid_files, **{"--detections": str(tmp_path / "empty.csv")}) + ["--json"])
    assert code == 0 and json.loads(out)["map50"] == 0.0
    assert json.loads(out)["per_class"] == {"/m/animal": 0.0, "/m/cat": 0.0, "/m/dog": 0.0}


def test_oid_bad_input(capsys, oid_files, tmp_path):
    no_group = _csv(tmp_path / "nogroup.csv", [("i1", "/m/cat", *CAT)], ["ImageID", "LabelName", *oid.BOX])
    line = _error(capsys, _args(oid_files, **{"--boxes": no_group}))
    assert "nogroup.csv" in line and "IsGroupOf" in line
    unicorn = _csv(tmp_path / "unicorn.csv", [_det("i1", "/m/unicorn", 0.9, CAT)], oid.DETECTION_COLUMNS)
    assert "'/m/unicorn'" in _error(capsys, _args(oid_files, **{"--detections": unicorn}))
    outside = _csv(tmp_path / "outside.csv", [_det("i1", "/m/cat", 0.9, CAT), _det("i1", "/m/cat", 0.8, (0.1, 1.2, 0, 1))],
                   oid.DETECTION_COLUMNS)
    assert "outside.csv line 3: box XMin=0.1 XMax=1.2" in _error(capsys, _args(oid_files, **{"--detections": outside}))
    (tmp_path / "zero.csv").write_bytes(b"")
    assert "zero.csv is empty" in _error(capsys, _args(oid_files, **{"--detections": str(tmp_path / "zero.csv")}))
    assert "not found" in _error(capsys, _args(oid_files, **{"--detections": str(tmp_path / "nope.csv")}))
    assert "needs --image-labels" in _error(capsys, _args(oid_files, **{"--image-labels": None}))
    assert "--annotations does not apply" in _error(capsys, _args(oid_files, **{"--annotations": "x.json"}))


def test_bad_input_through_the_real_command_line(oid_files, tmp_path):
    (tmp_path / "zero.csv").write_bytes(b"")
    out = subprocess.run([sys.executable, "-m", "csalic.cli", *_args(oid_files, **{"--detections": str(tmp_path / "zero.csv")})],
                         capture_output=True, text=True)
    assert out.returncode == 2 and out.stdout == ""
    assert len(out.stderr.splitlines()) == 1 and out.stderr.startswith("csalic: error: detections CSV ")


def test_oid_segmentation(capsys, tmp_path):
    boxes, labels, masks, mask_dir, dets = write_segm_case(tmp_path)
    rows = [(i, c, s, oid.encode_challenge_mask(m), m.shape[1], m.shape[0]) for i, c, s, m in dets]
    dets_csv = _csv(tmp_path / "segm.csv", rows, oid.SEGM_DETECTION_COLUMNS)
    code, out, _ = _run(capsys, ["score", "--protocol", "oid", "--iou-type", "segm", "--boxes", str(boxes),
                                 "--image-labels", str(labels), "--masks", str(masks), "--mask-dir", str(mask_dir),
                                 "--detections", dets_csv, "--json"])
    assert code == 0 and json.loads(out) == {"protocol": "oid", "iou_type": "segm", "map50": pytest.approx(SEGM_AP),
                                             "per_class": {"A": pytest.approx(SEGM_AP)}}
    assert "needs --masks" in _error(capsys, ["score", "--protocol", "oid", "--iou-type", "segm", "--boxes", str(boxes),
                                              "--image-labels", str(labels), "--detections", dets_csv])


# ----------------------------------------------------------------------------- COCO

@pytest.fixture
def coco_files(tmp_path):
    gt = {"images": [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}],
          "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "area": 1600, "iscrowd": 0},
                          {"id": 2, "image_id": 2, "category_id": 1, "bbox": [50, 50, 30, 30], "area": 900, "iscrowd": 0},
                          {"id": 3, "image_id": 1, "category_id": 2, "bbox": [60, 10, 30, 30], "area": 900, "iscrowd": 0}]}
    results = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "score": 0.9},
               {"image_id": 2, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.8},
               {"image_id": 2, "category_id": 1, "bbox": [50, 50, 30, 30], "score": 0.7},
               {"image_id": 1, "category_id": 2, "bbox": [60, 10, 30, 30], "score": 0.6}]
    (tmp_path / "instances.json").write_text(json.dumps(gt))
    (tmp_path / "results.json").write_text(json.dumps(results))
    return tmp_path


def _coco_args(folder, results="results.json"):
    return ["score", "--protocol", "coco", "--annotations", str(folder / "instances.json"),
            "--detections", str(folder / results)]


def test_coco_json_and_table(capsys, coco_files):
    # cat: TP .9, FP .8, TP .7 -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1; COCO samples 101 recall
    # points: 0..0.50 (51) -> 1, 0.51..1 (50) -> 2/3 -> (51 + 100/3)/101 = 253/303 = 0.8350.
    # dog: TP -> 1.  mAP = (253/303 + 1)/2 = 0.9175.
    code, out, _ = _run(capsys, _coco_args(coco_files) + ["--json"])
    got = json.loads(out)
    assert code == 0 and got["protocol"] == "coco" and got["iou_type"] == "bbox"
    assert got["per_class"] == {"cat": pytest.approx(253 / 303), "dog": pytest.approx(1.0)}
    assert got["map50"] == pytest.approx((253 / 303 + 1) / 2)
    code, out, _ = _run(capsys, _coco_args(coco_files))
    assert out.splitlines() == ["class  AP@0.5", "cat    0.8350", "dog    1.0000", "mAP@0.5 (coco, bbox, 2 classes): 0.9175"]


def test_coco_empty_results_and_bad_input(capsys, coco_files):
    (coco_files / "none.json").write_text("[]")
    code, out, _ = _run(capsys, _coco_args(coco_files, "none.json") + ["--json"])
    assert code == 0 and json.loads(out)["map50"] == 0.0 and json.loads(out)["per_class"] == {"cat": 0.0, "dog": 0.0}
    (coco_files / "zero.json").write_bytes(b"")
    assert "zero.json is empty" in _error(capsys, _coco_args(coco_files, "zero.json"))
    (coco_files / "bad.json").write_text("[{")
    assert "bad.json is not readable JSON" in _error(capsys, _coco_args(coco_files, "bad.json"))
    (coco_files / "nobox.json").write_text(json.dumps([{"image_id": 1, "category_id": 1, "score": 0.5}]))
    assert "result 0 has no 'bbox'" in _error(capsys, _coco_args(coco_files, "nobox.json"))
    assert "not found" in _error(capsys, _coco_args(coco_files, "nope.json"))
    assert "needs --annotations" in _error(capsys, ["score", "--protocol", "coco", "--detections", "x.json"])


def test_coco_segmentation(capsys, coco_files):
    from csalic.metrics.detection import encode_masks

    gt = json.loads((coco_files / "instances.json").read_text())
    for a in gt["annotations"]:
        x, y, w, h = a["bbox"]
        a["segmentation"] = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    (coco_files / "instances.json").write_text(json.dumps(gt))
    results = json.loads((coco_files / "results.json").read_text())
    for r in results:
        m = np.zeros((1, 100, 100), dtype=bool)
        x, y, w, h = r["bbox"]
        m[0, y:y + h, x:x + w] = True
        r["segmentation"] = encode_masks(m)[0]
    (coco_files / "results.json").write_text(json.dumps(results))
    code, out, _ = _run(capsys, _coco_args(coco_files) + ["--iou-type", "segm", "--json"])
    assert code == 0 and json.loads(out)["map50"] == pytest.approx((253 / 303 + 1) / 2, abs=1e-3)


def test_the_readmes_open_images_example_prints_what_the_readme_says(capsys, tmp_path):
    """The hand-sized case of the README's `csalic score` section, its files parsed from the README itself."""
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = readme.split("```text\nboxes.csv", 1)[1].split("```", 1)[0]
    import re

    left, right = [], []
    for line in block.splitlines():
        if line.startswith("hierarchy.json"):
            break
        parts = re.split(r"\s{2,}", line.strip())
        if line.startswith(" "):  # the right column only
            left.append("")
            right.append(parts[0])
        else:
            left.append(parts[0])
            right.append(parts[1] if len(parts) > 1 else "")
    files = {"boxes": [], "labels": []}
    current = "boxes"
    for line in left:
        if line == "labels.csv":
            current = "labels"
        elif line:
            files[current].append(line)
    boxes_rows = [r.split(",") for r in files["boxes"][1:]]
    pd.DataFrame(boxes_rows, columns=files["boxes"][0].split(",")).to_csv(tmp_path / "boxes.csv", index=False)
    (tmp_path / "labels.csv").write_text("\n".join(files["labels"]) + "\n")
    (tmp_path / "detections.csv").write_text("\n".join(r for r in right if r and r != "detections.csv"
                                                       and not r.startswith("hierarchy.json")) + "\n")
    (tmp_path / "hierarchy.json").write_text(json.dumps(
        {"LabelName": "/m/entity", "Subcategory": [{"LabelName": "/m/animal", "Subcategory": [
            {"LabelName": "/m/cat"}, {"LabelName": "/m/dog"}]}, {"LabelName": "/m/car"}, {"LabelName": "/m/bird"}]}))
    assert "hierarchy.json: /m/entity > {/m/animal > {/m/cat, /m/dog}, /m/car, /m/bird}" in readme
    code, out, err = _run(capsys, ["score", "--protocol", "oid", "--boxes", str(tmp_path / "boxes.csv"),
                                 "--image-labels", str(tmp_path / "labels.csv"), "--hierarchy",
                                 str(tmp_path / "hierarchy.json"), "--detections", str(tmp_path / "detections.csv"),
                                 "--json"])
    assert code == 0, err
    got = json.loads(out)
    printed = readme.split("--detections detections.csv --json\n", 1)[1].split("```", 1)[0]
    expected = json.loads("".join(line.lstrip("# ").strip() for line in printed.splitlines()))
    assert got == expected and got["map50"] == pytest.approx(5 / 6)
