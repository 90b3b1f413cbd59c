"""Tables and figure from small fixed result files (tests/data/report), compared with expected text."""

import json
import shutil
from pathlib import Path

import pytest

from csalic.cli import main
from csalic.errors import CsalicError
from csalic.evaluation.report import collect, table1, to_markdown, write_report

DATA = Path(__file__).parent / "data" / "report"
EVAL = DATA / "eval"
EXPECTED = DATA / "expected"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    study, written = write_report([EVAL], out, published=DATA / "published.csv",
                                  complexity=[DATA / "complexity_demo_full.json"])
    return out, study, written


@pytest.mark.parametrize("name", sorted(p.name for p in EXPECTED.iterdir()))
def test_tables_match_expected_text(report, name):
    out, _, _ = report
    assert (out / "tables" / name).read_text(encoding="utf-8") == (EXPECTED / name).read_text(encoding="utf-8")


def test_anchor_and_demo_are_said_in_every_table(report):
    out, study, _ = report
    assert study.anchor == "hevc" and study.demo
    for n in (1, 2):
        for ext in ("md", "tex"):
            text = (out / "tables" / f"table{n}.{ext}").read_text()
            assert "HEVC-Intra" in text and "standing in for the paper's VVC-Intra" in text
            assert "demo val set stands in for both COCO2017 and OpenImagesV6" in text


def test_flags_and_unavailable_cells_are_explained(report):
    out, _, _ = report
    t1 = (out / "tables" / "table1.md").read_text()
    assert "| WebP | n/a/-41.383 [2] |" in t1 and "[2] BD-rate not computed: curves do not overlap" in t1
    assert "[1] curves overlap on 49% of the quality range" in t1
    t2 = (out / "tables" / "table2.md").read_text()
    assert "| concat | ✓ | ✗ | ✓ | -34.310/6.266 [1] |" in t2
    assert "[1] CSA-LIC (concat): non-monotonic, dominated point(s) dropped: (0.26 bpp, 56)" in t2


def test_figure_and_curves(report):
    out, _, written = report
    png, pdf = out / "figures" / "rate_accuracy.png", out / "figures" / "rate_accuracy.pdf"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:5] == b"%PDF-"
    curve = json.loads((out / "curves" / "demo_val" / "csalic-full.json").read_text())
    assert curve["name"] == "CSA-LIC (full)"
    assert curve["results"]["bpp"] == [0.08, 0.14, 0.24, 0.4]
    assert curve["results"]["map50_segm"] == [0.4, 0.52, 0.6, 0.63]
    assert set(curve["results"]) >= {"bpp", "psnr-rgb", "map50_bbox", "map50_segm"}
    assert len(written) == 9 + 4 + 8 + 3  # tables, figures (Figure 5, ablation), curves, DVC metrics/plots
    # the uncompressed ceiling sits one folder down, out of `compressai.utils.plot -f demo_val/*.json`
    assert (out / "curves" / "demo_val" / "ceiling" / "none.json").is_file()
    assert not (out / "curves" / "demo_val" / "none.json").exists()
    assert "none" not in (out / "plots" / "rate_accuracy.csv").read_text()
    bd = json.loads((out / "metrics" / "bd.json").read_text())
    assert bd["anchor"] == "hevc" and bd["bd"]["csalic-full"]["demo_val"]["detection"]["bd_rate"] < 0


def test_without_paper_numbers():
    study = collect([EVAL])
    md = to_markdown(table1(study, show_paper=False))
    assert "Paper" not in md and "LALIC" not in md and "SMIC-Net" not in md
    assert "| Proposed (CSA-LIC) | -42.763/7.711 | -43.599/8.765 | -43.181/8.238 |" in md


def _copy(tmp_path, skip=()):
    dst = tmp_path / "eval"
    shutil.copytree(EVAL, dst, ignore=shutil.ignore_patterns(*skip))
    return dst


def test_vvc_results_make_vvc_the_anchor(tmp_path):
    dst = _copy(tmp_path)
    for src in (dst / "demo_val" / "hevc").rglob("summary.json"):
        s = json.loads(src.read_text())
        s["method"] = s["codec"] = "vvc"
        s.setdefault("provenance", {}).setdefault("codec", {})["label"] = "VVC-Intra (VVenC 1.15.0 via FFmpeg 9.0.2 libvvenc, 4:2:0 10-bit)"
        target = dst / "demo_val" / "vvc" / src.parent.name / "summary.json"
        target.parent.mkdir(parents=True)
        target.write_text(json.dumps(s))
    study = collect([dst])
    assert study.anchor == "vvc"
    assert study.anchor_note == ("Anchor: VVC-Intra (VVenC 1.15.0 via FFmpeg 9.0.2 libvvenc, 4:2:0 10-bit), "
                                 "the paper's anchor.")
    md = to_markdown(table1(study))
    assert "HEVC-Intra" in md  # the other anchor becomes a compared method
    assert md.count("VVenC 1.15.0 via FFmpeg 9.0.2 libvvenc") == 2  # in the caption and the anchor note
    assert collect([dst], anchor="jpeg").anchor_note.startswith("Anchor: JPEG (not the paper's anchor")


def test_errors_are_one_line(tmp_path):
    with pytest.raises(CsalicError, match="no summary.json under"):
        collect([tmp_path])
    with pytest.raises(CsalicError, match="does not exist"):
        collect([tmp_path / "missing"])
    with pytest.raises(CsalicError, match="no anchor results"):
        collect([_copy(tmp_path / "a", skip=("hevc",))])
    dup = _copy(tmp_path / "b")
    shutil.copytree(dup / "demo_val" / "jpeg" / "quality_10", dup / "demo_val" / "jpeg" / "copy")
    with pytest.raises(CsalicError, match="two results for demo_val jpeg quality=10"):
        collect([dup])
    bad = tmp_path / "c" / "summary.json"
    bad.parent.mkdir()
    bad.write_text("{}")
    with pytest.raises(CsalicError, match="not a csalic evaluation summary"):
        collect([bad])


def test_cli(tmp_path, capsys):
    assert main(["tables", "--eval", str(EVAL), "--out", str(tmp_path), "--no-figure"]) == 0
    assert "Anchor: HEVC-Intra" in capsys.readouterr().out
    assert (tmp_path / "tables" / "table3.md").is_file() and not (tmp_path / "figures").exists()
    assert main(["tables", "--eval", str(tmp_path / "nothing"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_table3_lists_params_and_macs_by_module():
    from csalic.evaluation.report import table3, to_markdown

    d = {"size": "paper", "variant": "full", "width": 768, "height": 512, "params": 3_000_000, "macs": 6e9,
         "flops": 12e9, "params_by_module": {"fusion": 1_000_000, "cgm": 2_000_000},
         "macs_by_module": {"fusion": 2e9, "cgm": 4e9}}
    md = to_markdown(table3([d]))
    assert "by module (params M / MACs G at 768x512): fusion 1.00/2.00, cgm 2.00/4.00." in md
    assert "| Proposed (CSA-LIC), paper size | 768x512 | 6.00 | 12.00 | 3.00 |" in md
    # a JSON file comes back with sorted keys: the note follows the codec's order the file records
    ordered = to_markdown(table3([dict(d, params_by_module={"cgm": 2_000_000, "fusion": 1_000_000},
                                       modules=["fusion", "cgm"])]))
    assert "768x512): fusion 1.00/2.00, cgm 2.00/4.00." in ordered


def test_the_ablation_legend_covers_no_data(report):
    """The legend lies below the panels: no plotted point of any curve falls inside it."""
    from csalic.evaluation.report import draw_ablation

    _, study, _ = report
    fig = draw_ablation(study)
    fig.canvas.draw()
    legend = fig.legends[0].get_window_extent()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "baseline" in labels and "full" in labels and any("HEVC" in lab for lab in labels)
    points = 0
    for ax in fig.axes:
        assert not ax.get_window_extent().overlaps(legend)
        for line in ax.get_lines():
            for x, y in ax.transData.transform(line.get_xydata()):
                points += 1
                assert not legend.contains(x, y)
    assert points > 10
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_anchors_primary_chooses_the_anchor_among_the_evaluated_points():
    """anchors.primary used to be read by nothing: a study listing VVC and HEVC points took VVC whatever it said."""
    from helpers import base_params

    from csalic.study.points import anchor_method

    params = base_params()
    both = ["none", "hevc-qp45", "vvc-qp47", "jpeg-q80"]
    for primary, points, anchor in (("vvc", both, "vvc"), ("hevc", both, "hevc-qp"),
                                    ("hevc", ["vvc-qp47", "hevc-q40"], "hevc"),  # HEVC by quality when no QP
                                    ("hevc", ["none", "vvc-qp47"], "vvc"),  # the other of the two, when alone
                                    ("vvc", ["jpeg-q80", "webp-q50"], "jpeg")):  # else the first listed
        p = dict(params, anchors=dict(params["anchors"], primary=primary, points=points))
        assert anchor_method(p) == anchor, (primary, points)
    with pytest.raises(CsalicError, match="lists no codec"):
        anchor_method(dict(params, anchors=dict(params["anchors"], points=["none"])))
