"""Where a study's files live: one function per artefact, shared by the CLI, Snakemake and DVC.

Everything of a study sits under ``results/<study>/``; the paths are plain
strings so the Snakefile can use them as rule outputs unchanged.
"""

from __future__ import annotations

from pathlib import Path


def lambda_tag(lmbda: float) -> str:
    """0.0025 -> '0.0025': the short decimal form used in paths and run names."""
    return f"{float(lmbda):g}"


def root(params: dict) -> Path:
    return Path("results") / params["study"]


def demo_data(params: dict) -> Path:
    return root(params) / "data" / "demo"


def train_manifest(params: dict) -> Path:
    """Manifest of training images (paths relative to :func:`train_image_root`)."""
    if params["mode"] == "demo":
        return demo_data(params) / "manifest_train.csv"
    return root(params) / "data" / "coco_train_manifest.csv"


def train_image_root(params: dict) -> Path:
    if params["mode"] == "demo":
        return demo_data(params)
    return Path(params["data"]["coco_root"]) / "train2017"


def task_net(params: dict) -> Path:
    """The task network's weights: the demo's own, or the configured file in paper mode."""
    if params["task"].get("weights"):
        return Path(params["task"]["weights"])
    return root(params) / "task_net" / "demo_task_net.pt"


def job_dir(params: dict, variant: str, lmbda: float) -> Path:
    return root(params) / "train" / variant / f"lambda_{lambda_tag(lmbda)}"


def ray_registry(params: dict) -> Path:
    return Path("results") / ".ray"
