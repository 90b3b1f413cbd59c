"""csalic.data: COCO filter, manifests, crops, loaders, demo data, OpenImages conversion, CLI."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from csalic.cli import main
from csalic.data import (
    CATEGORIES,
    CocoEvalSet,
    ManifestRow,
    convert_openimages,
    filter_coco,
    generate_demo,
    keep_size,
    read_manifest,
    summary_path,
    write_manifest,
)
from csalic.data.crops import RandomCropDataset, load_image, make_loader, to_rgb_float
from csalic.data.demo import MAX_OBJ, MIN_OBJ, OPACITY
from csalic.errors import CsalicError

# (width, height) -> kept under both_sides_gt / both_sides_ge at 256
SIZES = {
    (256, 300): (False, True), (300, 256): (False, True), (257, 257): (True, True),
    (255, 400): (False, False), (400, 255): (False, False), (256, 256): (False, True),
    (640, 480): (True, True), (257, 300): (True, True), (300, 257): (True, True),
}


def _coco_json(path: Path, sizes, images_last=False) -> Path:
    images = [{"id": i + 1, "file_name": f"{i + 1:012d}.jpg", "width": w, "height": h}
              for i, (w, h) in enumerate(sizes)]
    # a decoy "images" key nested before the real one must not fool the fast path
    data = {"info": {"description": 'has "images": [1] inside', "images": [1, 2]},
            "annotations": [], "categories": [{"id": 1, "name": "x"}]}
    data = {**data, "images": images} if images_last else {"images": images, **data}
    path.write_text(json.dumps(data))
    return path


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return generate_demo(tmp_path_factory.mktemp("demo"), n_train=4, n_val=3, seed=3)


# ----------------------------------------------------------------------------- COCO filter

@pytest.mark.parametrize("rule,col", [("both_sides_gt", 0), ("both_sides_ge", 1)])
@pytest.mark.parametrize("images_last", [False, True])
def test_filter_counts_from_annotations(tmp_path, rule, col, images_last):
    ann = _coco_json(tmp_path / "ann.json", list(SIZES), images_last)
    res = filter_coco(annotations=ann, rule=rule)
    expected = [s for s, k in SIZES.items() if k[col]]
    assert [(r.width, r.height) for r in res.rows] == expected
    s = res.summary
    assert (s["total"], s["kept"], s["dropped_small"], s["missing"], s["unreadable"]) == \
        (len(SIZES), len(expected), len(SIZES) - len(expected), 0, 0)
    assert s["rule"] == rule and s["min_side"] == 256
    assert all(keep_size(w, h, 256, rule) == k[col] for (w, h), k in SIZES.items())


def test_filter_checks_existence_with_one_listing(tmp_path, caplog):
    ann = _coco_json(tmp_path / "ann.json", [(640, 480), (300, 300), (100, 100)])
    img = tmp_path / "coco" / "train2017"
    img.mkdir(parents=True)
    (img / "000000000001.jpg").write_bytes(b"")  # never opened: sizes come from the JSON
    (img / "000000000003.jpg").write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        res = filter_coco(annotations=ann, images=img, image_root=tmp_path / "coco")
    assert [r.path for r in res.rows] == ["train2017/000000000001.jpg"]
    assert res.summary["missing"] == 1 and res.summary["dropped_small"] == 1
    assert len(caplog.records) == 1 and "000000000002.jpg" in caplog.records[0].getMessage()


def test_filter_header_fallback_missing_and_corrupt_are_counted(tmp_path, caplog):
    img = tmp_path / "imgs"
    img.mkdir()
    Image.new("RGB", (300, 280)).save(img / "big.png")
    Image.new("RGB", (200, 300)).save(img / "small.jpg")
    (img / "corrupt.jpg").write_bytes(b"not an image at all" * 10)
    with caplog.at_level(logging.WARNING):
        res = filter_coco(images=img, image_list=["big.png", "small.jpg", "corrupt.jpg", "gone.png"])
    s = res.summary
    assert (s["total"], s["kept"], s["dropped_small"], s["missing"], s["unreadable"]) == (4, 1, 1, 1, 1)
    assert res.rows == [ManifestRow("big.png", 300, 280)]
    assert res.missing == ["gone.png"] and res.unreadable == ["corrupt.jpg"]
    assert len(caplog.records) == 2  # one line per kind, not one per image
    scanned = filter_coco(images=img)  # no list: scan the folder
    assert scanned.summary["total"] == 3 and scanned.summary["unreadable"] == 1


def test_manifest_roundtrip_and_errors(tmp_path):
    rows = [ManifestRow("a/b.jpg", 300, 400), ManifestRow("c,d.jpg", 257, 257)]
    p = write_manifest(tmp_path / "m.csv", rows, {"kept": 2})
    assert read_manifest(p) == rows
    assert json.loads(summary_path(p).read_text())["kept"] == 2
    (tmp_path / "bad.csv").write_text("file,w,h\n")
    with pytest.raises(CsalicError, match="not a csalic manifest"):
        read_manifest(tmp_path / "bad.csv")
    with pytest.raises(CsalicError, match="unknown size rule"):
        filter_coco(annotations=p, rule="area")


def test_filter_rejects_non_coco_json(tmp_path):
    (tmp_path / "x.json").write_text('{"annotations": []}')
    with pytest.raises(CsalicError, match="not a COCO instances file"):
        filter_coco(annotations=tmp_path / "x.json")
    (tmp_path / "y.json").write_text("{oops")
    with pytest.raises(CsalicError, match="not valid JSON"):
        filter_coco(annotations=tmp_path / "y.json")


# ----------------------------------------------------------------------------- eval sets

def test_eval_set_and_its_errors(demo, tmp_path):
    ev = CocoEvalSet(demo.val_dir, demo.val_json)
    assert len(ev) == 3 and ev[0].path.is_file() and (ev[0].width, ev[0].height) == (320, 320)
    assert list(ev.category_names.values()) == [c["name"] for c in CATEGORIES]
    assert len(ev.coco().getImgIds()) == 3
    with pytest.raises(CsalicError, match="image folder"):
        CocoEvalSet(tmp_path / "nope", demo.val_json)
    with pytest.raises(CsalicError, match="does not exist"):
        CocoEvalSet(demo.val_dir, tmp_path / "nope.json")
    (tmp_path / "captions.json").write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(CsalicError, match="no 'categories'"):
        CocoEvalSet(demo.val_dir, tmp_path / "captions.json")
    data = json.loads(demo.val_json.read_text())
    data["images"].append({"id": 99, "file_name": "absent.png", "width": 320, "height": 320})
    (tmp_path / "plus.json").write_text(json.dumps(data))
    with pytest.raises(CsalicError, match="1 of 4 images"):
        CocoEvalSet(demo.val_dir, tmp_path / "plus.json")
    ev = CocoEvalSet(demo.val_dir, tmp_path / "plus.json", allow_missing=True)
    assert len(ev) == 3 and ev.missing == ["absent.png"]


# ----------------------------------------------------------------------------- crops and loaders

def test_crops_shape_range_and_determinism(demo):
    ds = RandomCropDataset(demo.manifest, demo.root, crop=256, seed=7)
    x = ds[0]
    assert x.shape == (3, 256, 256) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    ds.set_epoch(2)
    a = [ds[i] for i in range(len(ds))]
    again = RandomCropDataset(demo.manifest, demo.root, crop=256, seed=7)
    again.set_epoch(2)
    assert all(torch.equal(u, again[i]) for i, u in enumerate(a))
    ds.set_epoch(3)
    assert any(not torch.equal(u, ds[i]) for i, u in enumerate(a))
    assert ds.crop_origin(1, 320, 320) != RandomCropDataset(demo.manifest, demo.root, seed=8).crop_origin(1, 320, 320) \
        or ds.crop_origin(2, 320, 320) != RandomCropDataset(demo.manifest, demo.root, seed=8).crop_origin(2, 320, 320)


def test_decoded_images_are_cached_within_the_budget_and_give_the_same_crops(tmp_path):
    rng = np.random.default_rng(3)
    rows = []
    for i in range(3):  # 16-bit greyscale too: its conversion depends on the crop, so the decoded image is kept
        arr = rng.integers(0, 65535 if i == 2 else 255, (90, 120) if i == 2 else (90, 120, 3))
        Image.fromarray(arr.astype(np.uint16 if i == 2 else np.uint8)).save(tmp_path / f"{i}.png")
        rows.append(ManifestRow(f"{i}.png", 120, 90))
    uncached = RandomCropDataset(rows, tmp_path, crop=64, seed=1, cache_mb=0)
    cached = RandomCropDataset(rows, tmp_path, crop=64, seed=1, cache_mb=2 * 120 * 90 * 3 / 2**20)  # two RGB images
    for epoch in (0, 1):
        uncached.set_epoch(epoch)
        cached.set_epoch(epoch)
        assert all(torch.equal(uncached[i], cached[i]) for i in range(3))
    assert sorted(cached._cache) == [0, 1] and not uncached._cache  # the budget holds two
    before = uncached[1]
    for i in range(3):
        (tmp_path / f"{i}.png").unlink()
    assert torch.equal(cached[1], before)  # served from memory
    with pytest.raises(CsalicError, match="is missing"):
        uncached[1]


def test_small_image_is_reflect_padded(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 100, 3), dtype=np.uint8)).save(tmp_path / "s.png")
    ds = RandomCropDataset([ManifestRow("s.png", 100, 50)], tmp_path, crop=64)
    x = ds[0]
    assert x.shape == (3, 64, 64)
    # reflection: the row above the original top equals the row below it
    assert torch.equal(x[:, 6, :], x[:, 8, :])


def test_odd_modes_become_rgb(tmp_path):
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    pal = rgb.convert("P")
    pal.info["transparency"] = 0
    sixteen = Image.fromarray(np.full((40, 40), 65535, dtype=np.uint16))
    imgs = {"L": rgb.convert("L"), "LA": rgb.convert("LA"), "RGBA": rgb.convert("RGBA"), "P": pal,
            "CMYK": rgb.convert("CMYK"), "1": rgb.convert("1"), "I16": sixteen,
            "F": rgb.convert("F")}
    for name, im in imgs.items():
        a = to_rgb_float(im)
        assert a.shape == (40, 40, 3) and a.dtype == np.float32, name
        assert 0.0 <= a.min() and a.max() <= 1.0, name
    assert np.allclose(to_rgb_float(sixteen), 1.0)
    assert np.allclose(to_rgb_float(Image.fromarray(np.full((4, 4), 32768, dtype=np.uint16))), 32768 / 65535,
                       atol=1 / 255)  # scaled from the 16-bit range, then 8-bit like every codec input
    # alpha is composited on white, as `csalic compress` and the evaluation do
    clear = Image.new("RGBA", (4, 4), (10, 20, 30, 0))
    assert np.allclose(to_rgb_float(clear), 1.0)
    assert np.allclose(to_rgb_float(Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32), "F")), 128 / 255)
    sixteen.save(tmp_path / "d.png")
    x = RandomCropDataset([ManifestRow("d.png", 40, 40)], tmp_path, crop=32)[0]
    assert x.shape == (3, 32, 32) and torch.allclose(x, torch.ones_like(x))


def test_exif_orientation_applied(tmp_path):
    im = Image.new("RGB", (30, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    im.save(tmp_path / "o.jpg", exif=exif)
    assert load_image(tmp_path / "o.jpg").size == (20, 30)
    with pytest.raises(CsalicError, match="missing"):
        load_image(tmp_path / "gone.jpg")


def test_loader_resumes_same_batches_with_persistent_workers(demo):
    def epoch_batches(workers, epochs):
        ds = RandomCropDataset(demo.manifest, demo.root, crop=64, seed=5)
        loader = make_loader(ds, batch_size=2, workers=workers)
        out = []
        for e in epochs:
            ds.set_epoch(e)
            out.append(torch.cat(list(loader)))
        return out

    ref = epoch_batches(0, [0, 1])
    assert ref[0].shape == (4, 3, 64, 64) and not torch.equal(ref[0], ref[1])
    persistent = epoch_batches(1, [0, 1])  # set_epoch must reach the already-running worker
    assert torch.equal(persistent[0], ref[0]) and torch.equal(persistent[1], ref[1])
    resumed = epoch_batches(1, [1])  # a fresh job starting at epoch 1
    assert torch.equal(resumed[0], ref[1])
    with pytest.raises(CsalicError):
        make_loader(RandomCropDataset(demo.manifest, demo.root), batch_size=0)


# ----------------------------------------------------------------------------- demo data

def test_demo_is_byte_identical(tmp_path):
    a = generate_demo(tmp_path / "a", n_train=2, n_val=1, seed=11)
    b = generate_demo(tmp_path / "b", n_train=2, n_val=1, seed=11)
    fa = sorted(p.relative_to(a.root) for p in a.root.rglob("*") if p.is_file())
    fb = sorted(p.relative_to(b.root) for p in b.root.rglob("*") if p.is_file())
    assert fa == fb and len(fa) == 3 + 2 + 2
    assert all((a.root / f).read_bytes() == (b.root / f).read_bytes() for f in fa)
    c = generate_demo(tmp_path / "c", n_train=2, n_val=1, seed=12)
    assert (c.train_dir / "000001.png").read_bytes() != (a.train_dir / "000001.png").read_bytes()


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(r):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def test_demo_layout_and_annotations_match_pixels(demo):
    assert read_manifest(demo.manifest)[0] == ManifestRow("train/000001.png", 320, 320)
    assert json.loads(summary_path(demo.manifest).read_text())["kept"] == 4
    cats = {c["id"]: c for c in CATEGORIES}
    assert {cats[1]["shape"], cats[2]["shape"]} == {"disc"} and cats[1]["rgb"] != cats[2]["rgb"]
    luma = lambda c: 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]  # noqa: E731
    assert abs(luma(cats[1]["rgb"]) - luma(cats[2]["rgb"])) < 3  # only chroma separates them
    opacities = []
    for split_dir, ann_json in ((demo.train_dir, demo.train_json), (demo.val_dir, demo.val_json)):
        data = json.loads(ann_json.read_text())
        assert data["annotations"]
        for ann in data["annotations"]:
            im = data["images"][ann["image_id"] - 1]
            pix = np.asarray(Image.open(split_dir / im["file_name"]), dtype=np.float64)
            m = mask_utils.decode(ann["segmentation"]).astype(bool)
            assert m.sum() == ann["area"] == int(mask_utils.area(ann["segmentation"]))
            x, y, w, h = ann["bbox"]
            ys, xs = np.nonzero(m)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x, y, x + w, y + h)
            assert MIN_OBJ <= max(w, h) <= MAX_OBJ + 1
            # translucent paint: inside = opacity * colour + (1 - opacity) * background, so the mask's
            # pixels moved from the surrounding ring towards the category's colour by about the opacity
            ring = _dilate(m, 3) & ~m
            inside, around = pix[m].mean(axis=0), pix[ring].mean(axis=0)
            towards = np.asarray(cats[ann["category_id"]]["rgb"], dtype=np.float64) - around
            opacity = float(np.dot(inside - around, towards) / np.dot(towards, towards))
            assert OPACITY[0] - 0.12 < opacity < OPACITY[1] + 0.12, (ann, opacity)
            opacities.append(opacity)
    assert np.std(opacities) > 0.05  # faint and strong objects both occur


# ----------------------------------------------------------------------------- OpenImages

def _oi_fixture(tmp_path: Path) -> dict[str, Path]:
    img = tmp_path / "oi"
    img.mkdir()
    Image.new("RGB", (200, 100)).save(img / "aaaa.jpg")
    Image.new("RGB", (50, 40)).save(img / "bbbb.jpg")
    Image.new("RGB", (60, 60)).save(img / "cccc.jpg")  # not in the list
    (tmp_path / "classes.csv").write_text("LabelName,DisplayName\n/m/cat,Cat\n/m/dog,Dog\n/m/car,Car\n")
    (tmp_path / "list.txt").write_text("# vcm subset\nbbbb.jpg\naaaa\nzzzz\n")
    (tmp_path / "boxes.csv").write_text(
        "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside\n"
        "aaaa,xclick,/m/dog,1,0.1,0.5,0.2,0.6,0,0,0,0,0\n"
        "bbbb,xclick,/m/cat,1,0,1,0,0.5,0,0,1,0,0\n"
        "cccc,xclick,/m/car,1,0,1,0,1,0,0,0,0,0\n"
        "aaaa,xclick,/m/cat,1,0.5,1,0,1,0,0,0,0,0\n")
    masks = tmp_path / "masks"
    masks.mkdir()
    m1 = np.zeros((100, 200), np.uint8)
    m1[20:60, 20:100] = 255
    Image.fromarray(m1).save(masks / "aaaa_m0dog_1.png")
    m2 = np.zeros((20, 25), np.uint8)  # half resolution: resized to 50x40 by nearest
    m2[0:10, 0:5] = 255
    Image.fromarray(m2).save(masks / "bbbb_m0cat_1.png")
    (tmp_path / "masks.csv").write_text(
        "MaskPath,ImageID,LabelName,BoxID,BoxXMin,BoxXMax,BoxYMin,BoxYMax,PredictedIoU,Clicks\n"
        "aaaa_m0dog_1.png,aaaa,/m/dog,1,0.1,0.5,0.2,0.6,0.9,\n"
        "bbbb_m0cat_1.png,bbbb,/m/cat,1,0,0.2,0,0.5,0.9,\n"
        "bbbb_gone.png,bbbb,/m/cat,2,0,1,0,1,0.9,\n")
    return {"img": img, "classes": tmp_path / "classes.csv", "list": tmp_path / "list.txt",
            "boxes": tmp_path / "boxes.csv", "masks_csv": tmp_path / "masks.csv", "masks": masks}


def test_openimages_detection_conversion(tmp_path):
    f = _oi_fixture(tmp_path)
    coco, s = convert_openimages(f["img"], f["classes"], boxes_csv=f["boxes"], image_list=f["list"],
                                 out=tmp_path / "det.json")
    assert json.loads((tmp_path / "det.json").read_text()) == coco
    assert coco["images"] == [
        {"id": 1, "file_name": "aaaa.jpg", "width": 200, "height": 100, "oid_image_id": "aaaa"},
        {"id": 2, "file_name": "bbbb.jpg", "width": 50, "height": 40, "oid_image_id": "bbbb"},
    ]
    assert coco["categories"] == [{"id": 1, "name": "Cat", "supercategory": "none", "label_name": "/m/cat"},
                                  {"id": 2, "name": "Dog", "supercategory": "none", "label_name": "/m/dog"}]
    assert coco["annotations"] == [
        {"id": 1, "image_id": 1, "category_id": 2, "bbox": [20.0, 20.0, 80.0, 40.0], "area": 3200.0, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 1, "bbox": [100.0, 0.0, 100.0, 100.0], "area": 10000.0, "iscrowd": 0},
        {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0.0, 0.0, 50.0, 20.0], "area": 1000.0, "iscrowd": 1},
    ]
    assert s["missing_images"] == 1 and s["images"] == 2
    ev = CocoEvalSet(f["img"], tmp_path / "det.json")
    assert len(ev) == 2


def test_openimages_segmentation_conversion(tmp_path):
    f = _oi_fixture(tmp_path)
    coco, s = convert_openimages(f["img"], f["classes"], masks_csv=f["masks_csv"], mask_dir=f["masks"],
                                 image_list=f["list"])
    assert s["missing_masks"] == 1 and len(coco["annotations"]) == 2
    a, b = coco["annotations"]
    assert a["bbox"] == [20.0, 20.0, 80.0, 40.0] and a["area"] == 40 * 80 and a["iscrowd"] == 0
    ma = mask_utils.decode(a["segmentation"])
    assert ma.shape == (100, 200) and ma[20:60, 20:100].all() and ma.sum() == 3200
    mb = mask_utils.decode(b["segmentation"])
    assert mb.shape == (40, 50) and b["area"] == mb.sum() == 20 * 10 and mb[:20, :10].all()
    with pytest.raises(CsalicError, match="exactly one"):
        convert_openimages(f["img"], f["classes"])
    (tmp_path / "few.csv").write_text("LabelName,DisplayName\n/m/cat,Cat\n")
    with pytest.raises(CsalicError, match="not in the class descriptions"):
        convert_openimages(f["img"], tmp_path / "few.csv", boxes_csv=f["boxes"], image_list=f["list"])
    (tmp_path / "wrong.csv").write_text("ImageID,Label\naaaa,/m/cat\n")
    with pytest.raises(CsalicError, match="no column"):
        convert_openimages(f["img"], f["classes"], boxes_csv=tmp_path / "wrong.csv")


def test_openimages_labels_mapped_onto_the_task_networks_categories(tmp_path):
    f = _oi_fixture(tmp_path)
    # as the VCM subsets map OpenImages labels onto COCO's: dog -> 18 "dog"; cat left out
    (tmp_path / "map.csv").write_text("LabelName,category_id,name\n/m/dog,18,dog\n")
    coco, s = convert_openimages(f["img"], f["classes"], boxes_csv=f["boxes"], image_list=f["list"],
                                 category_map=tmp_path / "map.csv")
    assert coco["categories"] == [{"id": 18, "name": "dog", "supercategory": "none", "label_names": ["/m/dog"]}]
    assert [(a["image_id"], a["category_id"]) for a in coco["annotations"]] == [(1, 18)]
    assert s["unmapped_annotations"] == 2 and s["annotations"] == 1
    # two labels may share a category, in the map's id order
    (tmp_path / "map2.csv").write_text("LabelName,category_id,name\n/m/dog,18,animal\n/m/cat,18,animal\n")
    coco, s = convert_openimages(f["img"], f["classes"], boxes_csv=f["boxes"], image_list=f["list"],
                                 category_map=tmp_path / "map2.csv")
    assert {a["category_id"] for a in coco["annotations"]} == {18} and s["unmapped_annotations"] == 0
    assert coco["categories"][0]["label_names"] == ["/m/cat", "/m/dog"]
    for text, match in (("LabelName,category_id,name\n/m/dog,zero,dog\n", "must be a positive integer"),
                        ("LabelName,category_id,name\n/m/dog,3,dog\n/m/cat,3,cat\n", "named both 'dog' and 'cat'"),
                        ("LabelName,category_id,name\n", "maps no label"),
                        ("LabelName,id\n/m/dog,3\n", "no column category_id")):
        (tmp_path / "bad.csv").write_text(text)
        with pytest.raises(CsalicError, match=match):
            convert_openimages(f["img"], f["classes"], boxes_csv=f["boxes"], category_map=tmp_path / "bad.csv")


# ----------------------------------------------------------------------------- CLI

def test_cli_missing_annotation_file_is_one_line_exit_2(tmp_path, capsys):
    rc = main(["filter-coco", "--annotations", str(tmp_path / "nope.json"), "--out", str(tmp_path / "m.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("csalic: error:") and err.count("\n") == 1
    assert not (tmp_path / "m.csv").exists()


def test_cli_commands_write_outputs(tmp_path, capsys):
    assert main(["demo-data", "--out", str(tmp_path / "d"), "--train", "1", "--val", "1"]) == 0
    assert "1 train + 1 val" in capsys.readouterr().out
    ann = _coco_json(tmp_path / "ann.json", list(SIZES))
    assert main(["filter-coco", "--annotations", str(ann), "--out", str(tmp_path / "m.csv"),
                 "--rule", "both_sides_ge"]) == 0
    assert "kept 7 of 9" in capsys.readouterr().out
    assert len(read_manifest(tmp_path / "m.csv")) == 7
    f = _oi_fixture(tmp_path)
    assert main(["convert-openimages", "--images", str(f["img"]), "--classes", str(f["classes"]),
                 "--boxes", str(f["boxes"]), "--out", str(tmp_path / "oi.json")]) == 0
    assert "3 images, 4 annotations, 3 categories" in capsys.readouterr().out
    assert main(["demo-data", "--out", str(tmp_path / "e"), "--size", "200"]) == 2
    assert "too small" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the OpenImages-format demo set

def test_demo_openimages_set_is_in_openimages_files_and_converts_exactly(tmp_path):
    import filecmp

    from csalic.data.demo_openimages import LABELS, SIZE, generate_openimages_demo

    f = generate_openimages_demo(tmp_path / "a", n=4, seed=3)
    again = generate_openimages_demo(tmp_path / "b", n=4, seed=3)
    names = sorted(p.relative_to(f.root) for p in f.root.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(again.root) for p in again.root.rglob("*") if p.is_file())
    assert all(filecmp.cmp(f.root / n, again.root / n, shallow=False) for n in names)  # same seed, same bytes
    ids = f.image_list.read_text().split()
    assert len(ids) == 4 and sorted(p.stem for p in f.images.glob("*.jpg")) == sorted(ids)
    with Image.open(f.images / f"{ids[0]}.jpg") as im:
        assert im.format == "JPEG" and im.size == SIZE
    header = f.boxes.read_text().splitlines()[0].split(",")
    assert header[:8] == ["ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax"]
    # every box and mask converts; grey tiles (a label the map leaves out) are drawn but not evaluated
    coco, s = convert_openimages(f.images, f.classes, masks_csv=f.masks_csv, mask_dir=f.masks,
                                 image_list=f.image_list, category_map=f.category_map)
    rows = [r.split(",") for r in f.boxes.read_text().splitlines()[1:]]
    groups = [r for r in rows if r[10] == "1"]  # IsGroupOf: instances of one class, one box, no masks
    assert groups and len(rows) == f.n_objects
    grey = sum(r[2] == LABELS[-1][0] and r[10] == "0" for r in rows)
    assert s["missing_masks"] == 0 and s["empty_masks"] == 0 and s["missing_images"] == 0
    assert s["annotations"] + s["unmapped_annotations"] == f.n_objects - len(groups)
    assert s["unmapped_annotations"] == grey
    # verified image labels: each boxed class positive on its image; absent ones negative or left unverified
    verified = [r.split(",") for r in f.image_labels.read_text().splitlines()[1:]]
    positive = {(r[0], r[2]) for r in verified if r[3] == "1"}
    assert positive == {(r[0], r[2]) for r in rows}
    negative = {(r[0], r[2]) for r in verified if r[3] == "0"}
    unverified = {(i, mid) for i in ids for mid, _, _ in LABELS} - positive - negative
    assert negative and unverified and not negative & positive
    # the hierarchy: Ball (no detector category) above the red and green balls
    tree = json.loads(f.hierarchy.read_text())
    ball = next(n for n in tree["Subcategory"] if "Subcategory" in n)
    assert ball["LabelName"] == "/m/0csl00" and [c["LabelName"] for c in ball["Subcategory"]] == ["/m/0csl01",
                                                                                                   "/m/0csl02"]
    assert [c["name"] for c in coco["categories"]] == ["red disc", "green disc", "blue square", "yellow triangle",
                                                       "striped red disc"]
    for a in coco["annotations"]:  # the box in the CSV is the mask's tight box
        m = mask_utils.decode(a["segmentation"])
        ys, xs = np.nonzero(m)
        assert a["area"] == m.sum() > 0
        assert a["bbox"] == [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
                             float(ys.max() - ys.min() + 1)]
    det, sd = convert_openimages(f.images, f.classes, boxes_csv=f.boxes, image_list=f.image_list,
                                 category_map=f.category_map)
    assert [a["bbox"] for a in det["annotations"] if not a["iscrowd"]] == [a["bbox"] for a in coco["annotations"]]
    assert sum(a["iscrowd"] for a in det["annotations"]) == sum(r[2] != LABELS[-1][0] for r in groups)
    with pytest.raises(CsalicError, match="at least one"):
        generate_openimages_demo(tmp_path / "c", n=0)


def test_the_openimages_stage_converts_the_demo_set_and_refuses_it_in_paper_mode(tmp_path, monkeypatch):
    from helpers import micro_params

    from csalic.study import layout
    from csalic.data.demo_openimages import generate_openimages_demo
    from csalic.study.pipeline import convert_openimages

    monkeypatch.chdir(tmp_path)
    params = micro_params()
    generate_openimages_demo(layout.demo_openimages(params), n=2)
    convert_openimages(params)
    images, ann = layout.dataset(params, "demo_oi")
    ev = CocoEvalSet(images, ann)
    assert len(ev) == 2
    paper = dict(params, mode="paper")
    with pytest.raises(CsalicError, match="demo_oi is the demo's generated set"):
        convert_openimages(paper)
    paper["eval"] = dict(params["eval"], datasets=["demo_val"])
    convert_openimages(paper)
    assert json.loads((layout.converted_openimages(params) / "none.json").read_text())["converted"] == []
