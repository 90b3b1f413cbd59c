"""Coding latency of CSA-LIC against ELIC, measured in one run on one machine (Table 3's time columns).

    .venv/bin/python benchmarks/bench_codec.py [--height 512 --width 768] [--runs 3 --warmup 1]
        [--models demo,paper,elic] [--threads N] [--device cpu|cuda] [--quick] [--out bench_codec.md]

Every codec codes the same image with entropy coding included: CSA-LIC through
``csalic.codec.coding.encode_tensor``/``decode_bytes`` (the ``.csa`` path of the CLI,
fingerprint precomputed), ELIC (compressai's ``Elic2022Chandelier``, N=192,
M=320) through ``compress``/``decompress`` on the input padded to a multiple of
64.  Weights are untrained -- timing does not depend on them beyond the symbol
statistics.  The codecs are timed round-robin, one encode+decode each per round,
so load from other processes on a shared machine hits them alike and the
CSA-LIC/ELIC ratios stay meaningful even when absolute times drift.  Reported:
median of ``--runs`` rounds after ``--warmup`` untimed ones.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from csalic.codec.coding import decode_bytes, encode_tensor  # noqa: E402
from csalic.evaluation.complexity import device_name, entropy_ready, sample_image  # noqa: E402
from csalic.io import atomic_write_text  # noqa: E402
from csalic.codec.model import build_model  # noqa: E402

PAPER = "paper (RTX 4090, COCO): encode 0.12 s, decode 0.15 s"


def csalic_coder(size: str, x: torch.Tensor, device: torch.device):
    torch.manual_seed(0)
    model = build_model(size, "full").to(device).eval()
    if not entropy_ready(model):
        model.update(force=True)
    fp = model.fingerprint()
    h, w = x.shape[-2:]

    def encode():
        return encode_tensor(model, x, fp)

    def decode(enc):
        return decode_bytes(model, enc.data, fp, max_pixels=h * w)

    return model, encode, decode, lambda enc: len(enc.data)


def elic_coder(x: torch.Tensor, device: torch.device):
    from compressai.models import Elic2022Chandelier

    torch.manual_seed(0)
    model = Elic2022Chandelier(N=192, M=320).to(device).eval()
    model.update(force=True)
    h, w = x.shape[-2:]
    xp = F.pad(x, (0, (-w) % 64, 0, (-h) % 64), mode="replicate")

    def encode():
        return model.compress(xp)

    def decode(out):
        return model.decompress(out["strings"], out["shape"])["x_hat"][..., :h, :w]

    def nbytes(out):
        def walk(s):
            return len(s) if isinstance(s, (bytes, bytearray)) else sum(walk(t) for t in s)
        return walk(out["strings"])

    return model, encode, decode, nbytes


def run(names: list[str], height: int, width: int, runs: int, warmup: int, device: torch.device) -> dict:
    x = sample_image(height, width).to(device)
    coders = {}
    for name in names:
        coders[name] = elic_coder(x, device) if name == "elic" else csalic_coder(name, x, device)
    times = {name: {"enc": [], "dec": [], "bytes": 0} for name in names}
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    with torch.no_grad():
        for i in range(warmup + runs):
            for name, (_, encode, decode, nbytes) in coders.items():
                sync()
                t0 = time.perf_counter()
                enc = encode()
                sync()
                t1 = time.perf_counter()
                decode(enc)
                sync()
                t2 = time.perf_counter()
                if i >= warmup:
                    times[name]["enc"].append(t1 - t0)
                    times[name]["dec"].append(t2 - t1)
                times[name]["bytes"] = nbytes(enc)
            print(f"  round {i + 1}/{warmup + runs}{' (warm-up)' if i < warmup else ''}", file=sys.stderr)
    rows = {}
    for name, t in times.items():
        rows[name] = {
            "params_m": sum(p.numel() for p in coders[name][0].parameters()) / 1e6,
            "encode_s": statistics.median(t["enc"]),
            "decode_s": statistics.median(t["dec"]),
            "encode_runs_s": t["enc"],
            "decode_runs_s": t["dec"],
            "bytes": t["bytes"],
        }
    return rows


def table(rows: dict, header: str) -> str:
    ref = rows.get("elic")
    label = {"demo": "CSA-LIC demo", "paper": "CSA-LIC paper", "elic": "ELIC (Elic2022Chandelier)"}
    lines = [header, "",
             "| codec | params (M) | encode (s) | decode (s) | encode / ELIC | decode / ELIC |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        er = f"{r['encode_s'] / ref['encode_s']:.2f}" if ref else "-"
        dr = f"{r['decode_s'] / ref['decode_s']:.2f}" if ref else "-"
        lines.append(f"| {label.get(name, name)} | {r['params_m']:.2f} | {r['encode_s']:.3f} | "
                     f"{r['decode_s']:.3f} | {er} | {dr} |")
    lines += ["", f"For reference, {PAPER} -- a different machine, not comparable in absolute terms."]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--height", type=int, default=None, help="default 512 (256 with --quick)")
    ap.add_argument("--width", type=int, default=None, help="default 768 (256 with --quick)")
    ap.add_argument("--runs", type=int, default=None, help="timed rounds (default 3, 2 with --quick)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    ap.add_argument("--models", default="demo,paper,elic", help="comma list of demo, paper, elic")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--quick", action="store_true", help="256x256 and 2 rounds: a smoke run")
    ap.add_argument("--out", default=None, help="write the markdown table here too")
    args = ap.parse_args()

    height = args.height or (256 if args.quick else 512)
    width = args.width or (256 if args.quick else 768)
    runs = args.runs or (2 if args.quick else 3)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    bad = [n for n in names if n not in ("demo", "paper", "elic")]
    if bad or not names or height <= 0 or width <= 0 or runs < 1 or args.warmup < 0:
        ap.error(f"bad arguments (models {bad or names}, {width}x{height}, runs {runs}, warmup {args.warmup})")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda requested but torch sees no CUDA device")
    if args.threads:
        torch.set_num_threads(args.threads)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = run(names, height, width, runs, args.warmup, device)
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    threads = f", torch threads={torch.get_num_threads()}" if device.type == "cpu" else ""
    header = (f"Coding latency at {width}x{height}, entropy coding included, median of {runs} "
              f"after {args.warmup} warm-up (round-robin), untrained weights.\n\n"
              f"Machine: {device_name(device)}{threads} ({os.cpu_count()} cores visible, load average "
              f"{load:.2f} -> {load_after:.2f}); torch {torch.__version__}; "
              f"{datetime.datetime.now().isoformat(timespec='seconds')}.\n\n"
              f"Command: `{' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}`")
    text = table(rows, header)
    print(text)
    if args.out:
        atomic_write_text(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
