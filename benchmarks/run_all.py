"""Every benchmark in one command; prints their tables and writes them to benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/run_all.py            # the paper-size settings (about 15 min on 2 CPU cores)
    .venv/bin/python benchmarks/run_all.py --quick    # smaller sizes, a few minutes
    .venv/bin/python benchmarks/run_all.py --device cuda   # on a GPU machine

Each benchmark measures its subject beside a reference in the same run and prints
the ratio.  The evaluation and pipeline benchmarks read a finished study
(``./run.sh demo`` first); without one they are skipped, and RESULTS.md says so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def plan(quick: bool, device: str) -> list[tuple[str, list[str]]]:
    py = [sys.executable]
    codec = ["--quick"] if quick else ["--runs", "3", "--warmup", "1"]
    train = ["--size", "demo", "--batch", "4", "--crop", "128"] if quick else \
        ["--size", "paper", "--batch", "8", "--crop", "256", "--runs", "1"]
    return [
        ("Codec: encode/decode beside ELIC", py + [str(HERE / "bench_codec.py"), "--threads", "1",
                                                  "--device", device, *codec]),
        ("Where the paper size's time goes, by module (torch.profiler)",
         py + [str(HERE / "profile_codec.py"), "--threads", "1", "--device", device,
               *(["--size", "demo", "--height", "256", "--width", "384"] if quick else [])]),
        ("Training step per variant beside ELIC", py + [str(HERE / "bench_train_step.py"), "--threads", "2",
                                                        "--device", device, *train]),
        ("SCSM: time and memory against image size", py + [str(HERE / "bench_scsm.py"), "--runs", "2" if quick else "3",
                                                           *(["--sizes", "256", "512", "768"] if quick else [])]),
        ("Data: COCO filter and crop loader", py + [str(HERE / "bench_data.py"),
                                                    *(["--entries", "20000", "--images", "24"] if quick else [])]),
        ("Evaluation: decode + task network", py + [str(HERE / "bench_eval.py"), "--device", device]),
        ("Pipeline: stages of the demo study, no-op reruns", py + [str(HERE / "bench_pipeline.py"), "--no-op"]),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    a = ap.parse_args()
    sections = []
    for title, cmd in plan(a.quick, a.device):
        t = time.perf_counter()
        out = subprocess.run(cmd, cwd=HERE.parent, capture_output=True, text=True)
        took = time.perf_counter() - t
        shown = " ".join(["python", *(Path(c).relative_to(HERE.parent).as_posix() if c.startswith(str(HERE)) else c
                                      for c in cmd[1:])])
        body = out.stdout.strip() if out.returncode == 0 else \
            f"not measured: {(out.stderr.strip().splitlines() or ['exit ' + str(out.returncode)])[-1]}"
        text = f"## {title}\n\n`{shown}` ({took:.0f} s)\n\n{body}\n"
        print(text, flush=True)
        sections.append(text)
    head = (f"# Benchmark results\n\nWritten by `python benchmarks/run_all.py{' --quick' if a.quick else ''}"
            f"{' --device ' + a.device if a.device != 'cpu' else ''}` on {dt.date.today()}, "
            f"{platform.processor() or platform.machine()} ({platform.node()}), Python {platform.python_version()}.\n"
            "Every figure is measured beside its reference in the same run; ratios are against that reference.\n\n")
    Path(a.out).write_text(head + "\n".join(sections))


if __name__ == "__main__":
    main()
