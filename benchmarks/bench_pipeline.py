"""Where a study's wall time goes (from Snakemake's ``benchmark:`` files), and the cost of a no-op rerun.

    .venv/bin/python benchmarks/bench_pipeline.py [--study demo] [--no-op]

Run it after ``./run.sh demo`` (or any ``snakemake`` run): it sums each rule's
``results/<study>/benchmarks/**/*.tsv`` rows (wall seconds, CPU seconds, peak RSS)
into a table by stage.  Stages run concurrently, so the column sums exceed the
study's wall time; the ratio CPU/wall shows how well a stage used its cores.
``--no-op`` also times ``snakemake --cores all`` and, where ``dvc.lock`` says the DVC
pipeline is complete, ``dvc repro``, each when there is nothing to do, against the
reference of starting Python and importing csalic (the floor of any CLI call).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def stage_table(study: str) -> list[tuple[str, int, float, float, float]]:
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    base = ROOT / "results" / study / "benchmarks"
    for tsv in sorted(base.rglob("*.tsv")):
        stage = tsv.parent.name if tsv.parent != base else tsv.stem
        with open(tsv, newline="") as fh:
            rows[stage].extend(csv.DictReader(fh, delimiter="\t"))
    out = []
    for stage, rs in rows.items():
        wall = sum(float(r["s"]) for r in rs)
        cpu = sum(float(r.get("cpu_time") or 0) for r in rs)
        rss = max(float(r.get("max_rss") or 0) for r in rs)
        out.append((stage, len(rs), wall, cpu, rss))
    return sorted(out, key=lambda r: -r[2])


def timed(cmd: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    # the rules call `csalic`: the environment's bin folder must be on PATH, as after `source .venv/bin/activate`
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    return time.perf_counter() - t, out.stdout + out.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", default="demo")
    ap.add_argument("--no-op", action="store_true", help="also time no-op snakemake and dvc repro runs")
    a = ap.parse_args()
    table = stage_table(a.study)
    if not table:
        sys.exit(f"no benchmark files under results/{a.study}/benchmarks: run the study first (./run.sh demo)")
    print(f"study {a.study}: Snakemake benchmark files, by stage")
    print("| stage | jobs | wall s (sum) | CPU s (sum) | CPU/wall | peak RSS (MB) |\n|---|---:|---:|---:|---:|---:|")
    for stage, n, wall, cpu, rss in table:
        print(f"| {stage} | {n} | {wall:.1f} | {cpu:.1f} | {cpu / wall if wall else 0:.2f} | {rss:.0f} |")
    print(f"| all | {sum(r[1] for r in table)} | {sum(r[2] for r in table):.1f} | {sum(r[3] for r in table):.1f} | | |")
    if not a.no_op:
        return
    ref, _ = timed([sys.executable, "-c", "import csalic.cli"])
    print("\nno-op reruns (nothing to do), reference: python -c 'import csalic.cli'")
    print(f"| command | s | vs reference |\n|---|---:|---:|\n| python -c 'import csalic.cli' | {ref:.2f} | 1.00 |")
    # a dry run first: a benchmark must never start (or break) the study's real work
    _, plan = timed([str(BIN / "snakemake"), "--cores", "all", "-n"])
    if "Nothing to be done" in plan:
        s, _ = timed([str(BIN / "snakemake"), "--cores", "all"])
        print(f"| snakemake --cores all | {s:.2f} | {s / ref:.2f} |")
    else:
        print("| snakemake --cores all | skipped: the study is not complete (run snakemake first) | |")
    if (ROOT / "dvc.lock").is_file():
        _, status = timed([str(BIN / "dvc"), "status"])
        if "up to date" in status:
            s, _ = timed([str(BIN / "dvc"), "repro"])
            print(f"| dvc repro | {s:.2f} | {s / ref:.2f} |")
        else:
            print("| dvc repro | skipped: dvc status reports changes (run dvc repro first) | |")
    else:
        print("| dvc repro | skipped: no dvc.lock (run dvc repro once first) | |")


if __name__ == "__main__":
    main()
