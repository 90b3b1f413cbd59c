"""What the image bootstrap costs: the report stage of a finished study, and a COCO-sized study.

    .venv/bin/python benchmarks/bootstrap_cost.py demo [--params results/demo/params.yaml] [--resamples 1000]
    .venv/bin/python benchmarks/bootstrap_cost.py coco [--images 5000] [--points 24] [--resamples 1000]

``demo`` times the report of a finished study (``./run.sh demo`` first) twice in one process, into a
scratch folder: without intervals (``resamples`` 0, the reference) and with them, and prints both
and the difference -- the report stage's extra time.

``coco`` builds the per-image matches of a COCO-sized study without a network or a codec (the
matching is the evaluation stage's work, done once per point whatever the report does): ``--images``
images with 7 objects of 80 classes each and 100 detections each, ``--points`` points (half of them
the anchor's, half the method's, at 12 rates each, as 2 curves of 12), and times the report's work
on them: each point's mAP@0.5 and bpp on every resample, then the BD-rate and BD-mAP of the
method's curve against the anchor's on every resample.  One task (bbox); a study with masks pays
the mAP part twice.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from csalic.metrics import bootstrap  # noqa: E402
from csalic.metrics.matches import Matches  # noqa: E402


def demo(args: argparse.Namespace) -> None:
    from csalic.evaluation.intervals import ImageBootstrap
    from csalic.evaluation.report import write_report
    from csalic.study.params import load
    from csalic.study.pipeline import study_summaries

    params = load(args.params)
    summaries = study_summaries(params)
    complexity = []
    times = {}
    for resamples in (0, args.resamples):
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            write_report(summaries, out, published=params["anchors"]["published"], complexity=complexity,
                         bootstrap=ImageBootstrap(resamples, params["report"]["resample_seed"],
                                                  params["report"]["level"]))
            times[resamples] = time.perf_counter() - t0
    n = len(summaries)
    print(f"report of {params['study']} ({n} summaries): {times[0]:.1f} s without intervals, "
          f"{times[args.resamples]:.1f} s with {args.resamples} resamples: +{times[args.resamples] - times[0]:.1f} s")


def _point(rng: np.random.Generator, n_images: int, skill: float) -> tuple[Matches, np.ndarray]:
    objects, dets, classes = 7, 100, 80
    positives = np.zeros((n_images, classes), dtype=np.int64)
    np.add.at(positives, (np.repeat(np.arange(n_images), objects), rng.integers(0, classes, n_images * objects)), 1)
    image = np.repeat(np.arange(n_images), dets)
    cls = rng.integers(0, classes, len(image))
    tp = rng.uniform(size=len(image)) < skill * 0.07
    score = np.clip(rng.normal(0.3 + 0.4 * tp, 0.15), 0, 1)
    bpp = rng.gamma(4.0, skill / 20, n_images)
    return Matches(np.arange(n_images), np.arange(classes), image, cls, score, tp, positives, "coco101"), bpp


def coco(args: argparse.Namespace) -> None:
    from csalic.metrics.bd import MAP_SCALE, bd_quality, bd_rate

    rng = np.random.default_rng(0)
    per_curve = args.points // 2
    skills = np.linspace(0.3, 1.0, per_curve)
    w = bootstrap.resample_weights(args.images, args.resamples, seed=0)
    curves = []
    t_map = 0.0
    for shift in (0.0, 0.05):  # the anchor, then the method (a little better at each rate)
        rates, maps = [], []
        for s in skills:
            m, bpp = _point(rng, args.images, s + shift)
            t0 = time.perf_counter()
            maps.append(m.map50(w))
            rates.append((w @ (bpp * (1 - shift))) / w.sum(axis=1))
            t_map += time.perf_counter() - t0
        curves.append((np.array(rates), np.array(maps)))
    t0 = time.perf_counter()
    for fn in (lambda *c: bd_rate(*c, "pchip", monotonic="pareto", quality_scale=MAP_SCALE),
               lambda *c: bd_quality(*c, "pchip", monotonic="pareto", quality_scale=MAP_SCALE)):
        values = bootstrap.resampled(fn, *curves)
        ci = bootstrap.interval(values)
        print(f"  interval [{ci.low:.2f}, {ci.high:.2f}] from {ci.used} of {ci.resamples} resamples")
    t_bd = time.perf_counter() - t0
    print(f"{args.images} images x {args.points} points x {args.resamples} resamples: mAP and bpp of every point on "
          f"every resample {t_map:.1f} s ({t_map / args.points:.2f} s a point), BD-rate and BD-mAP of one cell "
          f"{t_bd:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    d = sub.add_parser("demo")
    d.add_argument("--params", default="results/demo/params.yaml")
    d.add_argument("--resamples", type=int, default=1000)
    c = sub.add_parser("coco")
    c.add_argument("--images", type=int, default=5000)
    c.add_argument("--points", type=int, default=24)
    c.add_argument("--resamples", type=int, default=1000)
    args = ap.parse_args()
    (demo if args.what == "demo" else coco)(args)


if __name__ == "__main__":
    main()
