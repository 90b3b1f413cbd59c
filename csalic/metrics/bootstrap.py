"""Paired bootstrap over evaluation images: how far a BD value moves when the images change.

A BD cell compares two rate-accuracy curves measured on the same images.  A resample draws n of
the n images with replacement, the same draw for every point of every method on that dataset (the
pairing: a hard image is hard for the method and for the anchor alike), recomputes each point's
bpp and mAP@0.5 on it from the per-image matches (:mod:`.matches`), and the BD value from those
curves.  The 2.5th and 97.5th percentiles of the resampled values are the 95 % interval.

A resample on which a BD value cannot be computed (its curves stop overlapping, a curve keeps too
few points) is counted and left out; the interval says how many of the resamples it rests on.
The draws come from ``numpy.random.default_rng(seed)``: one study, one seed, one interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..errors import CsalicError

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95
MIN_SHARE = 0.95  # an interval resting on fewer of its resamples than this is flagged in the tables


def resample_weights(n_images: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n_images): how often each image is drawn in each resample (each row sums to n)."""
    if n_images < 1:
        raise CsalicError("the bootstrap needs at least one image")
    if resamples < 1:
        raise CsalicError(f"the bootstrap needs at least one resample, got {resamples}")
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_images, np.full(n_images, 1.0 / n_images), size=resamples).astype(np.float64)


@dataclass(frozen=True)
class Interval:
    low: float | None
    high: float | None
    used: int  # resamples the interval rests on
    resamples: int
    level: float = DEFAULT_LEVEL

    @property
    def complete(self) -> bool:
        return self.resamples > 0 and self.used >= MIN_SHARE * self.resamples

    def note(self) -> str | None:
        if not self.complete:
            return (f"{self.level:.0%} interval from {self.used} of {self.resamples} image resamples "
                    "(on the others this BD value could not be computed)")
        return None

    def as_dict(self) -> dict:
        return {"low": self.low, "high": self.high, "level": self.level, "resamples": self.resamples,
                "used": self.used}


def interval(values: Sequence[float], level: float = DEFAULT_LEVEL) -> Interval:
    """The percentile interval of the finite ``values`` (NaN marks a resample without a value)."""
    if not 0.0 < level < 1.0:
        raise CsalicError(f"interval level must be in (0, 1), got {level}")
    v = np.asarray(values, dtype=np.float64)
    ok = v[np.isfinite(v)]
    if len(ok) < 2:
        return Interval(None, None, int(len(ok)), int(len(v)), level)
    lo, hi = np.percentile(ok, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return Interval(float(lo), float(hi), int(len(ok)), int(len(v)), level)


def resampled(fn: Callable[..., float], *curves: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``fn(rate_a, quality_a, rate_b, quality_b, ...)`` on every resample, NaN where it raises.

    Each curve is (rates, qualities), both (points, resamples)."""
    n = curves[0][0].shape[1]
    out = np.full(n, np.nan)
    for b in range(n):
        args = [list(map(float, part[:, b])) for curve in curves for part in curve]
        try:
            value = fn(*args)
        except CsalicError:
            continue
        if value is not None and math.isfinite(value):
            out[b] = value
    return out
