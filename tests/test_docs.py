"""The README's commands are the ones CI and users run, and the services it starts stay on loopback."""

import re
import shlex

from helpers import REPO

README = (REPO / "README.md").read_text()


def _commands(program: str) -> list[list[str]]:
    """Every command line in the README's code blocks that starts with ``program``."""
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    lines = [ln.split("#")[0].strip() for b in blocks for ln in b.splitlines()]
    return [shlex.split(ln) for ln in lines if ln.startswith(program + " ")]


def _option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def test_ci_runs_the_readme_test_command():
    assert ["./run.sh", "test"] in _commands("./run.sh")
    ci = [ln for ln in (REPO / ".ci" / "run").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert any(shlex.split(ln)[-2:] == ["./run.sh", "test"] for ln in ci), ci


def test_the_servers_the_readme_starts_bind_to_loopback():
    mlflow = [c for c in _commands("mlflow") if c[1] in ("ui", "server")]
    assert {c[1] for c in mlflow} == {"ui", "server"}
    assert all(_option(c, "--host") == "127.0.0.1" for c in mlflow), mlflow
    heads = [c for c in _commands("ray") if "--head" in c]
    assert heads and all(_option(c, "--dashboard-host") == "127.0.0.1" for c in heads), heads


def _departures() -> dict[str, list[str]]:
    """The README's table of departures from the paper: key -> [paper, demo, paper config, why]."""
    section = README.split("## Departures from the paper", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and (m := re.fullmatch(r"`([\w.]+)`", cells[0])):
            rows[m.group(1)] = cells[1:]
    return rows


def _value(params: dict, key: str):
    for part in key.split("."):
        params = params.get(part) if isinstance(params, dict) else None
    return params


def test_the_departures_table_matches_both_configs():
    """One row for every setting of params.yaml (the demo) or config/paper.yaml that differs from the paper,
    and every value in the table is the one in those files."""
    import yaml

    from csalic.evaluation.paper_numbers import NOT_STATED, PAPER_SETTINGS

    rows = _departures()
    assert rows, "README has no '## Departures from the paper' table"
    configs = {1: yaml.safe_load((REPO / "params.yaml").read_text()),
               2: yaml.safe_load((REPO / "config" / "paper.yaml").read_text())}
    for key, paper in PAPER_SETTINGS.items():
        for col, params in configs.items():
            ours = _value(params, key)
            if paper == NOT_STATED or ours != paper:
                assert key in rows, f"{key}: {ours!r} differs from the paper's {paper!r} but has no row"
    for key, cells in rows.items():
        assert key in PAPER_SETTINGS, f"row {key} is not a setting csalic.evaluation.paper_numbers knows"
        assert cells[3], f"row {key} does not say why"
        for col, params in configs.items():
            cell, ours = cells[col], _value(params, key)
            if cell == "as paper":
                assert ours == PAPER_SETTINGS[key], f"{key}: the table says 'as paper', the file has {ours!r}"
            else:
                shown = re.fullmatch(r"`(.*)`", cell)
                assert shown, f"{key}: write the value in backticks or 'as paper', got {cell!r}"
                assert yaml.safe_load(shown.group(1)) == ours, f"{key}: table {shown.group(1)!r}, file {ours!r}"


def test_the_readme_demo_numbers_are_the_command_output_of_a_demo_run(capsys, tmp_path):
    """The README's BD table of the demo is `csalic bd-summary` on the bd.json of the run it describes
    (committed in tests/data/demo_run), not numbers typed in."""
    from csalic.cli import main

    assert main(["bd-summary", str(REPO / "tests" / "data" / "demo_run" / "bd.json")]) == 0
    table = capsys.readouterr().out
    assert table.count("\n") == 6 and "| `demo_val` |" in table and "full (proposed)" in table
    # every cell with its interval, the level named under the table
    assert len(re.findall(r"−?\d+\.\d % \[−?\d+\.\d, −?\d+\.\d\] / −?\d+\.\d \[−?\d+\.\d, −?\d+\.\d\]", table)) == 8
    assert "[low, high]: the 95 % image-bootstrap interval" in table
    assert table in (REPO / "README.md").read_text(encoding="utf-8")
    assert main(["bd-summary", str(REPO / "tests" / "data" / "demo_run" / "none.json")]) == 2  # one line, exit 2
    (tmp_path / "bd.json").write_text('{"anchor": "vvc", "bd": {"jpeg": {}}}')  # no CSA-LIC variant in it
    assert main(["bd-summary", str(tmp_path / "bd.json")]) == 2
    assert "holds no CSA-LIC variant" in capsys.readouterr().err
