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
        for c, idx in self._by_class():
            npos = w @ self.positives[:, c]
            ap = _ap(w[:, self.image[idx]], self.tp[idx], npos, self.rule)
            ok = npos > 0
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
        return {self.classes[c].item(): float(_ap(w[:, self.image[idx]], self.tp[idx], w @ self.positives[:, c],
                                                 self.rule)[0]) for c, idx in self._by_class()}


def _ap(w: np.ndarray, tp: np.ndarray, npos: np.ndarray, rule: str) -> np.ndarray:
    """AP of one class per resample row: ``w`` (resamples x detections, in score order)."""
    if w.shape[1] == 0:
        return np.zeros(len(w))
    tps = np.cumsum(w * tp, axis=1)
    fps = np.cumsum(w * ~tp, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rc = tps / npos[:, None]
        if rule == "coco101":
            pr = tps / (tps + fps + np.spacing(1))
        else:
            pr = np.where(tps + fps > 0, tps / np.maximum(tps + fps, 1e-300), 0.0)
    env = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
    out = np.zeros(len(w))
    for b in range(len(w)):
        if npos[b] <= 0:
            continue
        if rule == "coco101":
            at = np.searchsorted(rc[b], COCO_RECALLS, side="left")
            inside = at < rc.shape[1]
            out[b] = np.sum(env[b][at[inside]]) / len(COCO_RECALLS)
        else:
            r = np.concatenate([[0.0], rc[b]])
            steps = np.diff(r)
            out[b] = float(np.sum(steps * env[b]))
    return out


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
