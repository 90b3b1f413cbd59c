"""BD intervals through the report and `csalic compare`, on a study built from per-image matches.

Each point is what `csalic evaluate` leaves: a summary.json and, beside it, matches.npz. The
images are those of tests/test_intervals.py (one object each, found below a per-image difficulty),
so every number is known: a point's mAP is the share of images found.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from csalic.cli import main
from csalic.evaluation.evaluate import SUMMARY_FORMAT
from csalic.evaluation.intervals import ImageBootstrap
from csalic.evaluation.report import bd_cell, collect, compare, difference_cell, write_report
from csalic.metrics import bootstrap
from csalic.metrics.matches import Matches, save

N = 40
RATES = [0.1, 0.2, 0.4, 0.8]
CURVES = {"vvc": [0.30, 0.45, 0.58, 0.68], "csalic-full": [0.40, 0.55, 0.66, 0.74],
          "csalic-concat": [0.34, 0.50, 0.61, 0.71]}


def _write_study(root, u, n=N, with_matches=True):
    for method, ps in CURVES.items():
        for k, (rate, p) in enumerate(zip(RATES, ps)):
            found = u[:n] < p
            m = Matches(np.arange(n), np.array([1]), np.arange(n), np.zeros(n, int),
                        np.where(found, 0.5 + 0.5 * (1 - u[:n]), 0.5 * u[:n]), found, np.ones((n, 1), int),
                        "coco101")
            bpp = rate * (0.8 + 0.4 * u[:n])  # harder images cost more bits
            out = root / "eval" / "demo_val" / f"{method}-{k}"
            out.mkdir(parents=True)
            if with_matches:
                save(out / "matches.npz", {"bbox": m}, bpp=bpp)
            (out / "summary.json").write_text(json.dumps({
                "format": SUMMARY_FORMAT, "method": method, "setting": f"k={k}", "dataset": "demo_val",
                "task_net": "net", "bpp": float(bpp.mean()), "map50_bbox": m.map50(), "map50_segm": None}))
    return root / "eval"


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    u = np.random.default_rng(7).uniform(size=4 * N)
    return _write_study(tmp_path_factory.mktemp("study"), u)


def test_every_cell_has_its_interval_in_every_format(study_dir, tmp_path):
    boot = ImageBootstrap(200, seed=3)
    study, _ = write_report([study_dir], tmp_path, anchor="vvc", figure=False, bootstrap=boot)
    cell = bd_cell(study, "demo_val", "csalic-full", "detection")
    assert cell.rate < 0 and cell.quality > 0  # full finds more at every rate
    for kind in ("rate", "quality"):
        ci = getattr(cell, f"{kind}_ci")
        assert ci.used == 200 and ci.low < getattr(cell, kind) < ci.high
    md = (tmp_path / "tables" / "table1.md").read_text()
    assert f"{cell.rate:.3f} [{cell.rate_ci.low:.1f}, {cell.rate_ci.high:.1f}]/" in md
    assert "200 paired bootstrap resamples of the evaluation images (seed 3)" in md
    tex = (tmp_path / "tables" / "table2.tex").read_text()
    assert f"[{cell.rate_ci.low:.1f}, {cell.rate_ci.high:.1f}]" in tex and r"$\Delta\eta_1$" in tex
    import csv

    rows = list(csv.DictReader((tmp_path / "tables" / "table2.csv").open()))
    full = next(r for r in rows if r["variant"] == "full" and r["task"] == "detection")
    assert float(full["bd_rate_low"]) == pytest.approx(cell.rate_ci.low, abs=1e-6)
    assert full["ci_resamples"] == "200" and full["bd_rate_ci_used"] == "200"
    bd = json.loads((tmp_path / "metrics" / "bd.json").read_text())["bd"]["csalic-full"]["demo_val"]["detection"]
    assert bd["bd_rate_ci"] == [pytest.approx(cell.rate_ci.low), pytest.approx(cell.rate_ci.high)]
    assert bd["ci_level"] == 0.95 and bd["ci_resamples"] == 200


def test_the_same_seed_gives_the_same_intervals_and_another_seed_others(study_dir):
    def ci(seed):
        study = collect([study_dir], anchor="vvc", bootstrap=ImageBootstrap(100, seed=seed))
        return bd_cell(study, "demo_val", "csalic-concat", "detection").rate_ci
    assert ci(1) == ci(1) and ci(1) != ci(2)


def test_the_difference_is_paired_resample_by_resample(study_dir):
    study = collect([study_dir], anchor="vvc", bootstrap=ImageBootstrap(300, seed=0))
    full = bd_cell(study, "demo_val", "csalic-full", "detection")
    concat = bd_cell(study, "demo_val", "csalic-concat", "detection")
    d = difference_cell(full, concat, study.bootstrap)
    assert d.rate == pytest.approx(full.rate - concat.rate)
    expected = bootstrap.interval(full.rate_samples - concat.rate_samples)
    assert (d.rate_ci.low, d.rate_ci.high) == (expected.low, expected.high)
    # the shared images move both methods alike: paired, the difference spreads less than it would
    # between independent draws of the images for each
    # (BD-mAP here: 0.73 of the unpaired spread; unpaired draws would give about 1)
    unpaired = full.quality_samples - np.random.default_rng(0).permutation(concat.quality_samples)
    assert np.std(full.quality_samples - concat.quality_samples) < 0.85 * np.std(unpaired)
    assert np.corrcoef(full.rate_samples, concat.rate_samples)[0, 1] > 0.1
    rows = compare(study, "csalic-full", "csalic-concat")
    assert [(r["dataset"], r["task"]) for r in rows] == [("demo_val", "detection")]
    with pytest.raises(Exception, match="no results for method 'csalic-nope'"):
        compare(study, "csalic-full", "csalic-nope")
    with pytest.raises(Exception, match="is the study's anchor"):
        compare(study, "vvc", "csalic-full")
    with pytest.raises(Exception, match="A and B are both csalic-full: name two different methods"):
        compare(study, "csalic-full", "csalic-full")


def test_csalic_compare_prints_the_paired_difference(study_dir, capsys):
    assert main(["compare", "full", "concat", "--eval", str(study_dir), "--anchor", "vvc", "--resamples", "300"]) == 0
    out = capsys.readouterr().out
    study = collect([study_dir], anchor="vvc", bootstrap=ImageBootstrap(300, seed=0))
    d = compare(study, "csalic-full", "csalic-concat")[0]["difference"]
    assert f"{d.rate:+.2f} [{d.rate_ci.low:+.2f}, {d.rate_ci.high:+.2f}]" in out
    assert "95% interval over 300 paired image resamples (seed 0)" in out
    verdict = "Proposed (CSA-LIC) saves rate" if d.rate_ci.high < 0 else "not resolved"
    assert verdict in out
    assert main(["compare", "full", "nope", "--eval", str(study_dir), "--anchor", "vvc"]) == 2
    assert "no results for method 'nope'" in capsys.readouterr().err
    # a variant by its short name and by its method name is one method
    assert main(["compare", "full", "csalic-full", "--eval", str(study_dir), "--anchor", "vvc"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["csalic: error: A and B are both csalic-full: name two different methods"]


def test_points_without_matches_or_on_other_images_get_no_interval_and_say_why(tmp_path):
    u = np.random.default_rng(1).uniform(size=4 * N)
    old = _write_study(tmp_path / "old", u, with_matches=False)
    study = collect([old], anchor="vvc", bootstrap=ImageBootstrap(50))
    cell = bd_cell(study, "demo_val", "csalic-full", "detection")
    assert cell.rate is not None and cell.rate_ci is None
    assert any("no matches.npz beside" in n and "evaluate the point again" in n for n in cell.notes)
    mixed = _write_study(tmp_path / "mixed", u)
    for p in (mixed / "demo_val").glob("csalic-concat-*"):  # concat evaluated on other images than the anchor
        m = json.loads((p / "summary.json").read_text())
        n = N - 5
        save(p / "matches.npz", {"bbox": Matches(np.arange(n), np.array([1]), np.arange(n), np.zeros(n, int),
                                                 u[:n], u[:n] < 0.5, np.ones((n, 1), int))}, bpp=np.full(n, m["bpp"]))
    study = collect([mixed], anchor="vvc", bootstrap=ImageBootstrap(50))
    cell = bd_cell(study, "demo_val", "csalic-concat", "detection")
    assert cell.rate_ci is None and any("cover different images" in n for n in cell.notes)
    assert bd_cell(study, "demo_val", "csalic-full", "detection").rate_ci is not None


def test_intervals_shrink_with_more_images_in_the_study(tmp_path):
    u = np.random.default_rng(3).uniform(size=4 * N)
    widths = []
    for n in (N, 4 * N):
        d = _write_study(tmp_path / str(n), u, n=n)
        ci = bd_cell(collect([d], anchor="vvc", bootstrap=ImageBootstrap(200)), "demo_val", "csalic-full",
                     "detection").quality_ci
        widths.append(ci.high - ci.low)
    assert 0.3 < widths[1] / widths[0] < 0.75, widths


def test_a_published_anchor_gives_values_without_intervals_and_a_bad_seed_is_refused(study_dir, tmp_path):
    """Published points have no per-image results: as the anchor (the test side was handled already)
    the cell keeps its BD value and says why it has no interval, instead of failing on an empty curve."""
    from csalic.errors import CsalicError

    pub = tmp_path / "published.csv"
    pub.write_text("method,dataset,task,bpp,map50,source\n" + "".join(
        f"LALIC,demo_val,detection,{r},{q},test values\n" for r, q in zip(RATES, [0.33, 0.5, 0.62, 0.7])))
    study = collect([study_dir], published=pub, anchor="LALIC", bootstrap=ImageBootstrap(50))
    cell = bd_cell(study, "demo_val", "csalic-full", "detection")
    assert cell.rate is not None and cell.rate_ci is None and cell.quality_ci is None
    assert "no interval: published points carry no per-image results" in cell.notes
    with pytest.raises(CsalicError, match="report.resample_seed must be >= 0, got -1"):
        ImageBootstrap(10, seed=-1)
    assert main(["compare", "full", "concat", "--eval", str(study_dir), "--anchor", "vvc", "--resample-seed", "-1"]) == 2


def test_a_method_under_two_seeds_is_one_curve_per_seed_even_beside_older_summaries(tmp_path):
    """Points of the study's own seed evaluated before summaries recorded the seed have none: they
    join the seed their sibling folders (no -seed_ suffix) record, instead of making a third seed; the
    DVC points and the curves files keep each seed apart; the figure draws the study's seed."""
    from csalic.evaluation.report import study_metrics, write_curves

    u = np.random.default_rng(5).uniform(size=N)
    root = tmp_path / "eval" / "demo_val"

    def point(method, k, p, folder, seed):
        found = u < p
        m = Matches(np.arange(N), np.array([1]), np.arange(N), np.zeros(N, int),
                    np.where(found, 0.5 + 0.5 * (1 - u), 0.5 * u), found, np.ones((N, 1), int), "coco101")
        out = root / folder
        out.mkdir(parents=True)
        save(out / "matches.npz", {"bbox": m}, bpp=np.full(N, RATES[k]))
        (out / "summary.json").write_text(json.dumps({
            "format": SUMMARY_FORMAT, "method": method, "setting": f"lambda={k}", "dataset": "demo_val",
            "task_net": "net", "bpp": RATES[k], "map50_bbox": m.map50(), "map50_segm": None,
            **({"seed": seed} if seed is not None else {})}))

    for k, p in enumerate(CURVES["vvc"]):
        point("vvc", k, p, f"vvc-{k}", None)
    for k, p in enumerate(CURVES["csalic-full"]):
        point("csalic-full", k, p, f"csalic-full-lambda_{k}", 7 if k >= 2 else None)  # k 0, 1: older summaries
        point("csalic-full", k, p - 0.05, f"csalic-full-lambda_{k}-seed_1", 1)
    study = collect([tmp_path / "eval"], anchor="vvc", bootstrap=ImageBootstrap(50))
    cell = bd_cell(study, "demo_val", "csalic-full", "detection")
    assert set(cell.per_seed) == {1, 7}
    assert cell.rate == pytest.approx(np.mean([r for r, _ in cell.per_seed.values()]))
    assert all("seed_1" not in src for src in study.curve("demo_val", "csalic-full", "detection").sources)
    pts = study_metrics(study)["points"]["demo_val"]["csalic-full"]
    assert sorted(pts) == sorted(f"lambda={k} seed={s}" for k in range(4) for s in (1, 7))
    assert pts["lambda=0 seed=7"]["map50_bbox"] > pts["lambda=0 seed=1"]["map50_bbox"]
    names = sorted(p.name for p in write_curves([tmp_path / "eval"], tmp_path / "curves"))
    assert names == ["csalic-full-seed_1.json", "csalic-full-seed_7.json", "vvc.json"]
