"""Every kind of odd or broken image a user can hand over, on each path that reads images.

``csalic compress`` codes one image: a readable image in any mode is coded (and
decodes to its own size), an unreadable one is a one-line error.  The dataset-wide
steps skip an unreadable image with a warning that names it, and count it: the
evaluation records it in ``summary.json``, the training loader substitutes the next
readable image (deterministically, so resume stays exact).
"""

import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from csalic.codec.checkpoint import save_codec
from csalic.cli import main
from csalic.data.coco import CocoEvalSet, ManifestRow
from csalic.data.crops import RandomCropDataset
from csalic.data.demo import generate_demo
from csalic.evaluation.evaluate import evaluate_codec
from csalic.evaluation.anchors import get_anchor
from csalic.codec.model import build_model

W, H = 96, 72


def _rgb(w=W, h=H):
    rng = np.random.default_rng(3)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def readable(d):
    """name -> (path, size the coded image must have)."""
    rgb = _rgb()
    out = {}

    def put(name, img, fmt="PNG", size=(W, H), **kw):
        p = d / name
        img.save(p, format=fmt, **kw)
        out[name] = (p, size)

    put("grey.png", rgb.convert("L"))
    put("rgba.png", rgb.convert("RGBA"))
    pal = rgb.convert("P")
    pal.info["transparency"] = 0
    put("palette.png", pal, transparency=0)
    put("sixteen.png", Image.fromarray((np.asarray(rgb.convert("L"), dtype=np.uint16) * 257)))
    put("cmyk.jpg", rgb.convert("CMYK"), "JPEG")
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated by 90 degrees
    put("rotated.jpg", rgb, "JPEG", size=(H, W), exif=exif)
    put("tiny 40x30.png", _rgb(40, 30), size=(40, 30))
    put("one pixel.png", _rgb(1, 1), size=(1, 1))
    return out


def unreadable(d):
    good = d / "good.png"
    _rgb().save(good)
    data = good.read_bytes()
    (d / "truncated.png").write_bytes(data[: len(data) // 2])
    (d / "empty.png").write_bytes(b"")
    (d / "text.png").write_text("not an image\n")
    Image.new("1", (9000, 8000)).save(d / "huge.png")  # 72 MP: above the 2**26-pixel limit
    return [d / n for n in ("truncated.png", "empty.png", "text.png", "huge.png")]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("ck")
    torch.manual_seed(0)
    save_codec(d / "c.pt", build_model("demo", "baseline"), lmbda=0.001)
    return d / "c.pt"


def test_compress_codes_every_readable_mode_at_its_own_size(tmp_path, ckpt, capsys):
    for name, (path, size) in readable(tmp_path).items():
        assert main(["compress", str(path), "-c", str(ckpt), "-o", str(tmp_path / "x.csa")]) == 0, name
        assert main(["decompress", str(tmp_path / "x.csa"), "-c", str(ckpt), "-o", str(tmp_path / "x.png")]) == 0
        with Image.open(tmp_path / "x.png") as out:
            assert out.size == size and out.mode == "RGB", name
    capsys.readouterr()


def test_compress_refuses_each_unreadable_file_in_one_line(tmp_path, ckpt, capsys):
    (tmp_path / "keep.csa").write_bytes(b"previous result")
    for path in unreadable(tmp_path):
        assert main(["compress", str(path), "-c", str(ckpt), "-o", str(tmp_path / "keep.csa")]) == 2, path.name
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and path.name in err, err
        assert "pixel limit" in err if path.name == "huge.png" else "cannot read image" in err
    assert (tmp_path / "keep.csa").read_bytes() == b"previous result"  # nothing written over


def test_evaluation_skips_unreadable_images_and_says_which(tmp_path, caplog):
    demo = generate_demo(tmp_path / "demo", n_train=1, n_val=4)
    (demo.val_dir / "000002.png").write_bytes(b"")
    data = (demo.val_dir / "000003.png").read_bytes()
    (demo.val_dir / "000003.png").write_bytes(data[: len(data) // 3])

    class NoTask:  # evaluation needs predictions only for mAP; none keeps this test about the images
        kind = "detection"

        def predict(self, x):
            return [{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.int64)}]

        def describe(self):
            return {"name": "none"}

    with caplog.at_level(logging.WARNING):
        res = evaluate_codec(get_anchor("jpeg", 50), CocoEvalSet(demo.val_dir, demo.val_json), NoTask(),
                             dataset_name="demo_val", progress=False)
    assert [r["file_name"] for r in res.records] == ["000001.png", "000004.png"]
    assert res.summary["n_images"] == 2
    assert [s["file_name"] for s in res.summary["skipped_images"]] == ["000002.png", "000003.png"]
    assert "skipped 2 unreadable image(s) of 4: 000002.png, 000003.png" in caplog.text
    json.dumps(res.summary)  # still a plain JSON document


def test_training_loader_substitutes_the_next_readable_image(tmp_path, caplog):
    readable(tmp_path)
    rows = [ManifestRow("text.png", W, H), ManifestRow("grey.png", W, H), ManifestRow("empty.png", W, H),
            ManifestRow("sixteen.png", W, H)]
    unreadable(tmp_path)
    ds = RandomCropDataset(rows, tmp_path, crop=32, seed=0)
    with caplog.at_level(logging.WARNING):
        batch = [ds[i] for i in range(4)]
    assert torch.equal(batch[0], batch[1]) and torch.equal(batch[2], batch[3])  # the next readable image's crop
    assert not torch.equal(batch[1], batch[3])
    assert ds.skipped == {str(tmp_path / "text.png"), str(tmp_path / "empty.png")}
    assert caplog.text.count("skipped (") == 2 and "text.png" in caplog.text and "empty.png" in caplog.text
    again = RandomCropDataset(rows, tmp_path, crop=32, seed=0)
    assert all(torch.equal(a, again[i]) for i, a in enumerate(batch))  # the substitution is reproducible
    for r in rows:
        (tmp_path / r.path).write_bytes(b"")
    with pytest.raises(Exception, match="none of the 4 training images"):
        RandomCropDataset(rows, tmp_path, crop=32)[0]
