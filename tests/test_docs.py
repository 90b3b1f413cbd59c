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
