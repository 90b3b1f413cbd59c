"""A two-variant micro study through Snakemake with its training as Ray GPU tasks (part of gpu_check.sh).

    python benchmarks/gpu_micro_study.py OUT_DIR

Copies the workflow into a temporary folder, runs ``snakemake --cores 4`` on a study of 2 variants x 2 λ
(8 generated images, a few steps, D_f through the demo task network, evaluation on the GPU), then checks
that every training job ran on CUDA inside a Ray worker and writes what it saw to OUT_DIR/micro_study.json.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/gpu_out")
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="csalic-gpu-micro-"))
    for name in ("Snakefile", "workflow", "profiles", "pretrained"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, work / name)
        elif src.exists():
            shutil.copy2(src, work / name)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(study="gpu_micro", variants=["full", "baseline"], lambdas=[0.001, 0.01])
    params["data"]["demo"].update(train=8, val=2, openimages_val=2, width=288, height=288)
    params["train"].update(batch_size=2, crop=64, max_steps=6, init="scratch", pretrained=None, finetune_steps=None,
                           warmup_lambda=None, feature_weight=0.01, checkpoint_every=2, log_every=1)
    params["task"].update(demo_steps=10)
    params["eval"].update(device="cuda")
    params["anchors"].update(points=["none", "jpeg-q50"])
    params["complexity"].update(device="cuda", latency_runs=1)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    t0 = time.time()
    proc = subprocess.run(["snakemake", "--cores", "4"], cwd=work, capture_output=True, text=True, timeout=600)
    wall = time.time() - t0
    (out / "micro_study.log").write_text(proc.stdout[-20000:] + proc.stderr[-20000:])
    jobs = []
    for s in sorted((work / "results" / "gpu_micro" / "train").glob("*/lambda_*/summary.json")):
        d = json.loads(s.read_text())
        jobs.append({"variant": d["variant"], "lmbda": d["lmbda"], "device": d["device"], "wall_s": d["wall_s"],
                     "d_f": d["final"]["d_f"]})
    evals = [json.loads(p.read_text()) for p in (work / "results" / "gpu_micro" / "eval").rglob("summary.json")]
    report = {"exit": proc.returncode, "wall_s": round(wall, 1), "jobs": jobs,
              "evaluations": [{"method": e["method"], "setting": e["setting"], "bpp": e["bpp"],
                               "map50_bbox": e["map50_bbox"]} for e in evals],
              "tables": sorted(p.name for p in (work / "results" / "gpu_micro" / "tables").glob("*"))}
    (out / "micro_study.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    ok = proc.returncode == 0 and len(jobs) == 4 and all(j["device"] == "cuda" for j in jobs)
    print("micro study:", "ok" if ok else "FAILED", f"({wall:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
