"""One training job: a codec of one variant at one λ, resumable and deterministic on CPU.

A job owns one directory::

    last.pt        resume point: codec record + optimisers + step + RNG states (atomic)
    metrics.csv    one row per logged step, rewritten with each last.pt (DVC plots it)
    final.pt       codec checkpoint with entropy tables updated, ready for `csalic compress`
    summary.json   final metrics and provenance; written last, so it marks a finished job

Re-running the same job resumes from ``last.pt``: model, both optimisers, step,
data position (epochs are reproducible permutations of reproducible crops) and
the torch/numpy/python RNG states are restored, so on the CPU the resumed run
ends bit-identical to an uninterrupted one.  A job whose ``summary.json``
matches the requested settings is not run again.

Learning rate (the paper's "1e-4 for 50 epochs, then halved every 30 epochs
until reaching below 5e-6"): halvings happen at epochs 50, 80, 110, ... while
the rate before halving is still >= 5e-6, so 1e-4 goes 5e-5, 2.5e-5, 1.25e-5,
6.25e-6 and finally 3.125e-6 at epoch 170, the first value below 5e-6, where
it stays until epoch 200.
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ..codec.checkpoint import codec_record, read_record, save_codec, save_record
from ..errors import CsalicError
from ..io import atomic_write_json, atomic_write_text
from .jobs import JobSpec, default_device, finished_summary, spec_from_params  # noqa: F401
from ..codec.losses import RateDistortionLoss, psnr
from ..codec.model import build_model
from ..provenance import git_commit

METRIC_FIELDS = ["step", "epoch", "lr", "loss", "bpp", "mse", "psnr", "d_i", "d_f", "aux_loss",
                 "sec_per_step", "sys_cpu_percent", "sys_rss_gb", "sys_gpu_mem_gb"]


def lr_at(epoch: int, lr: float, constant_epochs: int, halve_every: int, floor: float) -> float:
    value, milestone = float(lr), int(constant_epochs)
    while epoch >= milestone and value >= floor:
        value /= 2.0
        milestone += int(halve_every)
    return value


class _ResumableSampler(torch.utils.data.Sampler[int]):
    """The dataset's per-epoch permutation, minus the samples already seen before a resume."""

    def __init__(self, dataset, seed: int):
        from ..data.crops import EpochShuffleSampler

        self.base = EpochShuffleSampler(dataset, seed)
        self.skip = 0

    def __len__(self) -> int:
        return len(self.base) - self.skip

    def __iter__(self) -> Iterator[int]:
        order = list(iter(self.base))
        skip, self.skip = self.skip, 0
        return iter(order[skip:])


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": _np_state_to_dict(np.random.get_state()),
             "python": repr(random.getstate())}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _np_state_to_dict(st) -> dict[str, Any]:
    return {"name": st[0], "keys": torch.from_numpy(np.asarray(st[1], dtype=np.int64)), "pos": int(st[2]),
            "has_gauss": int(st[3]), "cached": float(st[4])}


def _set_rng_state(state: dict[str, Any]) -> None:
    import ast

    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    py = ast.literal_eval(state["python"])
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _metrics_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=METRIC_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in METRIC_FIELDS})
    return buf.getvalue()


def _system_metrics(device: torch.device) -> dict[str, float | None]:
    try:
        import psutil

        proc = psutil.Process()
        cpu, rss = psutil.cpu_percent(interval=None), proc.memory_info().rss / 2**30
    except Exception:  # psutil missing or restricted /proc: system metrics are optional
        cpu, rss = None, None
    gpu = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"sys_cpu_percent": cpu, "sys_rss_gb": rss, "sys_gpu_mem_gb": gpu}


def load_task(spec: JobSpec, device: torch.device):
    if not spec.task_name:
        return None
    from ..tasks import load_task_network

    weights = spec.task_weights
    if weights and not Path(weights).is_file():
        if spec.task_name == "demo_mask_rcnn":
            raise CsalicError(f"demo task network {weights} not found: run `csalic train-task-net` first "
                              "(the workflow does it in its task_net step)")
        raise CsalicError(f"task network weights {weights} not found: set task.weights in params.yaml")
    return load_task_network(spec.task_name, weights=weights, device=device)


def _parent_weights(spec: JobSpec, device: torch.device) -> dict:
    """The finished parent job's (or warm-start checkpoint's) weights, checked to be what this job was planned from."""
    from .jobs import file_sha256

    if (spec.init_job_hash or "").startswith("sha256:"):
        if f"sha256:{file_sha256(spec.init_from, 'warm-start checkpoint')}" != spec.init_job_hash:
            raise CsalicError(f"{spec.init_from} changed after this job was planned; run the job again")
        model, _ = _load_parent(spec, device)
        return model.state_dict()
    parent_dir = Path(spec.init_from).parent
    summary = finished_summary(parent_dir)
    if summary is None:
        raise CsalicError(f"{spec.variant} λ={spec.lmbda:g} is fine-tuned from {parent_dir} (train.init: warmup), "
                          "which has not finished: train it first (csalic stage train --warmup)")
    if summary.get("job_hash") != spec.init_job_hash:
        raise CsalicError(f"{parent_dir} was trained with other settings than this study's; "
                          f"re-run its training before λ={spec.lmbda:g}")
    model, _ = _load_parent(spec, device)
    return model.state_dict()


def _load_parent(spec: JobSpec, device: torch.device):
    from ..codec.checkpoint import load_codec

    if spec.learned is not None:
        return load_codec(spec.init_from, device, variant=spec.variant, learned={spec.variant: spec.learned},
                          import_root=spec.import_root)
    return load_codec(spec.init_from, device, size=spec.size, variant=spec.variant)


def build_codec(spec: JobSpec):
    """The job's fresh codec: a CSA-LIC variant of the study's size, or the learned codec it names."""
    if spec.learned is not None:
        from ..codec.learned import LearnedCodec

        return LearnedCodec(spec.variant, spec.learned["codec"], spec.learned.get("args"), spec.import_root)
    return build_model(spec.size, spec.variant)


@dataclass
class _Run:
    """A job's moving parts, built in one fixed order (the RNG draws depend on it)."""

    spec: JobSpec
    out: Path
    device: torch.device
    model: Any
    net_params: list
    opt: torch.optim.Optimizer
    aux_opt: torch.optim.Optimizer
    task: Any
    criterion: RateDistortionLoss
    dataset: Any
    sampler: "_ResumableSampler"
    loader: Any
    steps_per_epoch: int
    total: int
    step: int = 0
    rows: list = field(default_factory=list)
    wall_before: float = 0.0

    @property
    def use_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def channels_last(self) -> bool:
        return self.use_cuda and self.spec.train.get("channels_last", True)


def _setup(spec: JobSpec) -> _Run:
    """Seeds, model, optimisers, task network, loss and the resumable loader."""
    from ..data.crops import RandomCropDataset, seed_worker

    t = spec.train
    device = torch.device(spec.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CsalicError("device cuda requested but no CUDA GPU is visible")
    if device.type == "cpu":
        torch.set_flush_denormal(True)  # GDN and the entropy model produce subnormals: 10x slower steps on x86
    torch.manual_seed(spec.seed)
    np.random.seed(spec.seed % 2**32)
    random.seed(spec.seed)

    model = build_codec(spec).to(device)
    use_cuda = device.type == "cuda"
    if use_cuda and t.get("channels_last", True):
        model = model.to(memory_format=torch.channels_last)
    aux_params = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    net_params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    opt = torch.optim.Adam(net_params, lr=t["lr"])
    aux_opt = torch.optim.Adam(aux_params, lr=t["aux_lr"])
    task = load_task(spec, device)
    criterion = RateDistortionLoss(spec.lmbda, task, t.get("feature_weight", 1.0))

    dataset = RandomCropDataset(spec.manifest, spec.image_root, crop=t["crop"], seed=spec.seed)
    batch = int(t["batch_size"])
    steps_per_epoch = len(dataset) // batch
    if steps_per_epoch < 1:
        raise CsalicError(f"{len(dataset)} training images is fewer than one batch of {batch}")
    total = int(t["max_steps"]) if t.get("max_steps") else steps_per_epoch * int(t["epochs"])
    sampler = _ResumableSampler(dataset, spec.seed)
    workers = int(t.get("workers", 0))
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch, sampler=sampler, num_workers=workers, drop_last=True,
        worker_init_fn=seed_worker, pin_memory=use_cuda, persistent_workers=workers > 0,
        # its own generator: creating an iterator must not draw from the global RNG,
        # or a resumed run (which creates one more iterator) would see different noise
        generator=torch.Generator().manual_seed(spec.seed),
    )
    return _Run(spec, Path(spec.out_dir), device, model, net_params, opt, aux_opt, task, criterion, dataset,
                sampler, loader, steps_per_epoch, total)


def _resume(run: _Run) -> None:
    """Continue from last.pt when it was written with these settings, else start from the parent's weights."""
    spec, last = run.spec, run.out / "last.pt"
    record = read_record(last) if last.is_file() else None
    if record is not None and record.get("resume_hash") != spec.resume_hash():
        stale = run.out / "last.stale.pt"  # settings changed: start over, keeping the old resume point aside
        os.replace(last, stale)
        print(f"note: {last} was written with other settings; moved to {stale}, starting over", file=sys.stderr)
        record = None
    if record is not None:
        run.model.load_state_dict(record["state_dict"])
        run.opt.load_state_dict(record["optimizer"])
        run.aux_opt.load_state_dict(record["aux_optimizer"])
        run.step = int(record["step"])
        run.rows = [dict(r) for r in record.get("metrics", [])]
        run.wall_before = float(record.get("wall_s", 0.0))
        _set_rng_state(record["rng"])
    elif spec.init_from:
        run.model.load_state_dict(_parent_weights(spec, run.device))


def _save_last(run: _Run, t_start: float) -> None:
    record = codec_record(run.model, run.spec.lmbda, {"study": run.spec.study})
    record.update(optimizer=run.opt.state_dict(), aux_optimizer=run.aux_opt.state_dict(), step=run.step,
                  rng=_rng_state(), metrics=run.rows, resume_hash=run.spec.resume_hash(),
                  wall_s=run.wall_before + time.perf_counter() - t_start)
    save_record(run.out / "last.pt", record)
    atomic_write_text(run.out / "metrics.csv", _metrics_text(run.rows))


def _step(run: _Run, x: torch.Tensor) -> dict[str, float]:
    """One optimiser step of the codec and one of the entropy bottleneck's quantiles; the step's terms."""
    t = run.spec.train
    x = x.to(run.device, non_blocking=True)
    if run.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=run.use_cuda and t.get("amp", True)):
        output = run.model(x)
    terms = run.criterion(output, x)
    if not math.isfinite(float(terms["loss"].detach())):
        raise CsalicError(f"training diverged at step {run.step + 1} (loss {float(terms['loss'].detach())}); "
                          "lower train.lr or check the data")
    run.opt.zero_grad(set_to_none=True)
    terms["loss"].backward()
    if t.get("clip_max_norm"):
        torch.nn.utils.clip_grad_norm_(run.net_params, t["clip_max_norm"])
    run.opt.step()
    aux = run.model.aux_loss()
    run.aux_opt.zero_grad(set_to_none=True)
    aux.backward()
    run.aux_opt.step()
    run.step += 1
    return {k: float(v.detach()) for k, v in terms.items()} | {"aux_loss": float(aux.detach())}


def _train_loop(run: _Run, progress: bool) -> float:
    """Steps until ``total``, logging every log_every and checkpointing every checkpoint_every; the wall time."""
    from tqdm import tqdm

    spec, t = run.spec, run.spec.train
    t_start = time.perf_counter()
    bar = tqdm(total=run.total, initial=run.step, disable=not progress, desc=f"{spec.variant} λ={spec.lmbda:g}",
               unit="step", dynamic_ncols=True)
    run.model.train()
    window: list[dict[str, float]] = []
    t_window = time.perf_counter()
    while run.step < run.total:
        epoch = run.step // run.steps_per_epoch
        run.dataset.set_epoch(epoch)
        run.sampler.skip = (run.step % run.steps_per_epoch) * int(t["batch_size"])
        lr = lr_at(epoch, t["lr"], t["lr_constant_epochs"], t["lr_halve_every"], t["lr_floor"])
        for group in run.opt.param_groups:
            group["lr"] = lr
        for x in run.loader:
            window.append(_step(run, x))
            step = run.step
            if step % int(t["log_every"]) == 0 or step == run.total:
                now = time.perf_counter()
                mean = {k: sum(w[k] for w in window) / len(window) for k in window[0]}
                run.rows.append({"step": step, "epoch": round(step / run.steps_per_epoch, 4), "lr": lr, **mean,
                                 "psnr": psnr(mean["mse"]), "sec_per_step": (now - t_window) / len(window),
                                 **_system_metrics(run.device)})
                bar.set_postfix(loss=f"{mean['loss']:.3f}", bpp=f"{mean['bpp']:.3f}", psnr=f"{psnr(mean['mse']):.2f}")
                window, t_window = [], now
            bar.update(1)
            if step % int(t["checkpoint_every"]) == 0 or step == run.total:
                _save_last(run, t_start)
            if step >= run.total or step % run.steps_per_epoch == 0:
                break
    bar.close()
    return run.wall_before + time.perf_counter() - t_start


def _finish(run: _Run, wall: float, commit: str | None) -> dict[str, Any]:
    """final.pt and summary.json (written last: its presence means the job is done)."""
    spec, out = run.spec, run.out
    # a resume point at the last step skips the loop: the curve must still be (re)written, e.g. when
    # Snakemake re-ran a job killed between its last checkpoint and its summary and removed the outputs
    atomic_write_text(out / "metrics.csv", _metrics_text(run.rows))
    run.model.eval()
    final = run.rows[-1] if run.rows else {}
    meta = {"study": spec.study, "params_hash": spec.params_hash, "job_hash": spec.job_hash(), "steps": run.step,
            "git_commit": commit}
    save_codec(out / "final.pt", run.model, spec.lmbda, meta)
    summary = {
        "variant": spec.variant, "lmbda": spec.lmbda, "stage": spec.stage, "size": spec.size, "steps": run.step,
        "epochs": round(run.step / run.steps_per_epoch, 4),
        "final": {k: final.get(k) for k in ("loss", "bpp", "psnr", "mse", "d_i", "d_f")},
        "params_hash": spec.params_hash, "job_hash": spec.job_hash(), "git_commit": meta["git_commit"],
        "task_network": run.task.describe() if run.task is not None else None,
        "device": str(run.device), "wall_s": round(wall, 3), "manifest": spec.manifest,
        "checkpoint": "final.pt", "job_params": spec.job_params(),
    }
    atomic_write_json(out / "summary.json", summary)
    return summary


def train_job(spec: JobSpec, progress: bool = True) -> dict[str, Any]:
    """Run (or resume, or skip) one job and return its summary: set-up, resume, steps, finish."""
    done = finished_summary(spec.out_dir, spec)
    if done is not None:
        return done
    Path(spec.out_dir).mkdir(parents=True, exist_ok=True)
    commit = git_commit()  # the code this process runs: read at the start, not after hours of training
    run = _setup(spec)
    _resume(run)
    wall = _train_loop(run, progress)
    return _finish(run, wall, commit)
