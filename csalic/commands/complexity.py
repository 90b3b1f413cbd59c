"""``csalic complexity``: parameters, MACs/FLOPs and (optionally) coding latency, as in Table 3.

Torch is imported inside the handler so that ``csalic --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json

from ..errors import CsalicError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "complexity", help="parameters, MACs/FLOPs and coding latency of a codec",
        description="Count parameters and MACs (FLOPs = 2 MACs, torch FlopCounterMode convention) of an "
                    "untrained CSA-LIC codec at one resolution; with --latency also time encoding and "
                    "decoding of one image, entropy coding included. The paper's 258.36 G are MACs.")
    p.add_argument("--size", default="paper", help="model size: paper or demo (default: %(default)s)")
    p.add_argument("--variant", default="full", help="full, no_casc, concat or baseline (default: %(default)s)")
    p.add_argument("--height", type=int, default=512, help="image height in pixels (default: %(default)s)")
    p.add_argument("--width", type=int, default=768, help="image width in pixels (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--latency", action="store_true", help="also time encode/decode (entropy coding included)")
    p.add_argument("--runs", type=int, default=5, help="timed runs; the median is reported (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs first (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu or cuda for --latency (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice); on a shared machine 1 is steadier")
    p.add_argument("--out", help="also write the JSON result to this file (atomically)")
    p.set_defaults(func=_complexity)


def _check(args: argparse.Namespace) -> None:
    from ..model import SIZES, VARIANTS

    if args.size not in SIZES:
        raise CsalicError(f"unknown size {args.size!r}; choose one of {', '.join(SIZES)}")
    if args.variant not in VARIANTS:
        raise CsalicError(f"unknown variant {args.variant!r}; choose one of {', '.join(VARIANTS)}")
    if args.height <= 0 or args.width <= 0:
        raise CsalicError(f"--height and --width must be positive, got {args.height}x{args.width}")
    if args.threads is not None and args.threads < 1:
        raise CsalicError(f"--threads must be >= 1, got {args.threads}")
    if args.latency:
        if args.runs < 1 or args.warmup < 0:
            raise CsalicError(f"need --runs >= 1 and --warmup >= 0, got {args.runs} and {args.warmup}")
        if args.device != "cpu" and not args.device.startswith("cuda"):
            raise CsalicError(f"unknown device {args.device!r}; use cpu or cuda")
        import torch

        if args.device.startswith("cuda") and not torch.cuda.is_available():
            raise CsalicError("--device cuda requested but torch sees no CUDA device; use --device cpu")


def _complexity(args: argparse.Namespace) -> int:
    _check(args)
    import torch

    from ..complexity import count_macs, count_params, measure_latency
    from ..model import build_model

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(args.size, args.variant).eval()
    params = count_params(model)
    macs = count_macs(model, args.height, args.width)
    result = {
        "size": args.size,
        "variant": args.variant,
        "height": args.height,
        "width": args.width,
        "params": params["total"],
        "params_m": params["total"] / 1e6,
        "macs": macs["macs"],
        "macs_g": macs["macs"] / 1e9,
        "flops": macs["flops"],
        "flops_g": macs["flops"] / 1e9,
        "params_by_module": params["by_module"],
        "macs_by_module": macs["by_module"],
        "macs_analytic": macs["analytic"],
        "threads": torch.get_num_threads(),
    }
    if args.latency:
        lat = measure_latency(model, args.height, args.width, args.device, runs=args.runs, warmup=args.warmup)
        result.update({k: lat[k] for k in ("encode_s", "decode_s", "encode_runs_s", "decode_runs_s", "runs",
                                           "warmup", "device", "device_name", "threads", "bytes", "bpp")})
    if getattr(args, "out", None):
        from ..io import atomic_write_json

        atomic_write_json(args.out, result)
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(_table(result))
    return 0


def _table(r: dict) -> str:
    total_macs = r["macs"] or 1
    lines = [f"CSA-LIC {r['size']}/{r['variant']} at {r['width']}x{r['height']} (untrained weights)",
             f"  {'module':<16}{'params (M)':>12}{'MACs (G)':>11}{'share':>8}"]
    for name, n in r["params_by_module"].items():
        m = r["macs_by_module"].get(name, 0)
        lines.append(f"  {name:<16}{n / 1e6:>12.3f}{m / 1e9:>11.2f}{m / total_macs:>8.1%}")
    lines += [
        f"  {'total':<16}{r['params_m']:>12.3f}{r['macs_g']:>11.2f}",
        f"  FLOPs = 2 x MACs: {r['flops_g']:.2f} G (the paper's 258.36 G are MACs)",
    ]
    if "encode_s" in r:
        threads = f", {r['threads']} thread{'s' if r['threads'] != 1 else ''}" if r.get("threads") else ""
        lines += [
            f"  encode {r['encode_s']:.3f} s, decode {r['decode_s']:.3f} s "
            f"(median of {r['runs']} after {r['warmup']} warm-up, entropy coding included; "
            f"{r['device_name']}{threads}; {r['bpp']:.3f} bpp)",
        ]
    return "\n".join(lines)
