"""Quality check of a width change: BD-rate and BD-quality of one study's full model against another's.

    .venv/bin/python benchmarks/quality_lean.py warm-start SIZE OUT_DIR [--from pretrained/demo]
    .venv/bin/python benchmarks/quality_lean.py compare OLD/points.json NEW/points.json [--dataset demo_val]
        [--method csalic-full]

``warm-start`` writes OUT_DIR/full.pt for a codec of SIZE: the demo's warm start
(``--from``) for every module the sizes share, and the modules the lean widths
change (CFTM, CGM, luma features and head) freshly initialised -- for either
size, so that both re-learn the same modules in the same training and start the
rest from the same weights.  Equal training from scratch would need hours on a
CPU before mAP@0.5 says anything (1500 steps left both at mAP 0).

Reads two ``results/<study>/metrics/points.json`` written by studies that differ only in
the codec's widths (config/lean_check.yaml: ``model.size`` demo against
demo_lean, both trained alike from scratch) and measures NEW against OLD on the
same points the tables use: BD-rate (%, negative = NEW needs fewer bits) and
BD-quality at equal rate for detection and segmentation mAP@0.5 (pp) and RGB
PSNR (dB), pchip on each curve's Pareto front, as Tables 1 and 2 compute them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from csalic.metrics.bd import MAP_SCALE, BDError, bd_quality_result, bd_rate_result  # noqa: E402

QUALITIES = (("map50_bbox", "detection mAP@0.5", "pp", MAP_SCALE), ("map50_segm", "segmentation mAP@0.5", "pp", MAP_SCALE),
             ("psnr_rgb", "PSNR (RGB)", "dB", 1.0))


def curve(points: dict, dataset: str, method: str, field: str) -> tuple[list[float], list[float]]:
    rows = sorted(points.get(dataset, {}).get(method, {}).values(), key=lambda p: p["bpp"])
    if len(rows) < 2:
        raise SystemExit(f"error: fewer than two {method} points on {dataset}")
    return [r["bpp"] for r in rows], [r[field] for r in rows]


RELEARN = ("fusion.", "cgm.", "luma_features.", "luma_head.")


def warm_start(size: str, out_dir: str, source: str) -> None:
    import torch

    from csalic.codec.checkpoint import read_record, save_codec
    from csalic.codec.model import build_model

    torch.manual_seed(0)
    model = build_model(size, "full")
    state = model.state_dict()
    loaded, fresh = 0, []
    for k, v in read_record(Path(source) / "full.pt")["state_dict"].items():
        if k in state and state[k].shape == v.shape and not k.startswith(RELEARN):
            state[k] = v.to(state[k].dtype)
            loaded += 1
    fresh = sorted({k.split(".")[0] for k in state if k.startswith(RELEARN)})
    model.load_state_dict(state)
    out = Path(out_dir) / "full.pt"
    save_codec(out, model, meta={"note": f"{source}/full.pt except {', '.join(fresh)} (fresh, seed 0)"})
    print(f"{out}: {loaded} tensors from {source}/full.pt, fresh: {', '.join(fresh)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("warm-start")
    w.add_argument("size")
    w.add_argument("out_dir")
    w.add_argument("--from", dest="source", default="pretrained/demo")
    c = sub.add_parser("compare")
    c.add_argument("old")
    c.add_argument("new")
    c.add_argument("--dataset", default="demo_val")
    c.add_argument("--method", default="csalic-full")
    a = ap.parse_args()
    if a.cmd == "warm-start":
        return warm_start(a.size, a.out_dir, a.source)
    pts = []
    for path in (a.old, a.new):
        try:
            pts.append(json.loads(Path(path).read_text())["points"])
        except (OSError, ValueError, KeyError) as exc:
            raise SystemExit(f"error: cannot read points from {path}: {exc}") from None
    lines = [f"{a.method} on {a.dataset}: NEW ({a.new}) against OLD ({a.old})", "",
             "| quality | OLD points (bpp, q) | NEW points (bpp, q) | BD-rate (%) | BD-quality |", "|---|---|---|---:|---:|"]
    for field, name, unit, scale in QUALITIES:
        (ro, qo), (rn, qn) = curve(pts[0], a.dataset, a.method, field), curve(pts[1], a.dataset, a.method, field)
        cells = []
        for fn in (bd_rate_result, bd_quality_result):
            try:
                res = fn(ro, qo, rn, qn, "pchip", monotonic="pareto", quality_scale=scale)
                cells.append(f"{res.value:+.2f}" + (f" {unit}" if fn is bd_quality_result else ""))
            except BDError as exc:
                cells.append(f"n/a ({exc})")
        show = lambda r, q: ", ".join(f"({x:.4f}, {y * scale:.2f})" for x, y in zip(r, q))  # noqa: E731
        lines.append(f"| {name} | {show(ro, qo)} | {show(rn, qn)} | {cells[0]} | {cells[1]} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
