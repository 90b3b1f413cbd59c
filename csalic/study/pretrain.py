"""Warm-start checkpoints: one long warm-up per variant, exported small with its provenance.

A demo that must finish in minutes on two cores cannot train a codec from
scratch to a useful quality.  ``csalic pretrain --params config/pretrain.yaml``
runs the pipeline's own warm-up jobs (``train.init: warmup``, R + λ·D_i, no task
network) for as long as that config says, as Ray tasks like any sweep, then
writes one checkpoint per variant to ``pretrained/<name>/`` with a
``provenance.json`` and a README saying how they were made.  A study with
``train.init: pretrained`` fine-tunes every λ from them; the checkpoint's sha256
is part of each job's identity, so a rebuilt checkpoint retrains the λ that use it.

Parameters are stored in float16 (buffers, the entropy model's tables among
them, as they are), which halves the files; :func:`csalic.codec.checkpoint.load_codec`
casts them back and rebuilds the entropy tables from the rounded weights.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import torch

from . import layout
from ..codec.checkpoint import read_record, save_record
from ..errors import CsalicError
from ..io import atomic_write_json, atomic_write_text
from .jobs import file_sha256, finished_summary, warmup_spec
from ..codec.model import build_model

README_TEMPLATE = """# Warm-start checkpoints: {name}

Written by `csalic pretrain`; do not edit. Studies with `train.init: pretrained` and
`train.pretrained: {out}` fine-tune every λ of a variant from `<variant>.pt`.

Reproduce (CPU, about {hours:.1f} h of job time in all, two jobs at a time on two cores):

```bash
csalic pretrain --params {params_file} --out {out}
```

What they are: each variant's warm-up job of the study `{study}` ({params_file}, params hash
`{params_hash}`): {steps} steps of R + λ·D_i at λ = {lmbda:g} {start}, no task network, on
{n_train} generated {size} training images, {crop}x{crop} crops, batch {batch}, Adam at lr {lr:g}
(halved from epoch {lr_constant_epochs}, every {lr_halve_every} epochs). Parameters stored in float16.

| variant | steps | job time | training bpp | training PSNR (dB) | job hash | git commit (job's record) | sha256 (file) |
|---|---|---|---|---|---|---|---|
{rows}

Training bpp and PSNR are the means over the last logged steps of the warm-up, on training crops.
"""


def _half(record: dict[str, Any], size: str, variant: str) -> dict[str, Any]:
    """The record with the model's parameters (not its buffers) in float16."""
    names = {n for n, _ in build_model(size, variant).named_parameters()}
    state = {}
    for k, v in record["state_dict"].items():
        if k in names and v.is_floating_point():
            h = v.to(torch.float16)
            if not torch.isfinite(h).all():
                raise CsalicError(f"{variant}: parameter {k} does not fit in float16")
            state[k] = h
        else:
            state[k] = v
    return {**record, "state_dict": state, "entropy_updated": False}


def export(params: dict, out_dir: str | Path, params_file: str = "config/pretrain.yaml", note: str = "") -> list[Path]:
    """Write ``<out>/<variant>.pt``, ``provenance.json`` and ``README.md`` from the study's finished warm-ups."""
    out = Path(out_dir)
    rows, provenance, written = [], {}, []
    t = params["train"]
    for variant in params["variants"]:
        spec = warmup_spec(params, variant, device="cpu")
        summary = finished_summary(spec.out_dir, spec)
        if summary is None:
            raise CsalicError(f"the {variant} warm-up of study {params['study']} has not finished with these "
                              f"settings ({spec.out_dir}): run `csalic pretrain --params {params_file}` first")
        record = read_record(Path(spec.out_dir) / "final.pt")
        info = {"study": params["study"], "params_file": params_file, "params_hash": summary["params_hash"],
                "job_hash": summary["job_hash"], "git_commit": summary["git_commit"], "steps": summary["steps"],
                "wall_s": summary["wall_s"], "lmbda": summary["lmbda"], "final": summary["final"],
                "init": (summary.get("job_params") or {}).get("init"),
                "weights_dtype": "float16 parameters, buffers as trained"}
        record = _half(record, params["model"]["size"], variant)
        record["meta"] = {**record.get("meta", {}), "pretrained": info}
        path = out / f"{variant}.pt"
        save_record(path, record)
        info["sha256"] = file_sha256(path, "warm-start checkpoint")
        info["bytes"] = path.stat().st_size
        provenance[variant] = info
        written.append(path)
        f = summary["final"]
        rows.append(f"| {variant} | {summary['steps']} | {summary['wall_s'] / 60:.0f} min | {f['bpp']:.4f} | "
                    f"{f['psnr']:.2f} | `{summary['job_hash']}` | `{str(summary['git_commit'])[:10]}` | "
                    f"`{info['sha256'][:16]}` |")
    atomic_write_json(out / "provenance.json", {"created": _dt.date.today().isoformat(), "note": note or None,
                                                "variants": provenance})
    d = params["data"]["demo"]
    readme = README_TEMPLATE.format(
        name=out.name, out=out.as_posix(), params_file=params_file, study=params["study"],
        params_hash=next(iter(provenance.values()))["params_hash"], steps=t["max_steps"],
        start=(f"continuing `{t['warmup_from']}/<variant>.pt` (its sha256 is each job's `init` in provenance.json)"
               if t.get("warmup_from") else "from scratch"),
        lmbda=float(t["warmup_lambda"]), n_train=d["train"], size=f"{d['width']}x{d['height']}", crop=t["crop"],
        batch=t["batch_size"], lr=t["lr"], lr_constant_epochs=t["lr_constant_epochs"],
        lr_halve_every=t["lr_halve_every"], hours=sum(p["wall_s"] for p in provenance.values()) / 3600,
        rows="\n".join(rows))
    if note:
        readme += f"\nNote: {note}\n"
    atomic_write_text(out / "README.md", readme)
    return written + [out / "provenance.json", out / "README.md"]


def pretrain(params: dict, out_dir: str | Path, params_file: str, *, track: bool = True, note: str = "",
             echo=print) -> list[Path]:
    """Train (or resume, or reuse) every variant's warm-up as Ray tasks, then :func:`export` them."""
    from .sweep import plan, run_sweep

    if not layout.uses_warmup(params):
        raise CsalicError(f"{params_file}: csalic pretrain trains a study's warm-ups: set train.init: warmup "
                          "(see config/pretrain.yaml)")
    if params["mode"] != "demo":
        raise CsalicError(f"{params_file}: csalic pretrain makes warm-start checkpoints for the demo (mode: demo)")
    specs = plan(params, warmup_only=True)
    report = run_sweep(params, specs, track=track, echo=echo)
    if report["failed"]:
        names = ", ".join(f["variant"] for f in report["failed"])
        raise CsalicError(f"pretraining failed for {names}: see the messages above; run again to resume")
    return export(params, out_dir, params_file, note)

