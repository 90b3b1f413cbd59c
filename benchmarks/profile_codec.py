"""Where the paper-size codec spends its time: encode, decode and a training step, by module.

    .venv/bin/python benchmarks/profile_codec.py [--size paper] [--variant full] [--threads 1]
        [--device cpu|cuda] [--height 512 --width 768] [--batch 2 --crop 256] [--depth 2]

torch.profiler records every op; forward hooks wrap each module down to ``--depth``
in a ``record_function`` span named after it, so the table shows self-contained
time per module (children included) beside the whole call.  Encode and decode go
through the ``.csa`` path (entropy coding included); the training step is
forward + backward of ``R + λ D`` on random crops (no task network: that cost is
the detector's, the same for every codec); its backward is not split by module,
so the forward rows there add up to less than the step.  Times are one profiled
run after one warm-up, so read them as shares, not as the benchmark figures of
bench_codec.py.  Modules under 1 % of the call are left out.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from csalic.codec.coding import decode_bytes, encode_tensor  # noqa: E402
from csalic.evaluation.complexity import sample_image  # noqa: E402
from csalic.codec.losses import RateDistortionLoss  # noqa: E402
from csalic.codec.model import build_model  # noqa: E402


def label_modules(model: torch.nn.Module, depth: int) -> list:
    """Wrap every module at most ``depth`` dots deep in a profiler span; returns the hook handles.

    Members of a ModuleList (the per-slice transforms) share their list's span name, so the
    table shows one row per list with every slice's time in it.
    """
    handles = []
    lists = {n for n, m in model.named_modules() if isinstance(m, torch.nn.ModuleList)}
    for name, module in model.named_modules():
        parent = name.rsplit(".", 1)[0] if "." in name else ""
        if parent in lists:  # the entropy model's per-slice transforms: one row per list, all slices summed
            label = f"{parent}[*]"
        elif not name or name.count(".") >= depth or name in lists:
            continue
        else:
            label = name
        spans: list[contextlib.AbstractContextManager] = []

        def pre(_m, _inp, name=label, spans=spans):
            span = record_function(f"## {name}")
            span.__enter__()
            spans.append(span)

        def post(_m, _inp, _out, spans=spans):
            spans.pop().__exit__(None, None, None)

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))
    return handles


def table(prof, total_label: str, device: str) -> str:
    rows = [e for e in prof.key_averages() if e.key.startswith("## ") or e.key == total_label]
    attr = "device_time_total" if device == "cuda" else "cpu_time_total"
    total = next((getattr(e, attr) for e in rows if e.key == total_label), None) or 1.0
    lines = [f"| module | {device} ms | share |", "|---|---:|---:|"]
    for e in sorted(rows, key=lambda e: -getattr(e, attr)):
        t = getattr(e, attr)
        if t >= 0.01 * total:  # modules under 1 % left out
            lines.append(f"| {e.key.removeprefix('## ')} | {t / 1e3:.1f} | {100 * t / total:.1f} % |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="paper")
    ap.add_argument("--variant", default="full")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--height", type=int, default=512)
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--parts", default="encode,decode,step")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    model = build_model(a.size, a.variant).to(dev)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    parts = a.parts.split(",")
    print(f"{a.size}/{a.variant}, {a.device}, torch threads {a.threads}\n")

    if "encode" in parts or "decode" in parts:
        model.eval().update(force=True)
        x = sample_image(a.height, a.width).to(dev)
        fp = model.fingerprint()
        label_modules(model, a.depth)
        enc = encode_tensor(model, x, fp)  # warm-up
        decode_bytes(model, enc.data, fp, max_pixels=a.height * a.width)
        for part in ("encode", "decode"):
            if part not in parts:
                continue
            with profile(activities=activities) as prof:
                with record_function(part):
                    if part == "encode":
                        encode_tensor(model, x, fp)
                    else:
                        decode_bytes(model, enc.data, fp, max_pixels=a.height * a.width)
            print(f"### {part}, {a.width}x{a.height}\n\n{table(prof, part, a.device)}\n")

    if "step" in parts:
        model.train()
        loss_fn = RateDistortionLoss(lmbda=1e-2)
        opt = torch.optim.Adam(model.parameters(), lr=1e-5)
        crops = torch.rand(a.batch, 3, a.crop, a.crop, generator=torch.Generator().manual_seed(1)).to(dev)

        def step():
            opt.zero_grad(set_to_none=True)
            out = model(crops)
            loss = loss_fn(out, crops)["loss"]
            loss.backward()
            opt.step()

        step()
        with profile(activities=activities) as prof:
            with record_function("step"):
                step()
        print(f"### training step, batch {a.batch} x {a.crop}²\n\n{table(prof, 'step', a.device)}\n")


if __name__ == "__main__":
    main()
