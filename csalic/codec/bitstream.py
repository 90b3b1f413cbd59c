"""The ``.csa`` container: one coded image, safe to read from an untrusted file.

Layout (big-endian)::

    magic    4 bytes  b"CSA\\x1a"
    version  u8       1
    fingerprint 8 bytes  identifies the exact weights that produced the strings
    height   u32, width u32   original image size, before padding
    n_strings u16, then per string: length u32 + bytes
    checksum u32      zlib.crc32 of everything before it

A ``.csa`` file is only meaningful to the model that wrote it, so the header
carries that model's fingerprint; decoding with other weights would silently
produce garbage.  :func:`decode` treats its input as hostile: every failure is a
one-line :class:`~csalic.errors.BitstreamError`, nothing is allocated from an
unchecked length, and the image size is bounded because the decoder's memory
grows with it (a forged header must not be able to ask for terabytes).
"""

from __future__ import annotations

import os
import stat
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import BitstreamError
from ..io import atomic_write_bytes

MAGIC = b"CSA\x1a"
VERSION = 1
FINGERPRINT_BYTES = 8
DEFAULT_MAX_PIXELS = 1 << 26  # 67 MP; decoding more would need tens of GB of activations
DEFAULT_MAX_SIDE = 1 << 15
MAX_STRINGS = 1024
MAX_FILE_BYTES = 1 << 30  # far above any real .csa; stops read_file from slurping a disk image

_HEAD = struct.Struct(">4sB8sIIH")  # magic, version, fingerprint, height, width, n_strings
_U32 = struct.Struct(">I")
_MIN_SIZE = _HEAD.size + _U32.size  # header with zero strings, plus checksum


@dataclass(frozen=True)
class Payload:
    """What a ``.csa`` file carries: enough to run the model's decompress."""

    fingerprint: bytes
    height: int
    width: int
    strings: list[bytes]


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def encode(fingerprint: bytes, height: int, width: int, strings: Sequence[bytes]) -> bytes:
    """Serialise one coded image.

    Bad arguments are programmer errors, not user errors, so they raise
    ``ValueError`` rather than :class:`BitstreamError`.
    """
    if not isinstance(fingerprint, (bytes, bytearray)) or len(fingerprint) != FINGERPRINT_BYTES:
        raise ValueError(f"fingerprint must be exactly {FINGERPRINT_BYTES} bytes, got {fingerprint!r}")
    for name, v in (("height", height), ("width", width)):
        if not _is_int(v) or not 1 <= v <= DEFAULT_MAX_SIDE:
            raise ValueError(f"{name} must be an int in 1..{DEFAULT_MAX_SIDE}, got {v!r}")
    if isinstance(strings, (bytes, bytearray, str)):
        raise ValueError("strings must be a sequence of bytes objects, not a single bytes/str")
    strings = list(strings)
    if not 1 <= len(strings) <= MAX_STRINGS:
        raise ValueError(f"need 1..{MAX_STRINGS} strings, got {len(strings)}")
    parts = [_HEAD.pack(MAGIC, VERSION, bytes(fingerprint), height, width, len(strings))]
    for i, s in enumerate(strings):
        if not isinstance(s, (bytes, bytearray)):
            raise ValueError(f"strings[{i}] must be bytes, got {type(s).__name__}")
        if len(s) >= 1 << 32:
            raise ValueError(f"strings[{i}] is {len(s)} bytes; the format allows < 2**32")
        parts.append(_U32.pack(len(s)))
        parts.append(bytes(s))
    body = b"".join(parts)
    return body + _U32.pack(zlib.crc32(body))


def decode(
    data: bytes,
    *,
    expected_fingerprint: bytes | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side: int = DEFAULT_MAX_SIDE,
    expected_strings: int | None = None,
) -> Payload:
    """Parse and verify a ``.csa`` file; any defect is a one-line BitstreamError.

    Pass ``expected_fingerprint`` (the loaded checkpoint's) and
    ``expected_strings`` (the model's slice count + 1) so that a file from a
    different model is refused here instead of decoding to noise.
    """
    if expected_fingerprint is not None and (
        not isinstance(expected_fingerprint, (bytes, bytearray))
        or len(expected_fingerprint) != FINGERPRINT_BYTES
    ):
        raise ValueError(f"expected_fingerprint must be {FINGERPRINT_BYTES} bytes")
    if not _is_int(max_pixels) or max_pixels < 1 or not _is_int(max_side) or max_side < 1:
        raise ValueError("max_pixels and max_side must be positive ints")

    buf = memoryview(data).cast("B")
    n = len(buf)
    if n == 0:
        raise BitstreamError("empty input: not a .csa file")
    k = min(n, len(MAGIC))
    if bytes(buf[:k]) != MAGIC[:k]:
        raise BitstreamError(f"not a .csa file (bad magic {bytes(buf[:4])!r}, expected {MAGIC!r})")
    if n < len(MAGIC) + 1:
        raise BitstreamError(
            f"file too short ({n} bytes, a .csa file is at least {_MIN_SIZE}): truncated"
        )
    version = buf[4]
    if version != VERSION:
        raise BitstreamError(
            f"unsupported .csa version {version} (this csalic reads version {VERSION}); "
            "use the csalic release that wrote it"
        )
    if n < _MIN_SIZE:
        raise BitstreamError(
            f"file too short ({n} bytes, a .csa file is at least {_MIN_SIZE}): truncated"
        )

    _, _, fingerprint, height, width, n_strings = _HEAD.unpack_from(buf, 0)

    # Walk the declared lengths, remembering only offsets: nothing is copied until
    # every length has been shown to fit inside the input.
    spans: list[tuple[int, int]] = []
    pos = _HEAD.size
    for i in range(n_strings):
        if pos + _U32.size > n:
            missing = pos + _U32.size * (n_strings - i + 1) - n
            raise BitstreamError(
                f"truncated .csa file: length of string {i + 1}/{n_strings} runs past the end "
                f"(at least {missing} bytes missing)"
            )
        (length,) = _U32.unpack_from(buf, pos)
        pos += _U32.size
        if pos + length > n:
            missing = pos + length + _U32.size * (n_strings - i) - n
            raise BitstreamError(
                f"truncated .csa file: string {i + 1}/{n_strings} declares {length} bytes "
                f"but runs past the end (at least {missing} bytes missing)"
            )
        spans.append((pos, length))
        pos += length
    end = pos + _U32.size
    if end > n:
        raise BitstreamError(f"truncated .csa file: {end - n} bytes of the checksum missing")
    if end < n:
        raise BitstreamError(
            f"{n - end} trailing bytes after the .csa checksum (file corrupted or concatenated)"
        )
    (stored_crc,) = _U32.unpack_from(buf, pos)
    if zlib.crc32(buf[:pos]) != stored_crc:
        raise BitstreamError("checksum mismatch: the .csa file is corrupted")

    if height == 0 or width == 0:
        raise BitstreamError(f"invalid image size {height}x{width} in .csa header")
    if height > max_side or width > max_side:
        raise BitstreamError(
            f"image size {height}x{width} exceeds the limit of {max_side} pixels per side"
        )
    if height * width > max_pixels:
        raise BitstreamError(
            f"image size {height}x{width} = {height * width} pixels exceeds the limit of "
            f"{max_pixels}; pass --max-pixels to raise it if you have the memory"
        )
    if not 1 <= n_strings <= MAX_STRINGS:
        raise BitstreamError(
            f".csa header declares {n_strings} strings; valid files have 1..{MAX_STRINGS}"
        )
    if expected_strings is not None and n_strings != expected_strings:
        raise BitstreamError(
            f".csa file has {n_strings} strings but this model expects {expected_strings}: "
            "it was made by a different model configuration"
        )
    if expected_fingerprint is not None and fingerprint != bytes(expected_fingerprint):
        raise BitstreamError(
            f".csa file was made by a different model (fingerprint {fingerprint.hex()}), "
            f"this checkpoint is {bytes(expected_fingerprint).hex()}; decode with the checkpoint that encoded it"
        )
    return Payload(
        fingerprint=fingerprint,
        height=height,
        width=width,
        strings=[bytes(buf[s : s + length]) for s, length in spans],
    )


def write_file(path: str | os.PathLike, payload: Payload) -> int:
    """Atomically write ``payload`` to ``path``; a crash never leaves a half file.

    Returns the number of bytes written (the compressed size, for bpp).
    """
    data = encode(payload.fingerprint, payload.height, payload.width, payload.strings)
    atomic_write_bytes(path, data)
    return len(data)


def read_file(path: str | os.PathLike, **decode_kwargs) -> Payload:
    """Read and :func:`decode` a ``.csa`` file; every failure names the path."""
    p = Path(path)
    try:
        st = p.stat()
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
            raise BitstreamError(f"{p}: not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise BitstreamError(f"{p}: {st.st_size} bytes, larger than any .csa file (limit 1 GiB)")
        with open(p, "rb") as fh:
            # Read one byte past the bound rather than trusting st_size (races).
            data = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise BitstreamError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise BitstreamError(f"{p}: is a directory, not a .csa file") from None
    except PermissionError:
        raise BitstreamError(f"{p}: permission denied") from None
    except OSError as exc:
        raise BitstreamError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise BitstreamError(f"{p}: larger than any .csa file (limit 1 GiB)")
    try:
        return decode(data, **decode_kwargs)
    except BitstreamError as exc:
        raise BitstreamError(f"{p}: {exc}") from None
