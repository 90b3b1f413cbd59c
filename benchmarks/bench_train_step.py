"""Time of one training step (forward, Eq. 4 loss without D_f, backward, Adam) per variant, beside
compressai's Elic2022Chandelier at the same batch, measured in the same run.

    python benchmarks/bench_train_step.py --size demo --batch 4 --crop 128
    python benchmarks/bench_train_step.py --size paper --batch 8 --crop 256 --runs 2
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch


def step_time(model, batch: int, crop: int, runs: int, warmup: int) -> float:
    from csalic.losses import RateDistortionLoss

    opt = torch.optim.Adam(model.parameters(), 1e-4)
    crit = RateDistortionLoss(0.01)
    x = torch.rand(batch, 3, crop, crop)
    times = []
    for i in range(warmup + runs):
        t = time.perf_counter()
        loss = crit(model(x), x)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="demo", choices=["demo", "paper"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    from compressai.models import Elic2022Chandelier

    from csalic.model import VARIANTS, build_model

    torch.manual_seed(0)
    ref = step_time(Elic2022Chandelier(), a.batch, a.crop, a.runs, a.warmup)
    print(f"machine: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, "
          f"batch {a.batch} x {a.crop}x{a.crop}, median of {a.runs} after {a.warmup} warm-up")
    print(f"| model | s/step | steps/s | vs ELIC |\n|---|---:|---:|---:|\n| Elic2022Chandelier | {ref:.3f} | {1 / ref:.2f} | 1.00 |")
    for variant in VARIANTS:
        t = step_time(build_model(a.size, variant), a.batch, a.crop, a.runs, a.warmup)
        print(f"| CSA-LIC {a.size}/{variant} | {t:.3f} | {1 / t:.2f} | {t / ref:.2f} |")


if __name__ == "__main__":
    main()
