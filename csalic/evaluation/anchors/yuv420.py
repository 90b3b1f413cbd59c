"""The traditional anchors' common input: RGB -> full-range YCbCr 4:2:0, 10 bit, raw planar YUV.

The MPEG VCM image anchors code YCbCr 4:2:0 at 10 bit.  Every external encoder
(VVenC, VTM, x265, and FFmpeg driving libvvenc or libx265) gets the same planes,
converted here with numpy rather than by the tool, so the conversion is one
known recipe whichever tool codes the picture: BT.601 by default (the codec's own
colour transform, :mod:`csalic.codec.color`) or BT.709, full range, chroma averaged
over 2x2 blocks (centre-sited) and upsampled bilinearly on the way back.  Odd
sizes are padded to even by edge replication and cropped back after decoding.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ...errors import CsalicError

BIT_DEPTH = 10

_MATRICES = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}


def check_matrix(matrix: str) -> str:
    _coefficients(matrix)
    return matrix


def _coefficients(matrix: str) -> tuple[float, float, float]:
    if matrix not in _MATRICES:
        raise CsalicError(f"unknown YCbCr matrix {matrix!r}; choose one of {', '.join(_MATRICES)}")
    kr, kb = _MATRICES[matrix]
    return kr, 1.0 - kr - kb, kb


def pad_even(rgb: np.ndarray) -> np.ndarray:
    """Replicate the last row/column so both sides are even (4:2:0 needs it)."""
    h, w = rgb.shape[:2]
    return np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def rgb_to_yuv420(rgb: np.ndarray, bit_depth: int = BIT_DEPTH, matrix: str = "bt601") -> tuple[np.ndarray, ...]:
    """(H, W, 3) uint8 RGB with even H, W -> full-range Y (H, W), Cb, Cr (H/2, W/2) as uint16."""
    h, w = rgb.shape[:2]
    if h % 2 or w % 2:
        raise ValueError(f"4:2:0 needs even sizes, got {w}x{h}: pad_even first")
    kr, kg, kb = _coefficients(matrix)
    x = rgb.astype(np.float64) / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = kr * r + kg * g + kb * b
    cb = (b - y) / (2.0 * (1.0 - kb))
    cr = (r - y) / (2.0 * (1.0 - kr))
    top = (1 << bit_depth) - 1
    mid = 1 << (bit_depth - 1)

    def sub(c: np.ndarray) -> np.ndarray:
        return c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))

    def q(v: np.ndarray, offset: float) -> np.ndarray:
        return np.clip(np.rint(v * top + offset), 0, top).astype(np.uint16)

    return q(y, 0.0), q(sub(cb), mid), q(sub(cr), mid)


def _upsample(c: np.ndarray, w: int, h: int) -> np.ndarray:
    return np.asarray(Image.fromarray(c.astype(np.float32), mode="F").resize((w, h), Image.BILINEAR),
                      dtype=np.float64)


def yuv420_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray, bit_depth: int = BIT_DEPTH,
                  matrix: str = "bt601") -> np.ndarray:
    """Full-range planes -> (H, W, 3) uint8 RGB (the exact inverse matrix, rounded)."""
    kr, kg, kb = _coefficients(matrix)
    h, w = y.shape
    top = (1 << bit_depth) - 1
    mid = 1 << (bit_depth - 1)
    yf = y.astype(np.float64) / top
    cbf = _upsample((cb.astype(np.float64) - mid) / top, w, h)
    crf = _upsample((cr.astype(np.float64) - mid) / top, w, h)
    r = yf + 2.0 * (1.0 - kr) * crf
    b = yf + 2.0 * (1.0 - kb) * cbf
    g = (yf - kr * r - kb * b) / kg
    rgb = np.stack([r, g, b], axis=-1)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def write_yuv(path: str | os.PathLike, planes: Sequence[np.ndarray], bit_depth: int = BIT_DEPTH) -> None:
    dtype = "<u2" if bit_depth > 8 else "u1"
    with open(path, "wb") as fh:
        for p in planes:
            fh.write(np.ascontiguousarray(p, dtype=dtype).tobytes())


def read_yuv(path: str | os.PathLike, width: int, height: int) -> tuple[tuple[np.ndarray, ...], int]:
    """One 4:2:0 picture of ``width`` x ``height``; the bit depth (8 or 10) follows from the file size."""
    raw = Path(path).read_bytes()
    n = width * height
    c = (width // 2) * (height // 2)
    if len(raw) == 2 * (n + 2 * c):
        arr, depth = np.frombuffer(raw, dtype="<u2"), BIT_DEPTH
    elif len(raw) == n + 2 * c:
        arr, depth = np.frombuffer(raw, dtype=np.uint8).astype(np.uint16), 8
    else:
        raise CsalicError(f"the decoder wrote {len(raw)} bytes; a {width}x{height} 4:2:0 picture has "
                          f"{2 * (n + 2 * c)} (10 bit) or {n + 2 * c} (8 bit): wrong decoder or damaged bitstream")
    y = arr[:n].reshape(height, width)
    cb = arr[n:n + c].reshape(height // 2, width // 2)
    cr = arr[n + c:n + 2 * c].reshape(height // 2, width // 2)
    return (y, cb, cr), depth
