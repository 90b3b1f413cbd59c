"""The image bootstrap: mAP from per-image matches, resample weights, and BD intervals on constructed curves.

The constructed study: every image holds one object; image i has a difficulty u_i ~ U(0, 1), and a
point at which a method finds objects with probability p finds it on image i iff u_i < p (the same u
for every method and point: an image hard for one is hard for all, which is what pairing is for).
Found objects score above every false detection, so a point's AP (all points) is exactly the share
of images found, and the population curve is p itself: the true BD values are known.
"""

from __future__ import annotations

import numpy as np
import pytest

from csalic.errors import CsalicError
from csalic.metrics import bootstrap
from csalic.metrics.bd import MAP_SCALE, bd_quality, bd_rate
from csalic.metrics.matches import Matches, load, save

RATES = [0.1, 0.2, 0.4, 0.8]
ANCHOR_P = [0.30, 0.45, 0.58, 0.68]
TEST_P = [0.36, 0.52, 0.63, 0.71]


def _point(u: np.ndarray, p: float) -> Matches:
    n = len(u)
    found = u < p
    score = np.where(found, 0.5 + 0.5 * (1 - u), 0.5 * u)  # each image: one detection, true or false
    return Matches(np.arange(n), np.array([7]), np.arange(n), np.zeros(n, int), score, found,
                   np.ones((n, 1), int), "all_points")


def _curve(u, ps, w):
    return np.array([RATES] * len(w)).T, np.array([_point(u, p).map50(w) for p in ps])


def _bd_map(ar, aq, tr, tq):
    return bd_quality(ar, aq, tr, tq, "pchip", monotonic="pareto", quality_scale=MAP_SCALE)


TRUE_BD_MAP = _bd_map(RATES, ANCHOR_P, RATES, TEST_P)


def test_map_of_the_constructed_point_is_the_share_found():
    u = np.random.default_rng(0).uniform(size=200)
    m = _point(u, 0.4)
    assert m.map50() == pytest.approx(np.mean(u < 0.4))
    w = bootstrap.resample_weights(200, 5, seed=1)
    assert np.allclose(m.map50(w), (w @ (u < 0.4)) / w.sum(axis=1))


def test_weights_are_counts_of_a_draw_and_depend_only_on_the_seed():
    w = bootstrap.resample_weights(50, 20, seed=3)
    assert w.shape == (20, 50) and (w.sum(axis=1) == 50).all() and (w >= 0).all()
    assert np.array_equal(w, bootstrap.resample_weights(50, 20, seed=3))
    assert not np.array_equal(w, bootstrap.resample_weights(50, 20, seed=4))
    with pytest.raises(CsalicError, match="at least one resample"):
        bootstrap.resample_weights(50, 0, seed=0)


def test_a_weight_of_two_is_the_image_twice():
    """Weighted matches equal the matches of a set holding the image twice (COCO's rule, tie order aside)."""
    rng = np.random.default_rng(5)
    n, k = 12, 3
    image = np.repeat(np.arange(n), 4)
    cls = rng.integers(0, k, len(image))
    score = rng.uniform(size=len(image))
    tp = rng.uniform(size=len(image)) < 0.5
    pos = rng.integers(0, 3, (n, k))
    pos[image[tp], cls[tp]] = np.maximum(pos[image[tp], cls[tp]], 1)
    m = Matches(np.arange(n), np.arange(k), image, cls, score, tp, pos, "coco101")
    w = np.ones(n)
    w[2], w[5] = 2, 0
    keep = image != 5
    twice = image == 2
    dup = Matches(np.arange(n + 1), np.arange(k), np.concatenate([image[keep], np.full(twice.sum(), n)]),
                  np.concatenate([cls[keep], cls[twice]]), np.concatenate([score[keep], score[twice]]),
                  np.concatenate([tp[keep], tp[twice]]), np.vstack([np.where(np.arange(n)[:, None] == 5, 0, pos), pos[2:3]]),
                  "coco101")
    assert m.map50(w[None])[0] == pytest.approx(dup.map50())


def _reference_ap(w_row, m, c):
    """One class's AP on one weighting, in exact fractions: recall k/100 reached where 100 tp >= k npos."""
    from fractions import Fraction

    idx = np.lexsort((np.arange(len(m.score)), -m.score, m.cls))
    idx = idx[m.cls[idx] == c]
    npos = int(w_row @ m.positives[:, c])
    if npos == 0:
        return None
    tp = seen = 0
    tps, prs = [], []
    for j in idx:
        wj = int(w_row[m.image[j]])
        tp += wj * int(m.tp[j])
        seen += wj
        tps.append(tp)
        prs.append(Fraction(tp, seen) if seen else Fraction(0))
    env = [max(prs[j:]) for j in range(len(prs))]
    if m.rule == "coco101":
        total = Fraction(0)
        for k in range(101):
            at = next((j for j, t in enumerate(tps) if 100 * t >= k * npos), None)
            total += env[at] if at is not None else 0
        return float(total / 101)
    prev = 0
    area = Fraction(0)
    for j, t in enumerate(tps):
        area += Fraction(t - prev, npos) * env[j]
        prev = t
    return float(area)


@pytest.mark.parametrize("rule", ["coco101", "all_points"])
def test_resampled_map_is_the_exact_map_of_each_resample(rule, monkeypatch):
    """All resamples at once (in chunks, classes on threads) give each one's mAP in exact arithmetic."""
    from csalic.metrics import matches

    rng = np.random.default_rng(9)
    n, k = 30, 3
    image = np.repeat(np.arange(n), 5)
    cls = rng.integers(0, k, len(image))
    tp = rng.uniform(size=len(image)) < 0.4
    pos = rng.integers(0, 4, (n, k))
    m = Matches(np.arange(n), np.arange(k), image, cls, rng.uniform(size=len(image)), tp, pos, rule)
    w = bootstrap.resample_weights(n, 12, seed=2)
    monkeypatch.setattr(matches, "CHUNK", 200)  # several chunks per class
    for b, got in enumerate(m.map50(w)):
        aps = [a for c in range(k) if (a := _reference_ap(w[b], m, c)) is not None]
        assert got == pytest.approx(np.mean(aps), abs=1e-6)


def test_bd_intervals_cover_the_true_value_at_about_their_level():
    """150 independent studies of 120 images; the intervals from 100 paired resamples each."""
    rng = np.random.default_rng(11)
    reps = 150
    covered = {0.95: 0, 0.5: 0}
    for r in range(reps):
        u = rng.uniform(size=120)
        w = bootstrap.resample_weights(120, 100, seed=r)
        values = bootstrap.resampled(_bd_map, _curve(u, ANCHOR_P, w), _curve(u, TEST_P, w))
        for level in covered:
            ci = bootstrap.interval(values, level)
            assert ci.used == 100 and ci.low < ci.high
            covered[level] += ci.low <= TRUE_BD_MAP <= ci.high
    share = {level: n / reps for level, n in covered.items()}
    # the binomial spread at 150 studies is ~2 points (95 %) and ~4 (50 %)
    assert abs(share[0.95] - 0.95) < 0.06 and abs(share[0.5] - 0.5) < 0.12, share


def test_intervals_shrink_as_images_are_added():
    rng = np.random.default_rng(2)
    widths = {}
    for n in (100, 400):
        ws = []
        for r in range(8):
            u = rng.uniform(size=n)
            w = bootstrap.resample_weights(n, 200, seed=100 + r)
            ci = bootstrap.interval(bootstrap.resampled(_bd_map, _curve(u, ANCHOR_P, w), _curve(u, TEST_P, w)))
            ws.append(ci.high - ci.low)
        widths[n] = np.mean(ws)
    assert 0.35 < widths[400] / widths[100] < 0.7, widths  # 1/sqrt(4) = 0.5


def test_pairing_narrows_the_interval_of_a_difference():
    """The same images for both methods: a shared hard image moves both curves, and the difference less."""
    rng = np.random.default_rng(4)
    u = rng.uniform(size=200)
    w = bootstrap.resample_weights(200, 300, seed=0)
    w_other = bootstrap.resample_weights(200, 300, seed=1)
    paired = bootstrap.resampled(_bd_map, _curve(u, ANCHOR_P, w), _curve(u, TEST_P, w))
    unpaired = bootstrap.resampled(_bd_map, _curve(u, ANCHOR_P, w), _curve(u, TEST_P, w_other))
    assert np.std(paired) < 0.5 * np.std(unpaired)


def test_a_resample_without_a_value_is_counted_not_hidden():
    def rate(ar, aq, tr, tq):
        return bd_rate(ar, aq, tr, tq, "pchip", monotonic="pareto")

    anchor = (np.array([RATES] * 4).T, np.array([[0.1, 0.1, 0.9, 0.1], [0.2, 0.2, 0.95, 0.2],
                                                 [0.3, 0.3, 0.97, 0.3], [0.4, 0.4, 0.99, 0.4]]))
    test = (np.array([RATES] * 4).T, np.array([[0.15, 0.15, 0.1, 0.15], [0.25, 0.25, 0.12, 0.25],
                                               [0.35, 0.35, 0.14, 0.35], [0.45, 0.45, 0.16, 0.45]]))
    values = bootstrap.resampled(rate, anchor, test)
    assert np.isnan(values[2]) and np.isfinite(values[[0, 1, 3]]).all()  # resample 2: no overlap
    ci = bootstrap.interval(values)
    assert ci.used == 3 and ci.resamples == 4 and "from 3 of 4 image resamples" in ci.note()


def test_matches_file_round_trip_and_refusals(tmp_path):
    u = np.random.default_rng(0).uniform(size=30)
    m = _point(u, 0.5)
    path = save(tmp_path / "matches.npz", {"bbox": m}, bpp=np.linspace(0.1, 0.4, 30))
    back = load(path)
    assert back.matches["bbox"].map50() == m.map50() and list(back.image_ids) == list(range(30))
    assert back.bpp_mean(np.ones((1, 30)))[0] == pytest.approx(0.25)
    with pytest.raises(CsalicError, match="30 images"):
        save(tmp_path / "bad.npz", {"bbox": m}, bpp=[0.1])
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(CsalicError, match="not a matches file"):
        load(tmp_path / "junk.npz")
    with pytest.raises(CsalicError, match="interval level"):
        bootstrap.interval([1.0, 2.0], level=1.5)
