"""Time of one training step (forward, Eq. 4 loss, backward, Adam) per variant, beside compressai's
Elic2022Chandelier at the same batch, settings and loss, measured in the same run.

    python benchmarks/bench_train_step.py --size demo --batch 4 --crop 128
    python benchmarks/bench_train_step.py --size paper --batch 8 --crop 256 --runs 2
    python benchmarks/bench_train_step.py --size paper --device cuda --settings fp32,bf16,bf16+cl,bf16+cl+compile
    python benchmarks/bench_train_step.py --size paper --device cuda --settings bf16+cl --task-net tv_mask_rcnn_r50_fpn

``--task-net`` adds D_f through that task network with random weights (its cost does not depend on
them), at ``--feature-weight`` (default 1, the paper's); without it the loss is R + λ·D_i.

Settings (CUDA; on the CPU only fp32 is meaningful): ``bf16`` autocast as csalic.study.train uses it,
``cl`` channels_last model and input, ``compile`` torch.compile of the model.  cudnn benchmark is on
for CUDA.  Each setting is measured for ELIC and every variant, so the ratios compare like with like.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

SETTINGS = ("fp32", "bf16", "cl", "compile")


def parse_setting(text: str) -> set[str]:
    parts = set(text.split("+"))
    if not parts <= set(SETTINGS):
        raise argparse.ArgumentTypeError(f"unknown setting {text!r}: combine {', '.join(SETTINGS)} with '+'")
    return parts


def step_time(model, batch: int, crop: int, runs: int, warmup: int, device: torch.device, setting: set[str],
              task=None, feature_weight: float = 1.0) -> float:
    from csalic.codec.losses import RateDistortionLoss

    model = model.to(device)
    if "cl" in setting:
        model = model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if "compile" in setting else model
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    crit = RateDistortionLoss(0.01, task, feature_weight)
    x = torch.rand(batch, 3, crop, crop, device=device)
    if "cl" in setting:
        x = x.contiguous(memory_format=torch.channels_last)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = []
    for i in range(warmup + runs):
        sync()
        t = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled="bf16" in setting):
            out = step_model(x)
        loss = crit(out, x)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync()
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
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--task-net", default=None, help="add D_f through this task network (random weights)")
    ap.add_argument("--feature-weight", type=float, default=1.0, help="D_f weight with --task-net (default 1)")
    ap.add_argument("--variants", default=None, help="comma list of variants (default: all four)")
    ap.add_argument("--settings", default=None,
                    help="comma list, e.g. fp32,bf16+cl (default: fp32 on CPU; fp32,bf16,bf16+cl,bf16+cl+compile on CUDA)")
    a = ap.parse_args()
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda requested but torch sees no CUDA device")
    default = "fp32,bf16,bf16+cl,bf16+cl+compile" if device.type == "cuda" else "fp32"
    try:
        settings = [parse_setting(s) for s in (a.settings or default).split(",")]
    except argparse.ArgumentTypeError as exc:
        ap.error(str(exc))
    if a.threads:
        torch.set_num_threads(a.threads)
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # as csalic.study.train does
    else:
        torch.backends.cudnn.benchmark = True
    from compressai.models import Elic2022Chandelier

    from csalic.evaluation.complexity import device_name
    from csalic.codec.model import VARIANTS, build_model

    task = None
    if a.task_net:
        from csalic.tasks import load_task_network

        task = load_task_network(a.task_net, allow_random=True, device=device)
    variants = a.variants.split(",") if a.variants else list(VARIANTS)
    print(f"machine: {device_name(device) if device.type == 'cuda' else platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {a.batch} x {a.crop}x{a.crop}, "
          f"loss R + λ(D_i{f' + {a.feature_weight:g}·D_f via {a.task_net}' if task else ''}), "
          f"median of {a.runs} after {a.warmup} warm-up")
    print("| setting | model | s/step | steps/s | vs ELIC |\n|---|---|---:|---:|---:|")
    for setting in settings:
        name = "+".join(s for s in SETTINGS if s in setting)
        torch.manual_seed(0)
        ref = step_time(Elic2022Chandelier(), a.batch, a.crop, a.runs, a.warmup, device, setting, task,
                        a.feature_weight)
        print(f"| {name} | Elic2022Chandelier | {ref:.3f} | {1 / ref:.2f} | 1.00 |", flush=True)
        for variant in variants:
            torch.manual_seed(0)
            t = step_time(build_model(a.size, variant), a.batch, a.crop, a.runs, a.warmup, device, setting, task,
                          a.feature_weight)
            print(f"| {name} | CSA-LIC {a.size}/{variant} | {t:.3f} | {1 / t:.2f} | {t / ref:.2f} |", flush=True)


if __name__ == "__main__":
    main()
