"""Bjøntegaard deltas (BD-rate, BD-PSNR, BD-mAP) over the ``bjontegaard`` package.

The integration itself is the package's (``bd.bd_rate`` / ``bd.bd_psnr``, pchip by
default); this module decides what the package leaves open, so no number is ever
produced silently from a curve it should not come from:

* **Units.**  BD-rate is in percent (negative = the test saves rate).  BD-quality
  is in the quality's units.  The paper's η2 (e.g. +8.119) is a difference of
  mAP@0.5 *in percent*, so BD-mAP is reported in **percentage points**: pass mAP in
  [0, 1] with ``quality_scale=100`` (what :func:`bd_map` does).  Scaling the
  quality leaves BD-rate unchanged (pchip is affine-invariant).
* **Monotonicity.**  pchip needs a strictly increasing abscissa: quality for
  BD-rate, log-rate for BD-quality.  Points are first sorted by rate.  Then
  ``monotonic="error"`` (the default) raises :class:`BDError` naming the first
  point whose quality does not rise; ``monotonic="pareto"`` keeps the
  rate-accuracy Pareto front -- drops every point that some lower-rate point
  matches or beats in quality (an operator would never choose it) -- and lists
  the dropped points in the result's ``notes``, which tables print as a flag.
  Both curves get the same rule.  BD-quality integrates quality over log-rate, so
  there a flat stretch is kept (a task saturated at mAP 1.0 over a range of rates
  is a real curve); only a point whose quality falls below a lower-rate point's
  is dropped.  BD-rate inverts the curve and needs quality strictly rising.
* **Overlap.**  The integral runs over the overlap of the two curves' ranges
  (quality range for BD-rate, log-rate range for BD-quality), the package's rule.
  No overlap raises :class:`BDError`; an overlap below ``min_overlap`` (share of
  the union of both ranges, default 0.5) is still computed but flagged in
  ``notes``, or raises with ``strict_overlap=True``.
* **Points.**  pchip and akima need 2 points per curve (after the Pareto rule),
  cubic needs 4; rates must be positive and every value finite.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import CsalicError

METHODS = {"pchip": 2, "akima": 2, "cubic": 4}
MONOTONIC_RULES = ("error", "pareto")
MAP_SCALE = 100.0


class BDError(CsalicError):
    """A BD value that cannot honestly be computed (non-monotonic, no overlap, too few points)."""


@dataclass(frozen=True)
class Curve:
    rate: tuple[float, ...]
    quality: tuple[float, ...]
    dropped: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class BDResult:
    value: float
    kind: str  # "rate" (percent) or "quality" (quality units)
    overlap: float  # share of the union of both ranges that both curves cover
    anchor: Curve
    test: Curve
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def flagged(self) -> bool:
        return bool(self.notes)


def pareto_front(rate: Sequence[float], quality: Sequence[float],
                 ties: bool = False) -> tuple[list[float], list[float], list[int]]:
    """Sort by rate; keep each point only if its quality beats (``ties``: at least equals)
    every lower-rate point's.

    Returns (rates, qualities, indices of the dropped input points).
    """
    order = sorted(range(len(rate)), key=lambda i: (rate[i], -quality[i]))
    keep_r, keep_q, dropped = [], [], []
    best = -math.inf
    for i in order:
        better = quality[i] >= best if ties else quality[i] > best
        if better and (not keep_r or rate[i] > keep_r[-1]):
            keep_r.append(float(rate[i]))
            keep_q.append(float(quality[i]))
            best = quality[i]
        else:
            dropped.append(i)
    return keep_r, keep_q, sorted(dropped)


def _curve(rate: Sequence[float], quality: Sequence[float], who: str, method: str, monotonic: str,
           ties: bool = False) -> Curve:
    r = [float(v) for v in rate]
    q = [float(v) for v in quality]
    if len(r) != len(q):
        raise BDError(f"{who} curve has {len(r)} rates but {len(q)} quality values")
    if not all(math.isfinite(v) for v in r + q):
        raise BDError(f"{who} curve has a non-finite value (rates {r}, quality {q})")
    if any(v <= 0 for v in r):
        raise BDError(f"{who} curve has a non-positive rate ({min(r)}): BD works on log-rate")
    if monotonic not in MONOTONIC_RULES:
        raise BDError(f"monotonic must be one of {', '.join(MONOTONIC_RULES)}, got {monotonic!r}")
    dropped: list[tuple[float, float]] = []
    if monotonic == "pareto":
        kr, kq, idx = pareto_front(r, q, ties)
        dropped = [(r[i], q[i]) for i in idx]
        r, q = kr, kq
    else:
        order = sorted(range(len(r)), key=lambda i: r[i])
        r, q = [r[i] for i in order], [q[i] for i in order]
        for a in range(1, len(r)):
            if r[a] <= r[a - 1]:
                raise BDError(f"{who} curve has two points at rate {r[a]:.6g}: BD needs distinct rates")
            if q[a] < q[a - 1] or (q[a] == q[a - 1] and not ties):
                raise BDError(
                    f"{who} curve is not monotonic: quality {q[a]:.6g} at rate {r[a]:.6g} does not rise above "
                    f"{q[a - 1]:.6g} at rate {r[a - 1]:.6g} (use monotonic='pareto' to drop dominated points)")
    need = METHODS[method]
    if len(r) < need:
        extra = f" after dropping {len(dropped)} dominated point(s)" if dropped else ""
        raise BDError(f"{who} curve has {len(r)} usable point(s){extra}; {method} needs at least {need}")
    return Curve(tuple(r), tuple(q), tuple(dropped))


def _overlap(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    lo, hi = max(min(a), min(b)), min(max(a), max(b))
    union = max(max(a), max(b)) - min(min(a), min(b))
    return lo, hi, (max(hi - lo, 0.0) / union) if union > 0 else 0.0


def _bd(kind: str, anchor_rate, anchor_quality, test_rate, test_quality, method: str, monotonic: str,
        min_overlap: float, strict_overlap: bool, quality_scale: float) -> BDResult:
    import bjontegaard as bd

    if method not in METHODS:
        raise BDError(f"unknown BD interpolation {method!r}; choose one of {', '.join(METHODS)}")
    ties = kind == "quality"
    a = _curve(anchor_rate, [v * quality_scale for v in anchor_quality], "anchor", method, monotonic, ties)
    t = _curve(test_rate, [v * quality_scale for v in test_quality], "test", method, monotonic, ties)
    if kind == "rate":
        lo, hi, share = _overlap(a.quality, t.quality)
        domain = f"quality ranges [{min(a.quality):.4g}, {max(a.quality):.4g}] and [{min(t.quality):.4g}, " \
                 f"{max(t.quality):.4g}]"
    else:
        lo, hi, share = _overlap(np.log10(a.rate), np.log10(t.rate))
        domain = f"rate ranges [{min(a.rate):.4g}, {max(a.rate):.4g}] and [{min(t.rate):.4g}, {max(t.rate):.4g}] bpp"
    if hi <= lo:
        raise BDError(f"curves do not overlap ({domain}): no BD-{kind} can be computed")
    notes: list[str] = []
    if share < min_overlap:
        msg = f"curves overlap on {share:.0%} of the {domain.split(' ranges')[0]} range (below {min_overlap:.0%})"
        if strict_overlap:
            raise BDError(msg)
        notes.append(msg)
    for who, c in (("anchor", a), ("test", t)):
        if c.dropped:
            pts = ", ".join(f"({r:.4g} bpp, {q:.4g})" for r, q in c.dropped)
            notes.append(f"{who}: non-monotonic, dominated point(s) dropped: {pts}")
    fn = bd.bd_rate if kind == "rate" else bd.bd_psnr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # overlap is judged above; the package's warning would repeat it
        value = float(fn(list(a.rate), list(a.quality), list(t.rate), list(t.quality), method=method,
                         require_matching_points=False, min_overlap=0.0))
    if not math.isfinite(value):
        raise BDError(f"BD-{kind} came out non-finite for {domain}")
    return BDResult(value, kind, share, a, t, tuple(notes))


def bd_rate_result(anchor_rate, anchor_quality, test_rate, test_quality, method: str = "pchip", *,
                   monotonic: str = "error", min_overlap: float = 0.5, strict_overlap: bool = False,
                   quality_scale: float = 1.0) -> BDResult:
    return _bd("rate", anchor_rate, anchor_quality, test_rate, test_quality, method, monotonic, min_overlap,
               strict_overlap, quality_scale)


def bd_quality_result(anchor_rate, anchor_quality, test_rate, test_quality, method: str = "pchip", *,
                      monotonic: str = "error", min_overlap: float = 0.5, strict_overlap: bool = False,
                      quality_scale: float = 1.0) -> BDResult:
    return _bd("quality", anchor_rate, anchor_quality, test_rate, test_quality, method, monotonic, min_overlap,
               strict_overlap, quality_scale)


def bd_rate(anchor_rate, anchor_quality, test_rate, test_quality, method: str = "pchip", **kw) -> float:
    """Average rate difference at equal quality, in percent (negative = saving)."""
    return bd_rate_result(anchor_rate, anchor_quality, test_rate, test_quality, method, **kw).value


def bd_quality(anchor_rate, anchor_quality, test_rate, test_quality, method: str = "pchip", **kw) -> float:
    """Average quality difference at equal rate, in the quality's units times ``quality_scale``."""
    return bd_quality_result(anchor_rate, anchor_quality, test_rate, test_quality, method, **kw).value


def bd_map(anchor_rate, anchor_map, test_rate, test_map, method: str = "pchip", **kw) -> float:
    """BD-mAP in percentage points, from mAP values in [0, 1] (the paper's η2)."""
    return bd_quality(anchor_rate, anchor_map, test_rate, test_map, method, quality_scale=MAP_SCALE, **kw)
