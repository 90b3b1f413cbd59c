"""csalic.study.stages is the one statement of the workflow's stages: each stage's name is its rule,
its dvc.yaml stage, its subcommand (``csalic stage <name>``) and its library function, and the
rules, dvc.yaml, the command line, the library and the README's table agree with it."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest
import yaml

from csalic.study.stages import MODULE, STAGES, markdown, settings, stage

ROOT = Path(__file__).resolve().parents[1]
NAMES = [s.name for s in STAGES]


def _rules() -> dict[str, str | None]:
    """Rule name -> the command its shell line runs, up to its options (``all`` runs none)."""
    text = "\n".join(p.read_text() for p in sorted((ROOT / "workflow" / "rules").glob("*.smk")))
    text += (ROOT / "Snakefile").read_text()
    out = {}
    for block in re.split(r"^rule ", text, flags=re.M)[1:]:
        name = block.split(":", 1)[0].strip()
        m = re.search(r'"(csalic [a-z_ ]+?) --', block)
        out[name] = m.group(1) if m else None
    return out


def test_every_stage_is_one_rule_running_its_subcommand():
    rules = _rules()
    assert rules.pop("all") is None
    assert sorted(rules) == sorted(NAMES)
    for name, command in rules.items():
        assert command == f"csalic stage {name}" == stage(name).command, name


def test_every_stage_is_one_dvc_stage_running_its_subcommand_with_its_settings():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert list(dvc) == NAMES
    for name, spec in dvc.items():
        spec = spec.get("do", spec)  # foreach stages: train@<variant>
        assert spec["cmd"].startswith(f"csalic stage {name} --params params.yaml"), name
        assert tuple(spec.get("params", ())) == stage(name).settings, name


def test_every_stage_subcommand_calls_its_library_function(tmp_path, monkeypatch):
    from csalic.cli import build_parser, main

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices
    stages = next(a for a in sub["stage"]._actions if a.dest == "stage").choices
    assert list(stages) == NAMES
    # no other subcommand runs a stage: the old names are gone
    assert not {"sweep", "eval-point", "eval-points", "prepare-data", "measure-complexity", "report"} & set(sub)
    pipeline = importlib.import_module(MODULE)
    f = tmp_path / "params.yaml"
    f.write_text((ROOT / "params.yaml").read_text())
    for s in STAGES:
        assert s.function == f"{MODULE}.{s.name}"
        assert list(inspect.signature(getattr(pipeline, s.name)).parameters)[0] == "params", s.name
        calls = []
        returns = [] if s.name == "evaluate" else None  # its folders; train's None: no job to train
        monkeypatch.setattr(pipeline, s.name, lambda params, *a, r=returns, **k: calls.append(params["study"]) or r)
        assert main(["stage", s.name, "--params", str(f)]) == 0, s.name
        assert calls == ["demo"], s.name


def test_a_stage_subcommand_reports_bad_input_in_one_line(tmp_path, capsys):
    from csalic.cli import main

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    f = tmp_path / "params.yaml"
    f.write_text(yaml.safe_dump(params))
    for argv, says in ((["stage", "train", "--params", str(f), "--job", "lambda_x"], "job 'lambda_x'"),
                       (["stage", "train", "--params", str(f), "--job", "warmup", "--warmup"], "--job names one job"),
                       (["stage", "train", "--params", str(f), "--job", f"lambda_0.01-seed_{params['seed']}"],
                        "the study's own seed, named without a seed suffix: --job lambda_0.01"),
                       (["stage", "train", "--params", str(f), "--job", "lambda_0.01-seed_77"],
                        "seed 77 is not one of train.seeds"),
                       (["stage", "evaluate", "--params", str(f), "--point", "csalic-nope-lambda_0.1"],
                        "variant 'nope'"),
                       (["stage", "evaluate", "--params", str(f), "--point", "vvc-q30"], "anchor point 'vvc-q30'")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("csalic: error:") and says in err and "\n" not in err, err
    assert not (tmp_path / "results").exists()


def test_rule_settings_are_the_tables():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert settings(params, "data") == {k: params[k] for k in ("mode", "seed", "data")}
    assert settings(params, "report") == {"anchors.primary": params["anchors"]["primary"],
                                          "anchors.published": params["anchors"]["published"],
                                          "report": params["report"]}
    assert settings(params, "train") == {k: params[k] for k in ("seed", "model", "train", "task")}
    assert settings(params, "evaluate") == {k: params[k] for k in ("eval", "task")}
    with pytest.raises(KeyError):
        settings(params, "eval_anchor")


def test_the_readme_shows_the_table():
    assert markdown() in (ROOT / "README.md").read_text()


def test_each_study_reports_under_its_own_folder():
    """The report used to write results/{tables,figures,metrics,plots,curves} for every study: the demo's
    and the paper study's tables overwrote each other. dvc.yaml's report stage names the same files."""
    from csalic.study import layout

    demo, paper = ({"study": s} for s in ("demo", "paper"))
    files = {s["study"]: [f for kind in layout.report_files(s).values() for f in kind] for s in (demo, paper)}
    assert not set(files["demo"]) & set(files["paper"])
    for study, paths in files.items():
        assert all(Path(p).parts[:2] == ("results", study) for p in paths), paths
    assert "results/demo/tables/table1.md" in files["demo"] and "results/paper/metrics/bd.json" in files["paper"]
    report = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["report"]
    declared = {next(iter(o)) if isinstance(o, dict) else o for o in report["outs"] + report["metrics"]}
    assert {f"results/${{study}}/{d}" for d in ("tables", "figures", "curves")} <= declared
    assert all(p.startswith("results/${study}/") for p in declared), declared
