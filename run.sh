#!/usr/bin/env bash
# One entry point for a fresh machine: creates or reuses .venv, installs the
# project into it when pyproject.toml changed, then runs the demo or the tests.
#   ./run.sh demo    the demo study, end to end, on generated data (CPU, minutes)
#   ./run.sh test    the test suite
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-python3}"
VENV=.venv
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.csalic-installed"
WANT="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    echo "run.sh: installing csalic and its dependencies into $VENV (first run takes a few minutes)" >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    # virtualenv is pinned only to spare pip's resolver a long backtrack through ray's range.
    # pip byte-compiles on one core; compileall afterwards uses them all (162 s against 242 s on 2 cores).
    # compileall exits 1 when any file will not compile (torch ships one in Python 3.12 syntax): not an error here
    "$VENV/bin/python" -m pip install --quiet --no-compile -e ".[dev]" "virtualenv>=20.26,<21"
    "$VENV/bin/python" -m compileall -j 0 -q "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" >/dev/null || true
    echo "$WANT" > "$STAMP"
fi
export PATH="$PWD/$VENV/bin:$PATH"
cmd="${1:-}"
shift || true
case "$cmd" in
    demo)
        # a killed run leaves Snakemake's lock behind; with no snakemake running here, it is stale
        if [ -d .snakemake/locks ] && ! pgrep -f "$VENV/bin/snakemake" >/dev/null; then
            "$VENV/bin/snakemake" --unlock >/dev/null 2>&1 || true
        fi
        exec "$VENV/bin/snakemake" --cores all "$@" ;;
    test) exec "$VENV/bin/python" -m pytest "$@" ;;
    *) echo "usage: ./run.sh demo|test [args...]" >&2; exit 2 ;;
esac
