"""Provenance helpers shared by training, evaluation, task networks and tracking."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Content hash of a file, read in chunks (checkpoints are hundreds of MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def git_commit() -> str | None:
    """HEAD of the checkout csalic runs from, or None outside git."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None
