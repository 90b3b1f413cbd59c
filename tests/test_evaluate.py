"""Evaluation on a tiny generated demo set: records, summary structure and real byte counts."""

import json

import numpy as np

import pytest

from csalic.evaluation.anchors import get_anchor
from csalic.cli import main
from csalic.data.coco import CocoEvalSet
from csalic.data.demo import generate_demo
from csalic.errors import CsalicError
from csalic.evaluation.evaluate import (SUMMARY_FORMAT, evaluate_codec, load_summary, make_codec, merge_compressai,
                             write_outputs)
from csalic.metrics.matches import load as load_matches
from csalic.imageio import load_image


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    d = generate_demo(tmp_path_factory.mktemp("demo"), n_train=2, n_val=2)
    return d, CocoEvalSet(d.val_dir, d.val_json)


@pytest.fixture(scope="module")
def net():
    """Random Faster R-CNN, made cheap: small input and every detection kept (so results are non-empty)."""
    from csalic.tasks import load_task_network

    n = load_task_network("tv_faster_rcnn_r50_fpn", allow_random=True)
    n.model.transform.min_size, n.model.transform.max_size = (160,), 160
    n.model.roi_heads.score_thresh = 0.0
    n.model.roi_heads.detections_per_img = 20
    n.model.rpn._pre_nms_top_n["testing"], n.model.rpn._post_nms_top_n["testing"] = 100, 10
    return n


@pytest.fixture(scope="module")
def jpeg_result(demo, net):
    _, ds = demo
    return evaluate_codec(get_anchor("jpeg", 40), ds, net, dataset_name="demo_val", params_hash="abc123",
                          progress=False)


def test_records_hold_real_byte_counts(demo, jpeg_result):
    _, ds = demo
    assert [r["image_id"] for r in jpeg_result.records] == [im.image_id for im in ds.images]
    for rec, im in zip(jpeg_result.records, ds.images):
        data = get_anchor("jpeg", 40).encode(load_image(im.path))
        assert rec["bytes"] == len(data)  # the file itself, coded again independently
        assert rec["bpp"] == pytest.approx(len(data) * 8 / (im.width * im.height))
        assert 20 < rec["psnr_rgb"] < 60 and 20 < rec["psnr_y"] < 60
        assert rec["encode_s"] > 0 and rec["decode_s"] > 0
        assert 0 < rec["predictions"] <= 20  # "N/A" COCO indices are dropped by the task network
    assert len(jpeg_result.detections) == sum(r["predictions"] for r in jpeg_result.records)
    assert {"image_id", "category_id", "bbox", "score"} <= set(jpeg_result.detections[0])


def test_summary_structure_and_provenance(jpeg_result):
    s = jpeg_result.summary
    assert s["format"] == SUMMARY_FORMAT and s["method"] == "jpeg" and s["setting"] == "quality=40"
    assert s["dataset"] == "demo_val" and s["n_images"] == 2 and s["task_net"] == "tv_faster_rcnn_r50_fpn"
    assert s["bpp"] == pytest.approx(sum(r["bpp"] for r in jpeg_result.records) / 2)
    assert s["bytes_total"] == sum(r["bytes"] for r in jpeg_result.records)
    assert 0.0 <= s["map50_bbox"] <= 1.0 and s["map50_segm"] is None  # a detector: no masks
    assert "never estimated" in s["rate"]
    p = s["provenance"]
    assert p["params_hash"] == "abc123" and p["codec"]["quality"] == 40
    assert p["task_net"]["random_init"] is True and p["dataset"]["name"] == "demo_val"
    assert set(p) >= {"git_commit", "checkpoint_sha256", "csalic_version", "created"}


def test_outputs_written_and_merged(tmp_path, jpeg_result):
    paths = write_outputs(jpeg_result, tmp_path / "demo_val" / "jpeg" / "quality_40")
    assert {p.name for p in paths.values()} == {"records.json", "detections.json", "summary.json",
                                                "compressai.json", "matches.npz"}
    s = load_summary(paths["summary"])
    point = load_matches(paths["matches"])  # the bootstrap's input: the summary's numbers on all weights 1
    assert list(point.image_ids) == sorted(r["image_id"] for r in jpeg_result.records)
    ones = np.ones((1, len(point.image_ids)))
    assert point.bpp_mean(ones)[0] == pytest.approx(s["bpp"])
    assert point.matches["bbox"].map50() == s["map50_bbox"] and "segm" not in point.matches
    assert s["setting"] == "quality=40"
    records = json.loads(paths["records"].read_text())
    assert len(records["images"]) == 2
    cai = json.loads(paths["compressai"].read_text())
    assert cai["name"] == "JPEG" and cai["results"]["bpp"] == [s["bpp"]]
    other = dict(s, setting="quality=10", bpp=s["bpp"] / 3)
    merged = merge_compressai([s, other])
    assert merged["results"]["setting"] == ["quality=10", "quality=40"]
    assert set(merged["results"]) >= {"bpp", "psnr-rgb", "map50_bbox", "map50_segm"}
    with pytest.raises(CsalicError, match="different methods"):
        merge_compressai([s, dict(s, method="webp")])


def test_uncompressed_ceiling(demo, net):
    _, ds = demo
    res = evaluate_codec(make_codec("none"), ds, net, dataset_name="demo_val", max_images=1, progress=False)
    (rec,) = res.records
    assert rec["psnr_rgb"] is None and res.summary["lossless_images"] == 1 and res.summary["psnr_rgb"] is None
    assert 24.0 < rec["bpp"] < 24.01  # a PPM: raw RGB plus its short header


def test_make_codec_needs_its_setting():
    with pytest.raises(CsalicError, match="needs --checkpoint"):
        make_codec("csalic")
    with pytest.raises(CsalicError, match="needs --qp"):
        make_codec("vvc")
    with pytest.raises(CsalicError, match="needs --qp 0..51"):
        make_codec("hevc-qp")
    with pytest.raises(CsalicError, match="needs --quality"):
        make_codec("webp")
    with pytest.raises(CsalicError, match="unknown codec"):
        make_codec("bpg")


def test_cli_evaluate(demo, net, tmp_path, monkeypatch, capsys):
    import csalic.tasks

    d, _ = demo
    monkeypatch.setattr(csalic.tasks, "load_task_network", lambda *a, **k: net)
    out = tmp_path / "out dir"
    args = ["evaluate", "--codec", "webp", "--quality", "30", "--images", str(d.val_dir), "--annotations",
            str(d.val_json), "--dataset-name", "demo_val", "--task-net", "tv_faster_rcnn_r50_fpn",
            "--out", str(out), "--max-images", "1", "--quiet"]
    assert main(args) == 0
    assert "demo_val webp quality=30: 1 images" in capsys.readouterr().out
    assert load_summary(out / "summary.json")["n_images"] == 1
    assert main(args[:3] + ["--qp", "32"] + args[5:]) == 2
    assert "--qp only applies to --codec vvc" in capsys.readouterr().err
    assert main(args[:-3] + ["--max-images", "0"]) == 2
    assert "--max-images must be >= 1" in capsys.readouterr().err
    # the paper's anchor with no configuration: VVenC through the bundled FFmpeg, named in the summary
    vvc = ["evaluate", "--codec", "vvc", "--qp", "50"] + args[5:-4] + [str(tmp_path / "vvc"), "--max-images", "1",
                                                                       "--quiet"]
    assert main(vvc) == 0, capsys.readouterr().err
    s = load_summary(tmp_path / "vvc" / "summary.json")
    assert s["method"] == "vvc" and s["setting"] == "qp=50" and 0 < s["bpp"] < 1
    assert s["provenance"]["codec"]["label"].startswith("VVC-Intra (VVenC 1.15")
    assert s["provenance"]["codec"]["flavour"] == "ffmpeg"


def test_exif_rotated_image_is_read_as_annotated(tmp_path):
    import numpy as np
    from PIL import Image

    from csalic.evaluation.evaluate import load_as_annotated

    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: a viewer shows 40x60, the stored pixels (and COCO boxes) are 60x40
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / "r.jpg", exif=exif.tobytes())
    assert load_image(tmp_path / "r.jpg").size == (40, 60)
    assert load_as_annotated(tmp_path / "r.jpg", 60, 40).size == (60, 40)
    assert load_as_annotated(tmp_path / "r.jpg", 40, 60).size == (40, 60)
    with pytest.raises(CsalicError, match="annotations say 50x50"):
        load_as_annotated(tmp_path / "r.jpg", 50, 50)
