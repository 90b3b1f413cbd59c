"""The house rules of the package's import graph, read from the source with ``ast``.

- Only ``csalic.cli`` reaches into ``csalic.commands`` (which registers the subcommands); the
  library never imports upward into a subcommand's module.
- Nothing calls the command line from inside: no module imports ``csalic.cli.main`` but the
  ``python -m csalic`` entry point, so a stage is a library call, not a re-parsed argv.
- The folders are the architecture: the codec stands alone, the evaluation uses the codec, the
  datasets and the task networks, the study orchestrates all of them, the commands sit on top.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "csalic"


def _modules() -> dict[str, tuple[ast.Module, bool]]:
    """Dotted name -> (syntax tree, whether it is a package's ``__init__``)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        is_pkg = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_pkg else parts)
        out[name] = (ast.parse(path.read_text(encoding="utf-8"), str(path)), is_pkg)
    return out


def _imports(name: str, module: tuple[ast.Module, bool]) -> list[tuple[str, list[str], int]]:
    """(absolute module, imported names, line) for every import in the module, nested ones included."""
    tree, is_pkg = module
    package = name.split(".") if is_pkg else name.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, [a.name for a in node.names], node.lineno))
    return found


def test_relative_imports_resolve_as_python_does():
    mods = _modules()
    resolved = {m for m, _, _ in _imports("csalic.commands.evaluate", mods["csalic.commands.evaluate"])}
    assert "csalic.names" in resolved and "csalic.evaluation.evaluate" in resolved
    assert any(  # `from . import commands`
        m == "csalic" and n == ["commands"] for m, n, _ in _imports("csalic.cli", mods["csalic.cli"]))
    assert "csalic.cli" in {m for m, _, _ in _imports("csalic.__main__", mods["csalic.__main__"])}
    assert "csalic.errors" in {m for m, _, _ in _imports("csalic.evaluation.anchors", mods["csalic.evaluation.anchors"])}


def test_only_the_cli_imports_the_subcommands():
    offenders = []
    for name, mod in _modules().items():
        if name == "csalic.cli" or name.startswith("csalic.commands"):
            continue
        for module, names, line in _imports(name, mod):
            if module == "csalic.commands" or module.startswith("csalic.commands."):
                offenders.append(f"{name}:{line} imports {module}")
            if module == "csalic" and "commands" in names:
                offenders.append(f"{name}:{line} imports csalic.commands")
    assert not offenders, offenders


def test_nothing_calls_the_command_line_from_inside():
    offenders = []
    for name, mod in _modules().items():
        if name == "csalic.__main__":
            continue
        for module, names, line in _imports(name, mod):
            if module == "csalic.cli" and name != "csalic.cli":
                offenders.append(f"{name}:{line} imports {', '.join(names) or 'csalic.cli'}")
            if module == "csalic" and "cli" in names:
                offenders.append(f"{name}:{line} imports csalic.cli")
    assert not offenders, offenders


def test_no_function_grows_past_a_screen_and_a_half():
    """The long ones were split at their seams (train_job 145 lines, convert_openimages 138); keep it so."""
    limit = 110
    long = []
    for name, (tree, _) in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > limit:
                    long.append(f"{name}.{node.name}: {n} lines")
    assert not long, long


# what each part may import from csalic; "shared" is the package's own top-level modules
# (errors, io, imageio, names, provenance)
ALLOWED = {
    "shared": {"shared"},
    "codec": {"shared", "codec"},
    "metrics": {"shared", "metrics"},
    "data": {"shared", "data"},
    "tasks": {"shared", "metrics", "tasks", "data"},
    "evaluation": {"shared", "metrics", "codec", "data", "tasks", "evaluation"},
    "study": {"shared", "metrics", "codec", "data", "tasks", "evaluation", "study"},
    "commands": {"shared", "metrics", "codec", "data", "tasks", "evaluation", "study", "commands"},
}


def _part(module: str, names: list[str] = ()) -> str | None:
    parts = module.split(".")
    if parts[0] != "csalic":
        return None
    if len(parts) == 1:  # `from csalic import x` / `from .. import x`: the part of x
        subs = {_part(f"csalic.{n}") for n in names} - {None}
        return subs.pop() if len(subs) == 1 else "shared"
    return parts[1] if parts[1] in ALLOWED else "shared"


def test_each_part_imports_only_the_parts_below_it():
    offenders = []
    for name, mod in _modules().items():
        if name in ("csalic", "csalic.cli", "csalic.__main__"):  # the facade (build_model) and the entry points
            continue
        own = _part(name)
        for module, names, line in _imports(name, mod):
            other = _part(module, names)
            if other is not None and other not in ALLOWED[own]:
                offenders.append(f"{name}:{line} ({own}) imports {module} ({other})")
    assert not offenders, offenders


def test_the_parts_are_the_folders():
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} == set(ALLOWED) - {"shared"}
    assert _part("csalic.codec.model") == "codec" and _part("csalic.errors") == "shared"
    assert _part("csalic", ["layout"]) == "shared" and _part("csalic.study.layout") == "study"


def test_what_the_snakefile_imports_is_torch_free():
    """Snakemake imports these while it parses the graph, on every run and dry run: no torch there."""
    import re
    import subprocess
    import sys

    text = "\n".join(p.read_text() for p in [PACKAGE.parent / "Snakefile", *(PACKAGE.parent / "workflow").rglob("*.smk")])
    modules = sorted(set(re.findall(r"^from (csalic[\w.]*) import", text, re.M)))
    assert "csalic.study" in modules and "csalic.study.pipeline" in modules  # layout comes as `from csalic.study import`
    code = "import importlib, sys\nfrom csalic.study import layout\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules) + \
        "print(sorted(m for m in ('torch', 'ray', 'mlflow', 'compressai') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parent, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def _import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its body (``from pkg import mod`` names
    ``pkg.mod``); a package's own ``__init__`` is not counted as imported by its submodules' relative
    imports of their siblings."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, mod in mods.items():
        edges = set()
        for module, names, _ in _imports(name, mod):
            subs = [f"{module}.{n}" for n in names if f"{module}.{n}" in mods]
            if subs:
                edges.update(subs)
            elif module in mods:
                edges.add(module)
        graph[name] = edges - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_cycle():
    """No two modules import each other, directly or round a circle, not even inside a function:
    a circle means neither can be read, tested or moved without the other."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the check finds one
    assert _cycles(_import_graph()) == []
