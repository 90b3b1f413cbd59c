"""Small study configurations for tests: real params files, real demo data, tiny settings."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def base_params() -> dict:
    with open(REPO / "params.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def micro_params(study: str = "micro", **train) -> dict:
    """A study small enough for a test: 8 demo images, 64 px crops, a handful of steps, no D_f."""
    p = copy.deepcopy(base_params())
    p["study"] = study
    p["data"]["demo"].update(train=8, val=2, width=288, height=288)
    p["lambdas"] = [0.001, 0.01]
    p["variants"] = ["full", "baseline"]
    p["train"].update(batch_size=2, crop=64, max_steps=6, checkpoint_every=2, log_every=1, workers=0,
                      feature_weight=0.0, init="scratch", finetune_steps=None)
    p["train"].update(train)
    return p


def write_params(path: Path, params: dict) -> Path:
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path
