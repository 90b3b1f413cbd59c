"""Data-path speed: the COCO size filter on a train2017-sized annotation file, and crop-loader throughput.

    .venv/bin/python benchmarks/bench_data.py [--entries 118287] [--anns-per-image 0] [--images 48]

The annotation file is generated (COCO-like size distribution) in a temp dir.
``--anns-per-image 7`` approximates the real 448 MB file, where the fast path
(decode only the ``images`` array) matters most; the reference column is a
full ``json.load`` of the same file.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from csalic.data.coco import filter_coco, keep_size  # noqa: E402
from csalic.data.crops import RandomCropDataset, make_loader  # noqa: E402


def make_annotations(path: Path, n: int, anns_per_image: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    long_side = rng.choice([640, 640, 640, 500, 480, 427], n)
    # ~0.7 % of COCO train has a side <= 256 (822 of 118,287)
    short = np.where(rng.random(n) < 0.007, rng.integers(100, 257, n), rng.integers(300, 641, n))
    land = rng.random(n) < 0.7
    images = [{"id": i + 1, "file_name": f"{i + 1:012d}.jpg", "license": 1, "coco_url": "", "flickr_url": "",
               "date_captured": "2013-11-14 11:18:45",
               "width": int(long_side[i] if land[i] else min(short[i], long_side[i])),
               "height": int(min(short[i], long_side[i]) if land[i] else long_side[i])} for i in range(n)]
    anns = [{"id": k, "image_id": k % n + 1, "category_id": 1, "iscrowd": 0, "area": 1000.0,
             "bbox": [1.0, 2.0, 30.0, 40.0], "segmentation": [[1.0, 2.0, 31.0, 2.0, 31.0, 42.0, 1.0, 42.0] * 4]}
            for k in range(n * anns_per_image)]
    path.write_text(json.dumps({"info": {}, "licenses": [], "images": images, "annotations": anns,
                                "categories": [{"id": 1, "name": "person", "supercategory": "person"}]}))


def bench_filter(tmp: Path, n: int, anns_per_image: int, check_files: bool) -> list[tuple[str, str]]:
    ann = tmp / "instances_train2017.json"
    make_annotations(ann, n, anns_per_image)
    size_mb = ann.stat().st_size / 2**20
    t = time.perf_counter()
    res = filter_coco(annotations=ann)
    t_fast = time.perf_counter() - t
    extra = []
    if check_files:
        img = tmp / "train2017"
        img.mkdir()
        for i in range(n):
            (img / f"{i + 1:012d}.jpg").touch()
        t = time.perf_counter()
        checked = filter_coco(annotations=ann, images=img, image_root=tmp)
        extra = [("filter_coco + existence check (one scandir)",
                  f"{time.perf_counter() - t:.2f} s  (missing {checked.summary['missing']})")]
    t = time.perf_counter()
    data = json.loads(ann.read_text())
    kept_ref = sum(keep_size(im["width"], im["height"]) for im in data["images"])
    t_ref = time.perf_counter() - t
    assert kept_ref == len(res.rows)
    return [("annotation file", f"{n} images, {n * anns_per_image} anns, {size_mb:.0f} MB"),
            ("filter_coco (images array only)", f"{t_fast:.2f} s  (kept {len(res.rows)})"),
            ("reference: json.load + filter", f"{t_ref:.2f} s")] + extra


def bench_loader(tmp: Path, n_images: int, batch: int, epochs: int) -> list[tuple[str, str]]:
    from csalic.data.coco import ManifestRow

    rng = np.random.default_rng(0)
    rows = []
    for i in range(n_images):
        a = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
        name = f"{i:04d}.jpg"
        Image.fromarray(a).save(tmp / name, quality=90)
        rows.append(ManifestRow(name, 640, 480))
    out = []
    for workers in (0, 1, 2):
        ds = RandomCropDataset(rows, tmp, crop=256)
        loader = make_loader(ds, batch_size=batch, workers=workers)
        ds.set_epoch(0)
        for _ in loader:  # warm-up epoch: worker start-up is not throughput
            pass
        t = time.perf_counter()
        seen = 0
        for e in range(1, epochs + 1):
            ds.set_epoch(e)
            for x in loader:
                seen += x.shape[0]
        dt = time.perf_counter() - t
        out.append((f"loader, {workers} worker(s), 640x480 JPEG -> 256 crop", f"{seen / dt:.0f} images/s"))
        del loader
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=118_287)
    ap.add_argument("--anns-per-image", type=int, default=0)
    ap.add_argument("--check-files", action="store_true", help="also time the existence check on n empty files")
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        rows = bench_filter(Path(d), args.entries, args.anns_per_image, args.check_files)
    with tempfile.TemporaryDirectory() as d:
        rows += bench_loader(Path(d), args.images, args.batch, args.epochs)
    w = max(len(k) for k, _ in rows)
    print(f"| {'measure':<{w}} | result |\n|{'-' * (w + 2)}|--------|")
    for k, v in rows:
        print(f"| {k:<{w}} | {v} |")


if __name__ == "__main__":
    main()
