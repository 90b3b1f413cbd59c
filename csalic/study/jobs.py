"""What one training job is: its settings, their hashes, and whether it already finished.

Kept apart from :mod:`csalic.study.train` and free of torch, so that the sweep's driver
(one per Snakemake training rule) plans jobs and skips finished ones without
importing the training stack, which costs seconds per rule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import layout
from ..errors import CsalicError
from ..names import VARIANT_NAMES


@dataclass
class JobSpec:
    """Everything one job depends on; its hash decides whether a finished job is still valid."""

    variant: str
    lmbda: float
    out_dir: str
    size: str = "demo"
    seed: int = 0
    manifest: str = ""
    image_root: str = ""
    task_name: str | None = None
    task_weights: str | None = None
    device: str = "cpu"
    train: dict[str, Any] = field(default_factory=dict)
    study: str = "demo"
    params_hash: str = ""
    init_from: str | None = None        # final.pt of the job this one is fine-tuned from (train.init: warmup),
                                        # or the warm-start checkpoint (train.init: pretrained)
    init_job_hash: str | None = None    # that job's hash, or "sha256:<hex>" of the warm-start checkpoint:
                                        # a changed parent invalidates this job
    stage: str = "train"                # "warmup": the λ-independent start of a variant's λ (not a result)
    learned: dict[str, Any] | None = None  # a learned codec's entry ({codec, args}); then `variant` is its name
    import_root: str | None = None      # where a codec named by import path is imported from (the study folder)

    def job_params(self) -> dict[str, Any]:
        """The settings that change the result (not paths, device or provenance)."""
        codec = {"learned": self.learned} if self.learned is not None else {}  # CSA-LIC jobs keep their hashes
        return {"variant": self.variant, "lmbda": self.lmbda, "stage": self.stage, "size": self.size,
                "seed": self.seed, "task_name": self.task_name, "init": self.init_job_hash, **codec,
                **{f"train.{k}": v for k, v in sorted(self.train.items())}}

    def job_hash(self) -> str:
        """Identity of a finished result: every setting, including its length."""
        return _hash(self.job_params())

    def resume_hash(self) -> str:
        """What a resume point must share with the job: settings that shape each step.

        Length and bookkeeping (max_steps, epochs, checkpoint/log intervals, workers)
        are left out, so a finished short run can be extended by asking for more steps.
        """
        skip = {"train.max_steps", "train.epochs", "train.checkpoint_every", "train.log_every", "train.workers"}
        return _hash({k: v for k, v in self.job_params().items() if k not in skip})


def _hash(obj: Any) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def spec_from_params(params: dict, variant: str, lmbda: float, out_dir: str | None = None,
                     max_steps: int | None = None, device: str | None = None, seed: int | None = None) -> JobSpec:
    """The job of one (variant, λ) under one training seed (None: the study's).

    A seed changes the λ job's initialisation, crops and order, never its warm-up: under
    ``train.init: warmup`` every seed fine-tunes the one warm-up of its variant.

    Under ``train.init: warmup`` it fine-tunes the variant's warm-up job; under
    ``train.init: pretrained`` the variant's committed warm-start checkpoint, whose
    sha256 is part of the job's identity.
    """
    if not lmbda > 0:
        raise CsalicError(f"λ must be positive, got {lmbda}")
    train = _job_train(params)
    init_from = init_hash = None
    if layout.uses_warmup(params):
        parent = warmup_spec(params, variant, max_steps=max_steps, device=device)
        init_from, init_hash = str(Path(parent.out_dir) / "final.pt"), parent.job_hash()
    elif layout.uses_pretrained(params):
        path = layout.pretrained_checkpoint(params, variant)
        if variant in layout.learned(params) and not path.is_file():
            raise CsalicError(f"learned codec {variant}: train.init: pretrained fine-tunes {path}, which is not "
                              "there: use train.init: warmup (a warm-up from scratch) or scratch")
        init_from, init_hash = str(path), f"sha256:{file_sha256(path, 'warm-start checkpoint')}"
    if init_from:
        train["max_steps"] = int(train.get("finetune_steps") or train["max_steps"])
    return _spec(params, variant, lmbda, train, out_dir or layout.job_dir(params, variant, lmbda, seed),
                 max_steps, device, init_from, init_hash, seed=layout.seed_of(params, seed))


def _job_train(params: dict) -> dict:
    """The train settings a job is: all but ``seeds``, the list of the study's seeds, which is no
    job's setting (its own seed is), so that adding a seed to a study keeps every finished job."""
    return {k: v for k, v in params["train"].items() if k != "seeds"}


def file_sha256(path: str | Path, what: str) -> str:
    import hashlib

    p = Path(path)
    if not p.is_file():
        raise CsalicError(f"{what} {p} not found (train.init: pretrained): restore it from git, or rebuild it "
                          "with `csalic pretrain --params config/pretrain.yaml`")
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def warmup_spec(params: dict, variant: str, max_steps: int | None = None, device: str | None = None) -> JobSpec:
    """A variant's warm-up: ``max_steps`` steps of R + λ_w·D_i, which all its λ fine-tune.

    It leaves D_f out, so it needs no task network (the workflow trains it while the
    task network trains) and it is the same start for every λ: after it, λ is the only
    difference between the variant's jobs, and their rates come out in λ's order.  It
    starts from scratch, or from ``<train.warmup_from>/<variant>.pt`` when that is set (a
    warm-up continued at another λ, as config/pretrain_mid.yaml does).
    """
    if not layout.uses_warmup(params):
        raise CsalicError("this study has no warm-up: set train.init: warmup in params.yaml")
    train = {k: v for k, v in _job_train(params).items() if k not in ("finetune_steps", "warmup_lambda")}
    train["feature_weight"] = 0.0
    lw = params["train"].get("warmup_lambda")
    if lw is None or not float(lw) > 0:
        raise CsalicError(f"train.warmup_lambda must be a positive number under train.init: warmup, got {lw!r}")
    init_from = init_hash = None
    path = layout.warmup_source(params, variant)
    if path is not None and variant in layout.learned(params) and not path.is_file():
        path = None  # a learned codec without a warm start there starts from scratch (the sweep says so)
    if path is not None:
        init_from, init_hash = str(path), f"sha256:{file_sha256(path, 'warm-start checkpoint')}"
    return _spec(params, variant, float(lw), train, layout.warmup_dir(params, variant), max_steps, device,
                 init_from, init_hash, stage="warmup")


def _spec(params: dict, variant: str, lmbda: float, train: dict, out_dir, max_steps: int | None,
          device: str | None, init_from: str | None = None, init_hash: str | None = None,
          stage: str = "train", seed: int | None = None) -> JobSpec:
    from .params import params_hash

    learned = layout.learned(params)
    if variant not in params["variants"] and variant not in VARIANT_NAMES and variant not in learned:
        raise CsalicError(f"unknown variant or learned codec {variant!r}")
    if max_steps is not None:
        if max_steps < 1:
            raise CsalicError(f"--max-steps must be at least 1, got {max_steps}")
        train["max_steps"] = int(max_steps)
    return JobSpec(
        variant=variant,
        lmbda=float(lmbda),
        out_dir=str(out_dir),
        size=params["model"]["size"],
        seed=int(params["seed"]) if seed is None else int(seed),
        manifest=str(layout.train_manifest(params)),
        image_root=str(layout.train_image_root(params)),
        task_name=params["task"]["name"] if train.get("feature_weight", 1.0) > 0 else None,
        task_weights=str(layout.task_net(params)),
        device=device or default_device(),
        train=train,
        study=params["study"],
        params_hash=params_hash(params),
        init_from=init_from,
        init_job_hash=init_hash,
        stage=stage,
        learned=_entry(learned[variant]) if variant in learned else None,
        import_root=str(Path.cwd()) if variant in learned else None,
    )


def _entry(entry: dict) -> dict[str, Any]:
    return {"codec": entry["codec"], "args": dict(entry.get("args") or {})}


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def finished_summary(out_dir: str | Path, spec: JobSpec | None = None) -> dict | None:
    """The job's summary if it finished with the same settings (else None: run or re-run it)."""
    path = Path(out_dir) / "summary.json"
    if not path.is_file() or not (Path(out_dir) / "final.pt").is_file():
        return None
    try:
        summary = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if spec is not None and summary.get("job_hash") != spec.job_hash():
        return None
    return summary
