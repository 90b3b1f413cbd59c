"""Image-bootstrap intervals for a study's BD cells and for the differences between methods.

:mod:`csalic.metrics.bootstrap` says what a resample is; this module applies it to a study: every
point's ``matches.npz`` (written by ``csalic evaluate`` beside its ``summary.json``) is read once,
each dataset gets one draw of resample weights shared by all its points, and a (dataset, method,
task) curve becomes (points x resamples) arrays of bpp and mAP@0.5.  A BD cell's resampled values
are kept, so that the difference between two methods is taken resample by resample (paired) and
the average of two tasks is the average per resample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import CsalicError
from ..metrics import bootstrap
from ..metrics.matches import PointMatches, load
from .evaluate import MATCHES_FILE

KIND = {"detection": "bbox", "segmentation": "segm"}


class NoInterval(CsalicError):
    """A curve that cannot be resampled (no matches file, other images than its dataset's)."""


@dataclass
class ImageBootstrap:
    resamples: int = bootstrap.DEFAULT_RESAMPLES
    seed: int = 0
    level: float = bootstrap.DEFAULT_LEVEL
    _points: dict[str, PointMatches] = field(default_factory=dict)
    _weights: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _curves: dict[tuple, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.resamples < 0:
            raise CsalicError(f"report.resamples must be >= 0, got {self.resamples}")
        if self.seed < 0:
            raise CsalicError(f"report.resample_seed must be >= 0, got {self.seed}")
        if not 0.0 < self.level < 1.0:
            raise CsalicError(f"report.level must be in (0, 1), got {self.level}")

    @classmethod
    def from_settings(cls, report: dict) -> "ImageBootstrap":
        """From a study's ``report`` settings (params.yaml)."""
        return cls(int(report["resamples"]), int(report["resample_seed"]), float(report["level"]))

    @property
    def enabled(self) -> bool:
        return self.resamples > 0

    def _point(self, summary: str | Path) -> PointMatches:
        key = str(summary)
        if key not in self._points:
            path = Path(summary).with_name(MATCHES_FILE)
            if not path.is_file():
                raise NoInterval(f"no {MATCHES_FILE} beside {summary} (evaluated before csalic wrote them): "
                                 "evaluate the point again for an interval")
            self._points[key] = load(path)
        return self._points[key]

    def weights(self, dataset: str, image_ids: np.ndarray) -> np.ndarray:
        """The dataset's resample weights; every point of it must cover the same images (the pairing)."""
        if dataset not in self._weights:
            seed = np.random.SeedSequence([self.seed, *dataset.encode()])
            w = bootstrap.resample_weights(len(image_ids), self.resamples, int(seed.generate_state(1)[0]))
            self._weights[dataset] = (np.asarray(image_ids), w)
        ids, w = self._weights[dataset]
        if not np.array_equal(ids, image_ids):
            raise NoInterval(f"the points on {dataset} cover different images ({len(ids)} and {len(image_ids)}): "
                             "a paired interval needs every method on the same images")
        return w

    def curve(self, dataset: str, method: str, task: str, sources: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(bpp, mAP@0.5), each (points x resamples), of one curve; points in ``sources``' order."""
        key = (dataset, task, tuple(sources))  # a method's seeds are curves of their own
        if not sources:
            raise NoInterval(f"{method} has no evaluated points on {dataset} (published points carry no "
                             "per-image results)")
        if key not in self._curves:
            rates, maps = [], []
            for src in sources:
                p = self._point(src)
                m = p.matches.get(KIND[task])
                if m is None:
                    raise NoInterval(f"{src}: no {KIND[task]} matches")
                w = self.weights(dataset, p.image_ids)
                rates.append(p.bpp_mean(w))
                maps.append(m.map50(w))
            self._curves[key] = (np.array(rates), np.array(maps))
        return self._curves[key]

    def values(self, fn: Callable[..., float], anchor: tuple[np.ndarray, np.ndarray],
               test: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """``fn``'s BD value (a :class:`~csalic.metrics.bd.BDResult`) on every resample of the two curves."""
        return bootstrap.resampled(lambda *curves: fn(*curves).value, anchor, test)

    def interval(self, samples: np.ndarray | None) -> bootstrap.Interval | None:
        return None if samples is None else bootstrap.interval(samples, self.level)
