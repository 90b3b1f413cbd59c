"""A generated study dataset in COCO format, so the whole pipeline runs with nothing downloaded.

Recognition must depend on what low rates destroy, as in the paper's argument:
"red disc" and "green disc" share a shape and have nearly the same luma (Y ~ 97),
so a codec that throws chroma away makes them indistinguishable; "striped red
disc" differs from "red disc" only by 3-6 px stripes, which a coarse codec
smooths away; "blue square" and "yellow triangle" add shapes.  Objects are
32-120 px wide and 70-100 % opaque over backgrounds that add mild 1/f noise to
gradients, stripes or smooth noise, so rate is never trivially low.  (Fainter,
smaller objects on stronger texture were tried: the demo's few-minute codecs,
near 20 dB PSNR, then lost every object at every rate, and the curves were as
flat as with bold shapes that every codec keeps.)

Objects never overlap, so each mask is exactly the pixels painted with that
object's colour, the box is the mask's tight box and the area its pixel count.
Each image depends only on (seed, split, index): growing ``n_train`` keeps the
first images unchanged.  Same seed -> byte-identical files.
"""

from __future__ import annotations

import colorsys
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import CsalicError
from ..io import atomic_write_bytes, atomic_write_json

CATEGORIES: list[dict[str, Any]] = [
    {"id": 1, "name": "red disc", "supercategory": "disc", "shape": "disc", "rgb": [230, 40, 40]},
    {"id": 2, "name": "green disc", "supercategory": "disc", "shape": "disc", "rgb": [30, 145, 30]},
    {"id": 3, "name": "blue square", "supercategory": "square", "shape": "square", "rgb": [40, 70, 230]},
    {"id": 4, "name": "yellow triangle", "supercategory": "triangle", "shape": "triangle", "rgb": [235, 210, 30]},
    {"id": 5, "name": "striped red disc", "supercategory": "disc", "shape": "disc", "rgb": [230, 40, 40], "stripes": True},
]
_SPLIT_CODE = {"train": 1, "val": 2, "openimages": 3}
MIN_OBJ, MAX_OBJ = 32, 120     # object width, px
OPACITY = (0.7, 1.0)           # faint objects are the first to vanish at low rates
STRIPE_PERIOD = (3.0, 6.0)     # px; "striped" categories
STRIPE_AMP = 40.0              # grey levels added and removed by the stripes
TEXTURE = 4.0                  # standard deviation of the backgrounds' 1/f noise, grey levels


@dataclass(frozen=True)
class Style:
    """How a generated set draws its images (demo_oi draws smaller, more numerous, fainter objects)."""

    categories: tuple = tuple(CATEGORIES)
    min_obj: int = MIN_OBJ
    max_obj: int = MAX_OBJ
    count: tuple[int, int] = (1, 5)   # objects per image, numpy's half-open range
    opacity: tuple[float, float] = OPACITY
    texture: float = TEXTURE


DEMO_STYLE = Style()


@dataclass(frozen=True)
class DemoData:
    root: Path
    train_dir: Path
    val_dir: Path
    train_json: Path
    val_json: Path
    manifest: Path
    n_train: int
    n_val: int
    n_objects: int


# ----------------------------------------------------------------------------- drawing

def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float64) * 255.0


def _background(rng: np.random.Generator, w: int, h: int, texture: float = TEXTURE) -> np.ndarray:
    kind = int(rng.integers(0, 3))
    c0 = _hsv(rng.random(), rng.uniform(0.15, 0.45), rng.uniform(0.35, 0.85))
    c1 = _hsv(rng.random(), rng.uniform(0.15, 0.45), rng.uniform(0.35, 0.85))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    if kind == 0:  # linear gradient at a random angle
        a = rng.uniform(0, 2 * np.pi)
        t = xx * np.cos(a) + yy * np.sin(a)
        t = (t - t.min()) / max(t.max() - t.min(), 1e-9)
    elif kind == 1:  # sinusoidal stripes
        a = rng.uniform(0, np.pi)
        period = rng.uniform(8, 40)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * (xx * np.cos(a) + yy * np.sin(a)) / period)
    else:  # smooth value noise: a coarse random grid upsampled bilinearly
        g = rng.random((int(rng.integers(3, 9)), int(rng.integers(3, 9)))).astype(np.float32)
        t = np.asarray(Image.fromarray(g).resize((w, h), Image.BILINEAR), dtype=np.float64)
    return c0 * (1 - t[..., None]) + c1 * t[..., None] + texture * _pink_noise(rng, w, h)[..., None]


def _pink_noise(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Unit-variance 1/f noise: detail at every scale, like natural images, so bits are never free."""
    f = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :])
    f[0, 0] = np.inf  # no DC: the noise has zero mean
    spectrum = (rng.normal(size=(h, w)) + 1j * rng.normal(size=(h, w))) / f
    n = np.real(np.fft.ifft2(spectrum))
    return n / (n.std() + 1e-12)


def _shape_mask(shape: str, rng: np.random.Generator, x0: int, y0: int, s: int, w: int, h: int) -> np.ndarray:
    """Boolean mask sampled at pixel centres, so the painted pixels and the mask are one array."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    if shape == "disc":
        r = s / 2.0
        return (xx - (x0 + r)) ** 2 + (yy - (y0 + r)) ** 2 <= r * r
    if shape == "square":
        return (xx >= x0) & (xx < x0 + s) & (yy >= y0) & (yy < y0 + s)
    if shape == "triangle":
        cx, cy, r = x0 + s / 2.0, y0 + s / 2.0, s / 2.0
        a0 = rng.uniform(0, 2 * np.pi)
        pts = [(cx + r * np.cos(a0 + k * 2 * np.pi / 3), cy + r * np.sin(a0 + k * 2 * np.pi / 3)) for k in range(3)]
        m = np.ones((h, w), dtype=bool)
        for (ax, ay), (bx, by) in zip(pts, pts[1:] + pts[:1]):
            # counter-clockwise vertices in image coordinates: inside is where the cross product is >= 0
            m &= (bx - ax) * (yy - ay) - (by - ay) * (xx - ax) >= 0
        return m
    raise ValueError(shape)


def _draw_image(seed: int, split: str, index: int, w: int, h: int, style: Style = DEMO_STYLE):
    rng = np.random.default_rng((int(seed), _SPLIT_CODE[split], int(index)))
    img = _background(rng, w, h, style.texture)
    objects = []
    boxes: list[tuple[int, int, int]] = []
    for _ in range(int(rng.integers(*style.count))):
        cat = style.categories[int(rng.integers(0, len(style.categories)))]
        s = int(rng.integers(style.min_obj, min(style.max_obj, w, h) + 1))
        for _try in range(50):
            x0, y0 = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
            if all(x0 + s + 4 <= bx or bx + bs + 4 <= x0 or y0 + s + 4 <= by or by + bs + 4 <= y0
                   for bx, by, bs in boxes):
                break
        else:
            continue  # no room left: fewer objects in this image
        boxes.append((x0, y0, s))
        mask = _shape_mask(cat["shape"], rng, x0, y0, s, w, h)
        colour = np.clip(np.array(cat["rgb"], dtype=np.float64) + rng.uniform(-12, 12, 3), 0, 255)
        paint = np.broadcast_to(colour, img.shape).copy()
        if cat.get("stripes"):
            a, period = rng.uniform(0, np.pi), rng.uniform(*STRIPE_PERIOD)
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
            paint += STRIPE_AMP * np.sign(np.sin(2 * np.pi * (xx * np.cos(a) + yy * np.sin(a)) / period))[..., None]
        opacity = rng.uniform(*style.opacity)
        img[mask] = opacity * paint[mask] + (1.0 - opacity) * img[mask]
        objects.append((cat["id"], mask))
    img += rng.normal(0.0, 4.0, img.shape)  # film grain: texture for the codec, no effect on masks
    pixels = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return pixels, objects


def _png_bytes(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=6, optimize=False)
    return buf.getvalue()


def _annotation(ann_id: int, image_id: int, cat_id: int, mask: np.ndarray) -> dict[str, Any]:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": cat_id,
        "bbox": [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1],
        "area": int(mask.sum()),
        "segmentation": {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")},
        "iscrowd": 0,
    }


# ----------------------------------------------------------------------------- dataset

def _split(out: Path, split: str, n: int, seed: int, w: int, h: int) -> tuple[dict[str, Any], int]:
    folder = out / split
    folder.mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(n):
        pixels, objects = _draw_image(seed, split, i, w, h)
        name = f"{i + 1:06d}.png"
        atomic_write_bytes(folder / name, _png_bytes(pixels))
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
        for cat_id, mask in objects:
            anns.append(_annotation(len(anns) + 1, i + 1, cat_id, mask))
    coco = {
        "info": {"description": f"csalic generated demo data ({split})", "version": "1", "seed": seed},
        "licenses": [],
        "images": images,
        "annotations": anns,
        "categories": [{k: c[k] for k in ("id", "name", "supercategory")} for c in CATEGORIES],
    }
    return coco, len(anns)


def generate_demo(out_dir: str | os.PathLike, n_train: int = 64, n_val: int = 16,
                  size: tuple[int, int] = (320, 320), seed: int = 0) -> DemoData:
    """Write the demo study dataset; files are written atomically, the manifest last (it marks completion).

    ``size`` is (width, height); both must exceed 256 so the COCO filter keeps every image.
    """
    w, h = (int(size[0]), int(size[1])) if not isinstance(size, int) else (int(size), int(size))
    if w <= 256 or h <= 256:
        raise CsalicError(f"demo image size {w}x{h} is too small: both sides must exceed 256 px (the training crop)")
    if int(n_train) < 1 or int(n_val) < 1:
        raise CsalicError(f"need at least one train and one val image, got --train {n_train} --val {n_val}")
    if int(seed) < 0:
        raise CsalicError(f"seed must be a non-negative integer, got {seed}")
    out = Path(out_dir)
    ann_dir = out / "annotations"
    counts = 0
    paths = {}
    for split, n in (("train", int(n_train)), ("val", int(n_val))):
        coco, k = _split(out, split, n, int(seed), w, h)
        counts += k
        paths[split] = ann_dir / f"instances_{split}.json"
        atomic_write_json(paths[split], coco)

    from .coco import filter_coco, write_manifest

    res = filter_coco(annotations=paths["train"], images=out / "train", image_root=out)
    manifest = write_manifest(out / "manifest_train.csv", res.rows, res.summary | {"source": "csalic demo-data"})
    return DemoData(out, out / "train", out / "val", paths["train"], paths["val"], manifest,
                    int(n_train), int(n_val), counts)
