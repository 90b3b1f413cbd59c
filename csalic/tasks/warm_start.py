"""The demo task network as a committed warm start: used when it was trained at the study's settings.

The demo network never changes with the codec, yet training it is a few minutes of every fresh
demo study.  ``csalic pretrain-task-net`` trains it once at a study's settings and writes the
weights with a ``provenance.json`` that records what they depend on: the settings that shape
training (seed, steps, threads, the trainer's defaults), the sha256 of the training split (the
generated images and their annotations) and of the trainer's source.  The ``task_net`` stage
installs the committed file only when all of these match the study; otherwise it trains, as it
always did, and says why.

Torch-free: the decision and the copy need no network.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import shutil
from pathlib import Path
from typing import Any

from ..errors import CsalicError
from ..io import atomic_path, atomic_write_json, atomic_write_text
from ..names import TASK_WARM_START_PROVENANCE, TASK_WARM_START_WEIGHTS

FORMAT = "csalic.task-net-warm-start/1"
WEIGHTS = TASK_WARM_START_WEIGHTS
PROVENANCE = TASK_WARM_START_PROVENANCE
# train_and_save's defaults the pipeline trains with (batch size, AdamW peak lr): part of the identity
TRAINER = {"batch_size": 4, "lr": 2e-3}


def settings(params: dict) -> dict[str, Any]:
    """What the demo network's weights depend on in a study (besides its data and the trainer's code)."""
    t = params["task"]
    return {"task.name": t["name"], "task.demo_steps": int(t["demo_steps"]),
            "task.demo_threads": int(t.get("demo_threads", 1)), "seed": int(params["seed"]), **TRAINER}


def _tree_sha256(files: list[Path], root: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        h.update(f.relative_to(root).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            h.update(hashlib.sha256(fh.read()).digest())
    return h.hexdigest()


def data_sha256(data: str | Path) -> str:
    """The training split the network learns from: annotations/instances_train.json and train/*."""
    data = Path(data)
    ann = data / "annotations" / "instances_train.json"
    if not ann.is_file():
        raise CsalicError(f"{ann} not found: generate the demo data first (csalic stage data)")
    return _tree_sha256([ann, *(p for p in (data / "train").rglob("*") if p.is_file())], data)


def code_sha256() -> str:
    """The trainer's source: a change to the network or its training invalidates the warm start."""
    from . import demo_net

    return hashlib.sha256(Path(demo_net.__file__).read_bytes()).hexdigest()


def _file_sha256(path: Path) -> str:
    from ..provenance import sha256_of

    return sha256_of(path)


def read_provenance(warm: str | Path) -> dict[str, Any]:
    path = Path(warm) / PROVENANCE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise CsalicError(f"{path} not found") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise CsalicError(f"cannot read {path}: {exc}") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CsalicError(f"{path} is not a task-network warm start's provenance ({FORMAT})")
    return record


def mismatch(params: dict, warm: str | Path, data: str | Path) -> str | None:
    """Why the warm start at ``warm`` is not this study's network (None: it is)."""
    warm = Path(warm)
    if not (warm / PROVENANCE).is_file():
        return f"no warm start at {warm}"
    record = read_provenance(warm)
    want = settings(params)
    for key, value in want.items():
        if record["settings"].get(key) != value:
            return f"{key} is {value!r} here, {record['settings'].get(key)!r} in {warm / PROVENANCE}"
    if record["data_sha256"] != data_sha256(data):
        return f"the training data differ from those {warm} was trained on"
    if record["code_sha256"] != code_sha256():
        return "csalic/tasks/demo_net.py changed since the warm start was trained"
    weights = warm / WEIGHTS
    if not weights.is_file():
        return f"{weights} is missing"
    if _file_sha256(weights) != record["weights_sha256"]:
        return f"{weights} does not match the sha256 in {warm / PROVENANCE}"
    return None


def install(warm: str | Path, out: str | Path) -> dict[str, Any]:
    """Copy the warm start's weights to ``out`` (and its metrics record); returns the recorded metrics."""
    from .demo_net import metrics_path

    warm, out = Path(warm), Path(out)
    record = read_provenance(warm)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        shutil.copyfile(warm / WEIGHTS, tmp)
    metrics = {"checkpoint": str(out), "weights_sha256": record["weights_sha256"], "warm_start": str(warm),
               "training": record["training"], **record["uncompressed_val"]}
    atomic_write_json(metrics_path(out), metrics)
    return metrics


def export(params: dict, record: dict[str, Any], weights: str | Path, out: str | Path, data: str | Path,
           command: str) -> list[Path]:
    """Write ``out``/demo_task_net.pt, provenance.json and README.md from a finished training."""
    from ..provenance import git_commit

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / WEIGHTS
    if Path(weights).resolve() != target.resolve():
        with atomic_path(target) as tmp:
            shutil.copyfile(weights, tmp)
    metrics = {k: record[k] for k in ("split", "images", "detections", "map50_bbox", "map50_segm") if k in record}
    prov = {
        "format": FORMAT,
        "created": _dt.date.today().isoformat(),
        "command": command,
        "git_commit": git_commit(),
        "settings": settings(params),
        "data_sha256": data_sha256(data),
        "code_sha256": code_sha256(),
        "weights_sha256": _file_sha256(target),
        "bytes": target.stat().st_size,
        "training": {k: record["training"][k] for k in ("steps", "seconds", "train_images", "final_loss")},
        "uncompressed_val": metrics,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }
    atomic_write_json(out / PROVENANCE, prov)
    s = prov["settings"]
    readme = f"""# Task-network warm start: the demo's Mask R-CNN

Written by `csalic pretrain-task-net`; do not edit. The `task_net` stage of a demo study copies
`{WEIGHTS}` instead of training when `task.warm_start` points here and everything in
`{PROVENANCE}` matches the study: its settings, the sha256 of its generated training split and of
`csalic/tasks/demo_net.py`. Otherwise it trains the network itself and says why.

Reproduce (CPU, about {max(1, round(prov['training']['seconds'] / 60))} min):

```bash
{command}
```

What it is: the demo's own small Mask R-CNN ({s['task.name']}), trained from scratch for
{s['task.demo_steps']} steps (batch {s['batch_size']}, AdamW at peak lr {s['lr']}, seed {s['seed']},
{s['task.demo_threads']} CPU threads) on {prov['training']['train_images']} generated images.
Uncompressed {metrics.get('split', 'val')} mAP@0.5 ({metrics.get('images')} images): bbox
{metrics.get('map50_bbox')}, segm {metrics.get('map50_segm')}; tests/test_warm_start.py checks that these
weights still give them. Git commit `{(prov['git_commit'] or 'unknown')[:10]}`, sha256 `{prov['weights_sha256'][:16]}`.
"""
    atomic_write_text(out / "README.md", readme)
    return [target, out / PROVENANCE, out / "README.md"]
