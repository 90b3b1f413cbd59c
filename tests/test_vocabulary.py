"""Each name of the study's vocabulary is spelled once; where a copy must exist (the JSON schema,
the rules, dvc.yaml), this suite holds it to the original."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from csalic.names import CODEC_NAMES, POINT_PATTERN, QP_CODECS, QUALITY_CODECS, VARIANT_NAMES
from csalic.study.params import SCHEMA_PATH

ROOT = Path(__file__).resolve().parents[1]


def _schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def test_variants_are_the_models_the_schemas_and_the_clis():
    from csalic.cli import build_parser
    from csalic.codec.model import VARIANTS

    assert tuple(VARIANTS) == VARIANT_NAMES
    assert tuple(_schema()["properties"]["variants"]["items"]["enum"]) == VARIANT_NAMES
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices
    stage = next(a for a in sub["stage"]._actions if a.dest == "stage").choices
    # the CLIs take a variant or a study's learned codec by name: the study checks it (test_learned)
    action = next(a for a in sub["train"]._actions if a.dest == "variant")
    assert action.choices is None and ", ".join(VARIANT_NAMES) in action.help
    assert next(a for a in stage["train"]._actions if a.dest == "variants").choices is None


def test_codecs_split_into_qp_and_quality_ones():
    assert set(QP_CODECS) | set(QUALITY_CODECS) | {"csalic", "none"} == set(CODEC_NAMES)
    assert not set(QP_CODECS) & set(QUALITY_CODECS)


def test_the_schemas_point_pattern_accepts_what_the_grammar_accepts():
    """The schema's regex also bounds the numbers (its copy of the grammar, held to POINT_PATTERN here)."""
    schema_re = _schema()["properties"]["anchors"]["properties"]["points"]["items"]["pattern"]
    samples = ["none", "vvc-qp0", "vvc-qp63", "hevc-qp51", "hevc-q50", "jpeg-q1", "webp-q100", "avif-q30"]
    for s in samples:
        assert re.fullmatch(POINT_PATTERN, s) and re.search(schema_re, s), s
    for s in ["vvc-q30", "jpeg-qp30", "x265-qp30", "none-q1", "vvc-qp", "hevcqp30"]:
        assert not re.fullmatch(POINT_PATTERN, s) and not re.search(schema_re, s), s
    # the bounds the grammar leaves to parse_point are the schema's
    assert not re.search(schema_re, f"vvc-qp{QP_CODECS['vvc'] + 1}")
    assert not re.search(schema_re, f"hevc-qp{QP_CODECS['hevc-qp'] + 1}")


def test_the_rules_take_the_grammar_and_the_lambda_tags_from_the_package():
    common = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    assert "from csalic.names import POINT_PATTERN" in common
    assert "job=layout.JOB_PATTERN" in common and "-{layout.LAMBDA_JOB}|{POINT_PATTERN}" in common
    assert "layout.parse_csalic_point(" in common and "study_points(config)" in common
    rules = "\n".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk")) + (ROOT / "Snakefile").read_text()
    assert "lambda_" not in rules and "results/{" not in rules  # the job and point names, the study's root: layout's


def test_job_and_point_names_round_trip():
    from csalic.errors import CsalicError
    from csalic.study import layout
    from csalic.study.params import load
    from csalic.study.points import point_keywords

    params = dict(load(ROOT / "params.yaml"), learned={"mbt-2": {"codec": "mbt2018-mean", "args": {}}})
    for lmbda in (None, 0.0025, 1e-05, 3e-06):
        name = layout.job_name(lmbda)
        assert re.fullmatch(layout.JOB_PATTERN, name) and layout.parse_job_name(name) == lmbda
        if lmbda is not None:
            for trained in ("no_casc", "mbt-2"):  # a variant, and a learned codec with a hyphen in its name
                point = layout.csalic_point(trained, lmbda)
                assert layout.parse_csalic_point(point) == (trained, lmbda, None)
                assert point_keywords(point, params) == {"variant": trained, "lmbda": lmbda}
    assert layout.csalic_point("no_casc", 0.01) == "csalic-no_casc-lambda_0.01"
    assert layout.parse_csalic_point("vvc-qp37") is None
    assert point_keywords("vvc-qp37", params) == {"anchor": "vvc-qp37"}
    with pytest.raises(CsalicError, match="not one of the study's variants"):
        point_keywords("csalic-nope-lambda_0.01", params)
    # another training seed than the study's: its own job and point, parsed back to its seed
    seeded = dict(params, train=dict(params["train"], seeds=[params["seed"], 3]))
    assert layout.train_seeds(seeded) == [None, 3] and layout.train_seeds(params) == [None]
    for lmbda in (0.0025, 1e-05, 3e-06):
        name = layout.job_name(lmbda, 3)
        assert re.fullmatch(layout.JOB_PATTERN, name) and layout.parse_job(name) == (lmbda, 3)
        point = layout.csalic_point("mbt-2", lmbda, 3)
        assert point == f"mbt-2-lambda_{lmbda:g}-seed_3" and layout.parse_csalic_point(point) == ("mbt-2", lmbda, 3)
        assert point_keywords(point, seeded) == {"variant": "mbt-2", "lmbda": lmbda, "seed": 3}
    with pytest.raises(CsalicError, match=r"seed 4 is not one of train.seeds \(other than the study's seed \d+: 3\)"):
        point_keywords("csalic-full-lambda_0.01-seed_4", seeded)
    own = params["seed"]  # the study's own seed goes without the suffix, and the error says the name to use
    with pytest.raises(CsalicError, match=f"seed {own} is the study's own seed, named without a seed suffix: "
                                          "csalic-full-lambda_0.01$"):
        point_keywords(f"csalic-full-lambda_0.01-seed_{own}", seeded)
    with pytest.raises(CsalicError, match="is not warmup, lambda_"):
        layout.parse_job("lambda_0.01-seed_x")


def test_one_lambda_tag_for_paths_rules_and_runs():
    from csalic.study import layout, tracking

    assert tracking.lambda_tag is layout.lambda_tag  # MLflow's csalic.lambda tag is the paths' lambda_<tag>
    assert [layout.lambda_tag(x) for x in (0.0025, 1e-05, 3e-06, 0.01)] == ["0.0025", "1e-05", "3e-06", "0.01"]
    assert float(layout.lambda_tag(3e-06)) == 3e-06
