"""Atomic file output: a killed job never leaves a file that looks finished.

Everything is written to a temporary file in the destination folder, flushed,
fsynced and renamed over the target, so readers see either the old file or the
complete new one.  On any error the temporary file is removed and the previous
file is untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import CsalicError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once: os.umask can only be read by setting it


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=suffix if suffix is not None else (target.suffix + ".tmp"),
            dir=target.parent,
        )
    except OSError as exc:  # a file where a folder should be, no permission, disk full
        raise CsalicError(f"could not write {target}: {exc.strerror or exc}") from exc
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes it private; results are shared like any new file
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, target)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise CsalicError(f"could not write {target}: {exc.strerror or exc}") from exc
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json_object(path: str | os.PathLike, what: str, hint: str = "") -> dict:
    """A JSON object from ``path``; a missing, unreadable or malformed file is one CsalicError line."""
    p = Path(path)
    suffix = f": {hint}" if hint else ""
    if not p.is_file():
        raise CsalicError(f"{what} {p} not found{suffix}")
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CsalicError(f"{what} {p} is not valid JSON ({first}){suffix}") from None
    if not isinstance(obj, dict):
        raise CsalicError(f"{what} {p} must hold a JSON object{suffix}")
    return obj
