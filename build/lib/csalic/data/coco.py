"""COCO2017: the training-image filter and the loader for COCO-format evaluation sets.

The paper trains on "117,465 images with resolutions exceeding 256x256" out of
118,287.  Whether "exceeding" means ``>`` or ``>=`` on each side is not stated,
so the rule is a parameter (``rule``, ``min_side``) and the summary records
which one produced a manifest; compare ``kept`` with 117,465 on real data.

A manifest is a CSV with columns ``path,width,height`` (``path`` relative to the
image root, POSIX separators) plus a sidecar ``<name>.summary.json`` holding
the counts and the rule, so a manifest never has to be re-derived to be audited.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import CsalicError
from ..io import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

RULES = ("both_sides_gt", "both_sides_ge")
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif"})
MANIFEST_COLUMNS = ("path", "width", "height")


@dataclass(frozen=True)
class ManifestRow:
    path: str
    width: int
    height: int


@dataclass
class FilterResult:
    """Kept rows plus the counts that explain every dropped entry."""

    rows: list[ManifestRow]
    rule: str
    min_side: int
    source: str
    total: int = 0
    dropped_small: int = 0
    missing: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "kept": len(self.rows),
            "dropped_small": self.dropped_small,
            "missing": len(self.missing),
            "unreadable": len(self.unreadable),
            "rule": self.rule,
            "min_side": self.min_side,
            "source": self.source,
        }

    def summary_line(self) -> str:
        s = self.summary
        return (f"kept {s['kept']} of {s['total']} images ({s['rule']} {s['min_side']}): "
                f"{s['dropped_small']} too small, {s['missing']} missing, {s['unreadable']} unreadable")


def keep_size(width: int, height: int, min_side: int = 256, rule: str = "both_sides_gt") -> bool:
    """The paper's size rule; symmetric in width/height, so EXIF rotation cannot change it."""
    if rule == "both_sides_gt":
        return width > min_side and height > min_side
    if rule == "both_sides_ge":
        return width >= min_side and height >= min_side
    raise CsalicError(f"unknown size rule {rule!r}: use one of {', '.join(RULES)}")


def _check_rule(rule: str, min_side: int) -> None:
    if rule not in RULES:
        raise CsalicError(f"unknown size rule {rule!r}: use one of {', '.join(RULES)}")
    if int(min_side) < 1:
        raise CsalicError(f"--min-side must be a positive number of pixels, got {min_side}")


# ----------------------------------------------------------------------------- JSON

_IMAGES_KEY = re.compile(r'"images"\s*:\s*\[')


def load_coco_json(path: str | os.PathLike, images_only: bool = False) -> dict[str, Any]:
    """Load a COCO instances file once, with one clear error for every way it can be wrong.

    ``images_only`` decodes only the top-level ``images`` array: the real
    ``instances_train2017.json`` is 448 MB, almost all of it annotations the
    size filter never looks at, and skipping them turns ~20 s into ~1 s.
    """
    p = Path(path)
    if not p.is_file():
        raise CsalicError(f"annotation file {p} does not exist: pass the path to a COCO instances JSON")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CsalicError(f"cannot read annotation file {p}: {exc}") from exc
    if images_only:
        images = _decode_images_array(text)
        if images is not None:
            return {"images": images}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CsalicError(f"{p} is not valid JSON ({exc.msg} at line {exc.lineno}): "
                          "pass a COCO instances JSON such as instances_val2017.json") from exc
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise CsalicError(f"{p} is not a COCO instances file (no 'images' list): "
                          "pass a COCO instances JSON such as instances_val2017.json")
    return data


def _decode_images_array(text: str) -> list[dict] | None:
    """Fast path: raw-decode the ``"images": [...]`` value; None means use the full parse."""
    m = _IMAGES_KEY.search(text)
    if m is None:
        return None
    try:
        images, _ = json.JSONDecoder().raw_decode(text, m.end() - 1)
    except json.JSONDecodeError:
        return None
    if not isinstance(images, list) or not all(isinstance(im, dict) and "file_name" in im for im in images[:16]):
        return None
    return images


# ----------------------------------------------------------------------------- filter

def _listing(folder: str | os.PathLike, cache: dict[str, frozenset[str] | None]) -> frozenset[str] | None:
    """Names in ``folder`` from one scandir, cached: 118k stat calls are slow on network disks."""
    key = os.fspath(folder)
    if key not in cache:
        try:
            with os.scandir(key) as it:
                cache[key] = frozenset(e.name for e in it)
        except OSError:
            cache[key] = None
    return cache[key]


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return Path(os.path.relpath(path, root)).as_posix()


def _int_or_none(v: Any) -> int | None:
    try:
        i = int(v)
    except (TypeError, ValueError):
        return None
    return i if i > 0 else None


def filter_coco(
    annotations: str | os.PathLike | None = None,
    images: str | os.PathLike | None = None,
    image_root: str | os.PathLike | None = None,
    min_side: int = 256,
    rule: str = "both_sides_gt",
    image_list: Sequence[str] | None = None,
) -> FilterResult:
    """Keep the training images whose both sides pass ``rule`` against ``min_side``.

    Sizes come from the ``width``/``height`` fields of ``annotations`` when given
    (no image is opened); otherwise from the headers of the files in ``images``
    (``PIL.Image.open(...).size``, which does not decode pixels).  ``images``
    defaults to ``image_root``; with annotations and a folder, files listed in
    the JSON but absent from the folder are counted as ``missing``.  Manifest
    paths are relative to ``image_root`` (default: ``images``).  ``image_list``
    (header mode) names the files expected, so absent ones are counted too.
    Missing and unreadable images are counted and logged once, never fatal.
    """
    _check_rule(rule, min_side)
    min_side = int(min_side)
    if annotations is None and images is None and image_root is None:
        raise CsalicError("nothing to filter: give --annotations JSON (sizes from the JSON) "
                          "or --images DIR (sizes from image headers)")
    img_dir = Path(images) if images is not None else (Path(image_root) if image_root is not None else None)
    root = Path(image_root) if image_root is not None else img_dir
    if img_dir is not None and not img_dir.is_dir():
        raise CsalicError(f"image folder {img_dir} does not exist: pass the folder holding the images "
                          "(e.g. coco/train2017)")
    if annotations is not None:
        result = _filter_from_json(Path(annotations), img_dir, root, min_side, rule)
    else:
        result = _filter_from_headers(img_dir, root, min_side, rule, image_list)
    _warn_problems(result)
    return result


def _filter_from_json(ann: Path, img_dir: Path | None, root: Path | None, min_side: int, rule: str) -> FilterResult:
    data = load_coco_json(ann, images_only=True)
    res = FilterResult(rows=[], rule=rule, min_side=min_side, source=f"annotations:{ann}")
    cache: dict[str, frozenset[str] | None] = {}
    # plain string handling: a pathlib object per entry costs ~7 us x 118k
    dir_s = os.fspath(img_dir) if img_dir is not None else ""
    prefix = _relative(img_dir, root) if img_dir is not None else "."
    for im in data["images"]:
        if not isinstance(im, dict) or not isinstance(im.get("file_name"), str):
            raise CsalicError(f"{ann} has an 'images' entry without a 'file_name': "
                              "pass a COCO instances JSON")
        res.total += 1
        name = im["file_name"].replace("\\", "/")
        if img_dir is not None:
            sub, base = os.path.split(name)
            names = _listing(os.path.join(dir_s, sub) if sub else dir_s, cache)
            if names is None or base not in names:
                res.missing.append(name)
                continue
            rel = name if prefix == "." else f"{prefix}/{name}"
        else:
            rel = name
        w, h = _int_or_none(im.get("width")), _int_or_none(im.get("height"))
        if w is None or h is None:
            if img_dir is None:
                res.unreadable.append(name)
                continue
            size = _header_size(img_dir / name)
            if isinstance(size, str):
                (res.missing if size == "missing" else res.unreadable).append(name)
                continue
            w, h = size
        if keep_size(w, h, min_side, rule):
            res.rows.append(ManifestRow(rel, w, h))
        else:
            res.dropped_small += 1
    return res


def _header_size(path: Path) -> tuple[int, int] | str:
    """Width/height from the header only; 'missing' or 'unreadable' instead of raising."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        return "missing"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return "unreadable"


def _scan_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted for a stable manifest."""
    out: list[Path] = []
    stack = [folder]
    while stack:
        d = stack.pop()
        with os.scandir(d) as it:
            for e in it:
                if e.is_dir():
                    stack.append(Path(e.path))
                elif os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS:
                    out.append(Path(e.path))
    return sorted(out)


def _filter_from_headers(img_dir: Path, root: Path, min_side: int, rule: str,
                         image_list: Sequence[str] | None) -> FilterResult:
    res = FilterResult(rows=[], rule=rule, min_side=min_side, source=f"headers:{img_dir}")
    if image_list is not None:
        files = [img_dir / n for n in image_list]
    else:
        files = _scan_images(img_dir)
    for f in _progress(files, "reading headers"):
        res.total += 1
        size = _header_size(f)
        name = _relative(f, img_dir)
        if isinstance(size, str):
            (res.missing if size == "missing" else res.unreadable).append(name)
        elif keep_size(*size, min_side, rule):
            res.rows.append(ManifestRow(_relative(f, root), *size))
        else:
            res.dropped_small += 1
    return res


def _progress(items: list, desc: str) -> Iterable:
    if len(items) < 2000:
        return items
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return items
    return tqdm(items, desc=desc, unit="img", leave=False)


def _warn_problems(res: FilterResult) -> None:
    for kind, names in (("missing", res.missing), ("unreadable", res.unreadable)):
        if names:
            few = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            log.warning("%d image(s) %s, skipped: %s", len(names), kind, few)


# ----------------------------------------------------------------------------- manifest I/O

def summary_path(manifest: str | os.PathLike) -> Path:
    p = Path(manifest)
    return p.with_name(p.stem + ".summary.json")


def write_manifest(path: str | os.PathLike, rows: Sequence[ManifestRow], summary: dict[str, Any] | None = None) -> Path:
    """Write the CSV (and its summary sidecar) atomically; returns the CSV path."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(MANIFEST_COLUMNS)
    for r in rows:
        w.writerow((r.path, r.width, r.height))
    if summary is not None:
        atomic_write_json(summary_path(path), summary)
    atomic_write_text(path, buf.getvalue())
    return Path(path)


def read_manifest(path: str | os.PathLike) -> list[ManifestRow]:
    p = Path(path)
    if not p.is_file():
        raise CsalicError(f"manifest {p} does not exist: create it with `csalic filter-coco` or `csalic demo-data`")
    with open(p, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != list(MANIFEST_COLUMNS):
            raise CsalicError(f"{p} is not a csalic manifest (header must be path,width,height): "
                              "create it with `csalic filter-coco`")
        rows = []
        for i, rec in enumerate(reader, start=2):
            if not rec:
                continue
            try:
                rows.append(ManifestRow(rec[0], int(rec[1]), int(rec[2])))
            except (IndexError, ValueError):
                raise CsalicError(f"{p}:{i}: malformed manifest row {rec!r}: regenerate the manifest") from None
    return rows


# ----------------------------------------------------------------------------- eval sets

@dataclass(frozen=True)
class EvalImage:
    image_id: int
    path: Path
    width: int
    height: int


class CocoEvalSet:
    """A COCO-format evaluation set (COCO val2017, the OpenImages VCM conversions, demo val).

    Every image listed in the JSON must be present: evaluating on a silently
    partial set gives a wrong mAP.  ``allow_missing=True`` drops absent images
    instead and keeps their names in ``missing``.
    """

    def __init__(self, image_dir: str | os.PathLike, annotation_json: str | os.PathLike, allow_missing: bool = False):
        self.image_dir = Path(image_dir)
        self.annotation_json = Path(annotation_json)
        if not self.image_dir.is_dir():
            raise CsalicError(f"image folder {self.image_dir} does not exist: pass the folder holding the "
                              "evaluation images (e.g. coco/val2017)")
        data = load_coco_json(self.annotation_json)
        for key in ("annotations", "categories"):
            if not isinstance(data.get(key), list):
                raise CsalicError(f"{self.annotation_json} is not a COCO instances file (no '{key}' list): "
                                  "pass an instances_*.json, not captions or keypoints")
        self.data = data
        self.categories: list[dict[str, Any]] = sorted(data["categories"], key=lambda c: c["id"])
        cache: dict[str, frozenset[str] | None] = {}
        self.images: list[EvalImage] = []
        self.missing: list[str] = []
        for im in data["images"]:
            try:
                rec = EvalImage(int(im["id"]), self.image_dir / im["file_name"], int(im["width"]), int(im["height"]))
            except (KeyError, TypeError, ValueError):
                raise CsalicError(f"{self.annotation_json}: image entry {str(im)[:80]} lacks id/file_name/width/height: "
                                  "pass a COCO instances JSON") from None
            names = _listing(rec.path.parent, cache)
            if names is None or rec.path.name not in names:
                self.missing.append(im["file_name"])
            else:
                self.images.append(rec)
        if self.missing and not allow_missing:
            few = ", ".join(self.missing[:3])
            raise CsalicError(f"{len(self.missing)} of {len(data['images'])} images listed in {self.annotation_json} "
                              f"are not in {self.image_dir} (e.g. {few}): point --images at the right folder")
        if self.missing:
            log.warning("%d image(s) missing from %s, skipped: %s", len(self.missing), self.image_dir,
                        ", ".join(self.missing[:3]))

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self):
        return iter(self.images)

    def __getitem__(self, i: int) -> EvalImage:
        return self.images[i]

    @property
    def category_names(self) -> dict[int, str]:
        return {int(c["id"]): str(c["name"]) for c in self.categories}

    def coco(self):
        """A pycocotools ``COCO`` over the already-loaded dict (no second parse), restricted to present images."""
        from pycocotools.coco import COCO

        data = self.data
        if self.missing:
            keep = {im.image_id for im in self.images}
            data = dict(data, images=[im for im in data["images"] if int(im["id"]) in keep],
                        annotations=[a for a in data["annotations"] if int(a["image_id"]) in keep])
        api = COCO()
        api.dataset = data
        with contextlib.redirect_stdout(io.StringIO()):  # createIndex prints progress chatter
            api.createIndex()
        return api
