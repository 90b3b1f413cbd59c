"""``csalic complexity``: parameters, MACs/FLOPs and (optionally) coding latency, as in Table 3.

Torch is imported inside the handler so that ``csalic --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json


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


def _complexity(args: argparse.Namespace) -> int:
    from ..evaluation.complexity import format_table, measure

    result = measure(args.size, args.variant, args.height, args.width, latency=args.latency, runs=args.runs,
                     warmup=args.warmup, device=args.device, threads=args.threads, out=args.out)
    print(json.dumps(result, sort_keys=True) if args.json else format_table(result))
    return 0
