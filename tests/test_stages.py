"""csalic.study.stages is the one statement of the workflow's stages; the rules, dvc.yaml, the command
line and the README's table agree with it."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import yaml

from csalic.study.stages import STAGES, markdown, settings, stage

ROOT = Path(__file__).resolve().parents[1]


def _rules() -> dict[str, str]:
    """Rule name -> the csalic subcommand its shell line runs (``all`` runs none)."""
    text = "\n".join(p.read_text() for p in sorted((ROOT / "workflow" / "rules").glob("*.smk")))
    text += (ROOT / "Snakefile").read_text()
    out = {}
    for block in re.split(r"^rule ", text, flags=re.M)[1:]:
        name = block.split(":", 1)[0].strip()
        m = re.search(r'"csalic ([a-z-]+) ', block)
        out[name] = m.group(1) if m else None
    return out


def test_every_rule_runs_its_stages_subcommand():
    rules = _rules()
    assert rules.pop("all") is None
    listed = {r for s in STAGES for r in s.rules}
    assert set(rules) == listed, (sorted(rules), sorted(listed))
    for rule, command in rules.items():
        assert command == stage(rule).command, rule


def test_every_dvc_stage_runs_its_subcommand_with_its_settings():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    table = {s.dvc: s for s in STAGES if s.dvc}
    assert set(dvc) == set(table)
    for name, spec in dvc.items():
        spec = spec.get("do", spec)  # foreach stages
        assert spec["cmd"].split()[:2] == ["csalic", table[name].command], name
        assert tuple(spec.get("params", ())) == table[name].settings, name


def test_every_subcommand_calls_an_existing_library_function():
    from csalic.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command").choices
    for s in STAGES:
        assert s.command in sub, s.command
        module, func = s.function.split(":")
        assert callable(getattr(importlib.import_module(module), func)), s.function
        # the subcommand's module names the function it calls
        handler = sub[s.command].get_default("func")
        source = Path(importlib.import_module(handler.__module__).__file__).read_text()
        assert func in source, (s.command, s.function)


def test_rule_settings_are_the_tables():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert settings(params, "data") == {k: params[k] for k in ("mode", "seed", "data")}
    assert settings(params, "report") == {"anchors.published": params["anchors"]["published"]}
    assert settings(params, "train") == {k: params[k] for k in ("seed", "model", "train", "task")}
    assert settings(params, "eval_anchor") == {k: params[k] for k in ("eval", "task")}


def test_the_readme_shows_the_table():
    assert markdown() in (ROOT / "README.md").read_text()
