"""SCSM time and peak memory against image size: the 3x3-neighbourhood form should grow linearly in pixels.

    .venv/bin/python benchmarks/bench_scsm.py [--sizes 256 384 512 768 1024] [--iterations 5] [--runs 3]

Each size runs in a fresh process, so its peak resident memory (ru_maxrss) is its own;
the reference is a process that builds the same input and runs a 1x1 convolution
over it (the cheapest full pass over the same data), measured in the same run.
Reported per size: forward time (median), time per megapixel, and peak RSS above
the reference process's.  Linear growth shows as a flat time-per-megapixel column.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, statistics, sys, time
import torch
sys.path.insert(0, {root!r})
from csalic.codec.nn.scsm import SCSM
torch.set_num_threads({threads})
side, iterations, runs, ref = {side}, {iterations}, {runs}, {ref}
x = torch.rand(1, 2, side, side)
f = (lambda t: torch.nn.functional.conv2d(t, torch.ones(2, 2, 1, 1))) if ref else SCSM(iterations)
times = []
with torch.no_grad():
    for i in range(runs + 1):
        t = time.perf_counter(); f(x); dt = time.perf_counter() - t
        if i: times.append(dt)
print(json.dumps({{"s": statistics.median(times), "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def measure(side: int, iterations: int, runs: int, threads: int, ref: bool) -> dict:
    code = CHILD.format(root=str(Path(__file__).resolve().parents[1]), threads=threads, side=side,
                        iterations=iterations, runs=runs, ref=ref)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 384, 512, 768, 1024])
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, torch threads {a.threads}, chroma 2 x side², "
          f"{a.iterations} iterations, median of {a.runs} after 1 warm-up, one process per size")
    print("| side | Mpx | SCSM (s) | s per Mpx | SCSM peak RSS above reference (MB) | MB per Mpx |")
    print("|---:|---:|---:|---:|---:|---:|")
    for side in a.sizes:
        ref = measure(side, a.iterations, a.runs, a.threads, True)
        got = measure(side, a.iterations, a.runs, a.threads, False)
        mpx = side * side / 1e6
        extra = got["rss_mb"] - ref["rss_mb"]
        print(f"| {side} | {mpx:.3f} | {got['s']:.4f} | {got['s'] / mpx:.4f} | {extra:.1f} | {extra / mpx:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
