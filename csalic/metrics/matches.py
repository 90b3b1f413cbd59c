"""Per-image detection matches, and mAP@0.5 from them on any weighting of the images.

Matching a detection to the ground truth (IoU, crowd and group-of rules) is the expensive part of an
evaluation and depends on one image at a time; the precision-recall curve is cheap and depends on
which images form the set.  So each protocol matches once (:mod:`.detection` through COCOeval,
:mod:`.oid` through its own matcher) and hands over a :class:`Matches`: every detection that counts
(image, class, score, true or false positive) and the positives of every image and class.  mAP on the
full set, and on a bootstrap resample of its images, is then a weighted cumulative sum:

* weight ``w_i`` is how often image ``i`` is drawn; a detection counts ``w_i`` times and so do its
  image's positives.  Repeated copies of an image are adjacent in score order, which is what the
  interpolated precision sees anyway (a run of true positives only raises precision, a run of false
  positives leaves recall where it is), so the weighted sum is the mAP of the resampled set.
* ``rule="coco101"``: COCOeval's ``accumulate``: precision made non-increasing, read at the 101 recall
  thresholds 0, 0.01, ..., 1 (0 past the last recall reached), ``tp / (tp + fp + eps)``.
* ``rule="all_points"``: the Open Images challenge's area under the non-increasing precision curve.
* A class counts where its weighted positives are > 0 (as both protocols leave out a class with no
  ground truth), and mAP is the mean over those classes.

Ties in score keep the order the protocol gave (COCO: image order, then its own per-image order),
so with all weights 1 the value is the protocol's own, which the tests hold to COCOeval ``stats[1]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import CsalicError

RULES = ("coco101", "all_points")
COCO_RECALLS = np.linspace(0.0, 1.0, 101)
FORMAT = "csalic-matches"
VERSION = 1


@dataclass(frozen=True, eq=False)
class Matches:
    """One point's scored detections on one dataset, for one IoU type.

    ``image``/``cls``/``score``/``tp``: one entry per detection that counts (ignored ones dropped),
    in the protocol's order; ``positives``: (n_images, n_classes) ground-truth instances that must
    be found.  ``image_ids`` name the images (the evaluation's ids), ``classes`` the class labels.
    """

    image_ids: np.ndarray
    classes: np.ndarray
    image: np.ndarray
    cls: np.ndarray
    score: np.ndarray
    tp: np.ndarray
    positives: np.ndarray
    rule: str = "coco101"

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise CsalicError(f"matches rule must be one of {', '.join(RULES)}, got {self.rule!r}")
        n = len(self.score)
        if not (len(self.image) == len(self.cls) == len(self.tp) == n):
            raise CsalicError("matches: image, cls, score and tp must have one entry per detection")
        if self.positives.shape != (len(self.image_ids), len(self.classes)):
            raise CsalicError(f"matches: positives has shape {self.positives.shape}, expected "
                              f"({len(self.image_ids)}, {len(self.classes)})")

    @property
    def n_images(self) -> int:
        return len(self.image_ids)

    def _by_class(self) -> list[tuple[int, np.ndarray]]:
        """(class, detection indices in descending score, ties in the given order) per class with any positive."""
        order = np.lexsort((np.arange(len(self.score)), -self.score, self.cls))
        bounds = np.searchsorted(self.cls[order], np.arange(len(self.classes) + 1))
        has = np.flatnonzero(self.positives.sum(axis=0) > 0)
        return [(int(c), order[bounds[c]:bounds[c + 1]]) for c in has]

    def map50(self, weights: np.ndarray | None = None) -> np.ndarray | float | None:
        """mAP of the full set (``weights`` None: a float, None where no class has a positive), or of
        each row of ``weights`` (resamples x images: an array, NaN where no class has a positive)."""
        single = weights is None
        w = np.ones((1, self.n_images)) if single else np.asarray(weights, dtype=np.float64)
        if w.ndim != 2 or w.shape[1] != self.n_images:
            raise CsalicError(f"weights must be (resamples, {self.n_images}), got shape {w.shape}")
        total = np.zeros(len(w))
        counted = np.zeros(len(w))

        def one(item):
            c, idx = item
            npos = w @ self.positives[:, c]
            return npos > 0, _ap(w, self.image[idx], self.tp[idx], npos, self.rule)

        classes = self._by_class()
        if single or len(classes) < 2:
            results = map(one, classes)
        else:  # numpy leaves the GIL on arrays this large: the classes share the cores
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=min(len(classes), _cores())) as pool:
                results = list(pool.map(one, classes))
        for ok, ap in results:  # summed in class order whatever finished first
            total[ok] += ap[ok]
            counted += ok
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(counted > 0, total / np.maximum(counted, 1), np.nan)
        if single:
            return None if counted[0] == 0 else float(out[0])
        return out

    def per_class(self) -> dict:
        """AP of each class with a positive, on the full set (their mean is :meth:`map50`)."""
        w = np.ones((1, self.n_images))
        return {self.classes[c].item(): float(_ap(w, self.image[idx], self.tp[idx], w @ self.positives[:, c],
                                                 self.rule)[0]) for c, idx in self._by_class()}


CHUNK = 2_000_000  # resample rows x detections held at once, per thread: the largest COCO class stays in memory


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _ap(w: np.ndarray, image: np.ndarray, tp: np.ndarray, npos: np.ndarray, rule: str) -> np.ndarray:
    """AP of one class on each row of ``w`` (resamples x images); ``image``/``tp``: its detections in
    score order.  One row (the full set) reads the recall thresholds as COCOeval does, in floats;
    several (resamples, integer counts) compare ``100 tp >= k npos`` in exact integers, all rows at once."""
    n = len(tp)
    if n == 0:
        return np.zeros(len(w))
    rows = max(1, CHUNK // n)
    return np.concatenate([_ap_rows(w[i:i + rows], image, tp, npos[i:i + rows], rule, exact=len(w) == 1)
                           for i in range(0, len(w), rows)])


def _ap_rows(w, image, tp, npos, rule: str, exact: bool) -> np.ndarray:
    if exact:  # the full set: COCOeval's own arithmetic, float64 recalls against its float thresholds
        g = w[:, image]
        tps, seen = np.cumsum(g * tp, axis=1), np.cumsum(g, axis=1)
    else:  # resamples: integer counts (exact in float32 up to 2**24 per class), half the memory traffic
        g = w[:, image].astype(np.float32)
        tps, seen = np.cumsum(g * tp, axis=1, dtype=np.float32), np.cumsum(g, axis=1, dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        if rule == "coco101":
            pr = tps / (seen + np.spacing(1))
        else:
            pr = np.where(seen > 0, tps / np.maximum(seen, 1e-30), 0.0)
    env = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
    if rule != "coco101":
        with np.errstate(invalid="ignore", divide="ignore"):
            rc = tps / npos[:, None].astype(tps.dtype)
        out = np.sum(np.diff(rc, axis=1, prepend=0.0) * env, axis=1, dtype=np.float64)
    elif exact:
        rc = tps[0] / npos[0]
        at = np.searchsorted(rc, COCO_RECALLS, side="left")
        out = np.array([np.sum(env[0][at[at < len(rc)]]) / len(COCO_RECALLS)])
    else:
        # recall >= k/100 as 100 tp >= k npos, in integers; row b's keys sit in [b big, (b + 1) big), so
        # one sorted array and one searchsorted serve every row
        r, n, k = len(w), tps.shape[1], len(COCO_RECALLS)
        big = 100.0 * max(float(tps.max()), float(npos.max())) + 1.0
        offset = big * np.arange(r)[:, None]
        keys = tps.astype(np.float64)  # 100 tp in float64: exact for any count float32 holds exactly
        keys *= 100.0
        keys += offset
        keys = keys.ravel()
        targets = (np.arange(k)[None, :] * npos[:, None] + offset).ravel()
        at = np.searchsorted(keys, targets, side="left").reshape(r, k) - n * np.arange(r)[:, None]
        picked = np.take_along_axis(env, np.minimum(at, n - 1), axis=1)
        out = np.where(at < n, picked, 0.0).sum(axis=1, dtype=np.float64) / k
    return np.where(npos > 0, out, 0.0)


# ----------------------------------------------------------------------------- files

def save(path: str | Path, matches: Mapping[str, Matches], *, bpp: Sequence[float]) -> Path:
    """Write one point's matches per IoU type, and its images' bpp (same order), as one ``.npz``."""
    from ..io import atomic_path

    arrays: dict[str, np.ndarray] = {"format": np.array(FORMAT), "version": np.array(VERSION)}
    ids = None
    for kind, m in matches.items():
        if ids is not None and not np.array_equal(ids, m.image_ids):
            raise CsalicError("matches of one point must cover the same images for every IoU type")
        ids = m.image_ids
        for name in ("classes", "image", "cls", "score", "tp", "positives"):
            arrays[f"{kind}.{name}"] = getattr(m, name)
        arrays[f"{kind}.rule"] = np.array(m.rule)
    if ids is None:
        raise CsalicError("no matches to save")
    bpp = np.asarray(bpp, dtype=np.float64)
    if len(bpp) != len(ids):
        raise CsalicError(f"{len(bpp)} bpp values for {len(ids)} images")
    arrays["image_ids"], arrays["bpp"] = ids, bpp
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    return Path(path)


@dataclass(frozen=True, eq=False)
class PointMatches:
    """What one evaluated point leaves for the bootstrap: its matches per IoU type and per-image bpp."""

    image_ids: np.ndarray
    bpp: np.ndarray
    matches: dict[str, Matches]

    def bpp_mean(self, weights: np.ndarray) -> np.ndarray:
        """The point's bpp (mean over images, as its summary) on each row of ``weights``."""
        return (weights @ self.bpp) / weights.sum(axis=1)


def load(path: str | Path) -> PointMatches:
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as exc:
        raise CsalicError(f"{path} is not a matches file ({exc}): evaluate the point again") from None
    if str(data.get("format", "")) != FORMAT or int(data.get("version", -1)) != VERSION:
        raise CsalicError(f"{path} is not a csalic matches file of version {VERSION}: evaluate the point again")
    ids = data["image_ids"]
    kinds = sorted({k.split(".")[0] for k in data if "." in k})
    out = {k: Matches(ids, data[f"{k}.classes"], data[f"{k}.image"], data[f"{k}.cls"], data[f"{k}.score"],
                      data[f"{k}.tp"].astype(bool), data[f"{k}.positives"], str(data[f"{k}.rule"])) for k in kinds}
    return PointMatches(ids, data["bpp"], out)
