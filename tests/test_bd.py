"""BD-rate / BD-quality: exact cases, and the documented rules for bad curves."""

import pytest

from csalic.errors import CsalicError
from csalic.metrics.bd import (BDError, bd_map, bd_quality, bd_quality_result, bd_rate, bd_rate_result,
                               pareto_front)

RATE = [0.1, 0.2, 0.4, 0.8]
PSNR = [30.0, 33.0, 36.0, 39.0]


@pytest.mark.parametrize("method", ["pchip", "akima", "cubic"])
def test_half_rate_at_equal_quality_is_minus_50_percent(method):
    assert bd_rate(RATE, PSNR, [r / 2 for r in RATE], PSNR, method) == pytest.approx(-50.0, abs=1e-9)


@pytest.mark.parametrize("method", ["pchip", "akima", "cubic"])
def test_quality_plus_one_everywhere_is_plus_one(method):
    assert bd_quality(RATE, PSNR, RATE, [q + 1 for q in PSNR], method) == pytest.approx(1.0, abs=1e-9)


def test_double_rate_is_plus_100_percent_and_order_of_points_does_not_matter():
    rev = list(reversed(RATE))
    assert bd_rate(rev, list(reversed(PSNR)), [2 * r for r in RATE], PSNR) == pytest.approx(100.0, abs=1e-9)


def test_bd_map_is_in_percentage_points_and_bd_rate_ignores_the_scale():
    m = [0.30, 0.40, 0.50, 0.60]
    assert bd_map(RATE, m, RATE, [x + 0.01 for x in m]) == pytest.approx(1.0, abs=1e-9)
    assert bd_rate(RATE, m, [r / 2 for r in RATE], m, quality_scale=100) == pytest.approx(-50.0, abs=1e-9)


def test_non_monotonic_curve_is_an_error_by_default():
    bumpy = [0.30, 0.45, 0.40, 0.60]
    with pytest.raises(BDError, match="not monotonic: quality 0.4 at rate 0.4"):
        bd_rate(RATE, bumpy, RATE, [0.31, 0.41, 0.51, 0.61])
    assert issubclass(BDError, CsalicError)


def test_pareto_rule_drops_dominated_points_and_says_so():
    bumpy = [30.0, 36.0, 35.0, 39.0]
    res = bd_rate_result(RATE, PSNR, [r / 2 for r in RATE], bumpy, monotonic="pareto")
    assert res.test.rate == (0.05, 0.1, 0.4) and res.test.dropped == ((0.2, 35.0),)
    assert res.flagged and "dominated point(s) dropped: (0.2 bpp, 35)" in res.notes[0]
    clean = bd_rate_result(RATE, PSNR, [r / 2 for r in RATE], PSNR, monotonic="pareto")
    assert not clean.flagged


def test_pareto_front_keeps_the_best_of_equal_rates():
    r, q, dropped = pareto_front([0.2, 0.1, 0.2, 0.4], [0.5, 0.4, 0.6, 0.55])
    assert (r, q, dropped) == ([0.1, 0.2], [0.4, 0.6], [0, 3])


def test_too_few_points_after_dropping():
    with pytest.raises(BDError, match="1 usable point"):
        bd_rate(RATE, PSNR, RATE, [0.5, 0.4, 0.3, 0.2], monotonic="pareto")
    with pytest.raises(BDError, match="cubic needs at least 4"):
        bd_rate(RATE[:3], PSNR[:3], RATE[:3], PSNR[:3], "cubic")


def test_curves_that_do_not_overlap_are_an_error():
    with pytest.raises(BDError, match="do not overlap"):
        bd_rate(RATE, PSNR, RATE, [50, 51, 52, 53])
    with pytest.raises(BDError, match="do not overlap"):
        bd_quality(RATE, PSNR, [10, 20, 40, 80], PSNR)


def test_partial_overlap_is_computed_over_the_overlap_and_flagged():
    res = bd_quality_result(RATE, PSNR, [0.4, 0.8, 1.6, 3.2], [36, 39, 42, 45])
    assert res.overlap == pytest.approx(1 / 5)  # log-rate ranges share 1 of 5 octaves
    assert res.value == pytest.approx(0.0, abs=1e-9)  # identical curve on the overlap
    assert res.notes and "overlap on 20%" in res.notes[0]
    with pytest.raises(BDError, match="overlap on 20%"):
        bd_quality(RATE, PSNR, [0.4, 0.8, 1.6, 3.2], [36, 39, 42, 45], strict_overlap=True)


@pytest.mark.parametrize("bad, match", [
    (dict(test_rate=[0.1, 0.2, 0.0, 0.8]), "non-positive rate"),
    (dict(test_quality=[30, float("nan"), 36, 39]), "non-finite"),
    (dict(test_rate=[0.1, 0.2, 0.4]), "3 rates but 4"),
    (dict(method="linear"), "unknown BD interpolation"),
    (dict(monotonic="sort"), "monotonic must be"),
])
def test_bad_input_is_one_clear_error(bad, match):
    kw = dict(anchor_rate=RATE, anchor_quality=PSNR, test_rate=RATE, test_quality=PSNR)
    kw.update(bad)
    with pytest.raises(BDError, match=match):
        bd_rate(**kw)


def test_a_saturated_anchor_gives_bd_map_but_no_bd_rate():
    """An anchor at mAP 1.0 at every rate is a flat curve: BD-mAP integrates it, BD-rate cannot invert it."""
    flat = [1.0, 1.0, 1.0, 1.0]
    test = [0.5, 0.7, 0.8, 0.9]
    res = bd_quality_result(RATE, flat, RATE, test, monotonic="pareto", quality_scale=100)
    assert res.anchor.rate == tuple(RATE) and not res.anchor.dropped
    assert res.value == pytest.approx(100 * (sum(test) / 4 - 1.0), abs=4.0) and res.value < 0
    with pytest.raises(BDError, match="1 usable point"):
        bd_rate_result(RATE, flat, RATE, test, monotonic="pareto")
    with pytest.raises(BDError, match="falls|not monotonic"):  # a fall in quality is still refused
        bd_quality(RATE, [1.0, 1.0, 0.9, 1.0], RATE, test)
    assert pareto_front(RATE, [0.5, 0.5, 0.4, 0.6], ties=True)[2] == [2]
