"""Codec checkpoints: architecture, variant, λ and weights (entropy tables included) in one file.

Saved with ``torch.save`` and always loaded with ``weights_only=True``, so a
checkpoint can only ever hold tensors and plain containers: a pickle carrying
code is refused, never run.  Training checkpoints (optimiser state, RNG, step)
reuse this layout with extra keys; :func:`load_codec` ignores those.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from ..io import atomic_path
from .learned import LearnedCodec
from .model import CSALIC, SIZES, VARIANTS, ModelConfig

FORMAT = "csalic.codec"
FORMAT_VERSION = 1


def _entropy_updated(model) -> bool:
    """Whether every entropy model of ``model`` has its coding tables (compressai's ``update``)."""
    from compressai.entropy_models import EntropyModel

    models = [m for m in model.modules() if isinstance(m, EntropyModel)]
    return bool(models) and all(m._offset.numel() for m in models)


def codec_record(model, lmbda: float | None = None, meta: dict | None = None) -> dict[str, Any]:
    """The dict stored on disk for ``model``, a CSA-LIC codec or a :class:`LearnedCodec` (callers may add
    training state to it)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "size": model.size,
        "variant": model.variant,
        "config": {"learned": model.entry} if isinstance(model, LearnedCodec) else model.config.to_dict(),
        "lmbda": None if lmbda is None else float(lmbda),
        "entropy_updated": _entropy_updated(model),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": dict(meta or {}),
    }


def save_record(path: str | Path, record: dict[str, Any]) -> None:
    """Write atomically: a killed job leaves the previous checkpoint, never half a new one."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as raw:
            fh = _WriteErrors(raw)
            try:
                torch.save(record, fh)
            except RuntimeError as exc:  # torch's zip writer hides the failed write (disk full) behind its own error
                raise fh.error or OSError(f"writing the checkpoint failed ({str(exc).splitlines()[0][:200]})") from exc


class _WriteErrors:
    """A file wrapper that keeps the OSError of a failed write, so the user sees the system's reason."""

    def __init__(self, fh):
        self.fh, self.error = fh, None

    def write(self, data) -> int:
        try:
            return self.fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.fh.flush()


def save_codec(path: str | Path, model: CSALIC, lmbda: float | None = None, meta: dict | None = None,
               update_entropy: bool = True) -> None:
    """Save a codec ready for ``csalic compress``: entropy tables updated first by default."""
    if update_entropy:
        model.update(force=True)
    save_record(path, codec_record(model, lmbda, meta))


def read_record(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint dict safely, turning every failure into one CheckpointError line."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint {p} not found")
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} is not a file")
    if not zipfile.is_zipfile(p):  # torch.save always writes a zip archive
        raise CheckpointError(f"{p} is truncated, corrupted or not a torch checkpoint")
    try:
        record = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = re.search(r"Unsupported global: (GLOBAL [^\s]+|[^\n]+)", text)
        detail = found.group(1) if found else "objects other than tensors and plain data"
        raise CheckpointError(
            f"{p} holds {detail}, which safe loading (weights_only=True) refuses; csalic never runs code "
            "from a checkpoint"
        ) from None
    except Exception as exc:  # damaged archives fail with arbitrary error types
        raise CheckpointError(f"{p} is truncated, corrupted or not a torch checkpoint ({type(exc).__name__})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise CheckpointError(f"{p} is not a csalic codec checkpoint (no '{FORMAT}' format tag)")
    if record.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{p} has checkpoint format version {record.get('format_version')}; "
                              f"this csalic reads version {FORMAT_VERSION}")
    return record


def load_codec(path: str | Path, device: str | torch.device = "cpu", *, size: str | None = None,
               variant: str | None = None, learned: dict | None = None,
               import_root: str | Path | None = None) -> tuple[CSALIC | LearnedCodec, dict[str, Any]]:
    """Model in eval mode with entropy tables ready, plus the checkpoint's metadata.

    ``size``/``variant`` state what the caller expects; a checkpoint of another
    kind is refused with both named.  A learned codec's checkpoint names its model; one
    named by import path is built only when ``learned`` (a study's entries) names the same
    path, so loading a file never imports a module the user did not choose.
    """
    record = read_record(path)
    ck_size, ck_variant = record.get("size"), record.get("variant")
    if variant is not None and ck_variant != variant:
        raise CheckpointError(f"{path} is a '{ck_variant}' checkpoint, expected variant '{variant}'")
    config = record.get("config")
    if isinstance(config, dict) and "learned" in config:
        model = _learned_model(path, str(ck_variant), config["learned"], learned or {}, import_root)
    else:
        if size is not None and ck_size != size:
            raise CheckpointError(f"{path} is a '{ck_size}' size checkpoint, expected size '{size}'")
        if ck_variant not in VARIANTS:
            raise CheckpointError(f"{path} names unknown variant {ck_variant!r}")
        try:
            config = ModelConfig.from_dict(record["config"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path} has an unreadable model config ({exc})") from None
        model = CSALIC(config, ck_variant, size=ck_size if ck_size in SIZES else None)
    try:
        model.load_state_dict(record["state_dict"])
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(
            f"{path}: weights do not fit a {ck_size}/{ck_variant} model ({str(exc).splitlines()[0][:160]})"
        ) from None
    model.to(device).eval()
    if not record.get("entropy_updated"):
        model.update(force=True)  # deterministic: encoder and decoder build identical tables
    info = {k: v for k, v in record.items() if k != "state_dict"}
    return model, info


def _learned_model(path, name: str, entry: Any, trusted: dict, import_root) -> LearnedCodec:
    from ..errors import CsalicError

    if not isinstance(entry, dict) or not isinstance(entry.get("codec"), str):
        raise CheckpointError(f"{path} has an unreadable learned-codec entry")
    codec = entry["codec"]
    if ":" in codec and not any(isinstance(e, dict) and e.get("codec") == codec for e in trusted.values()):
        raise CheckpointError(f"{path} is a checkpoint of {codec!r}, a codec named by import path: csalic imports "
                              "it only for a study whose learned entries name it (csalic never runs code a file "
                              "names on its own)")
    try:
        return LearnedCodec(name, codec, entry.get("args") or {}, import_root)
    except CsalicError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
