"""An anchor that codes one picture through external programs: raw YUV in, bitstream out, and back.

:class:`ExternalIntraCodec` does what every such anchor shares (the 4:2:0 10-bit
planes of :mod:`csalic.evaluation.anchors.yuv420`, a private temporary folder, running the
tools without a shell, turning their failures into one line, and a 4-byte size
header so that odd sizes crop back exactly).  A subclass only builds the two
command lines, as CompressAI-Vision's standard-codec wrappers do.

The bytes returned by :meth:`encode` are the tool's bitstream preceded by that
header (width and height, 2 x uint16 big-endian); the header is counted in the
rate (0.0003 bpp at 320x320, 0.0001 bpp at 640x480).
"""

from __future__ import annotations

import contextlib
import os
import struct
import subprocess
import tempfile
from abc import abstractmethod
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from PIL import Image

from ...errors import CsalicError
from .base import ImageCodec, check_rgb
from .yuv420 import BIT_DEPTH, check_matrix, pad_even, read_yuv, rgb_to_yuv420, write_yuv, yuv420_to_rgb

HEADER = struct.Struct(">HH")


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "(no output)"


def check_qp(qp: Any, what: str, top: int) -> int:
    if isinstance(qp, bool) or not isinstance(qp, (int, np.integer)) or not 0 <= int(qp) <= top:
        raise CsalicError(f"{what} QP must be an integer 0..{top}, got {qp!r}")
    return int(qp)


class ExternalIntraCodec(ImageCodec):
    """One intra picture at one QP through an encoder and a decoder program."""

    label = ""          # "VVC", "HEVC": names the tools in error messages
    suffix = ".bin"     # the bitstream file's suffix
    max_qp = 51         # HEVC's; VVC's is 63

    def __init__(self, qp: int, *, timeout: float = 900.0, matrix: str = "bt601",
                 workdir: str | os.PathLike | None = None, extra_args: Sequence[str] = ()):
        self.qp = check_qp(qp, self.label, self.max_qp)
        self.setting = f"qp={self.qp}"
        self.matrix = check_matrix(matrix)
        self.timeout = float(timeout)
        self.workdir = Path(workdir) if workdir else None
        self.extra_args = [str(a) for a in extra_args]
        self.last_encoder_log: dict[str, Any] = {}

    @abstractmethod
    def encoder_command(self, yuv: Path, bitstream: Path, width: int, height: int) -> list[str]:
        """The encoder's argument list for one 10-bit 4:2:0 picture of ``width`` x ``height``."""

    @abstractmethod
    def decoder_command(self, bitstream: Path, recon: Path) -> list[str]:
        """The decoder's argument list, writing raw planar YUV to ``recon``."""

    def parse_log(self, text: str) -> dict[str, Any]:
        """What the encoder printed that is worth keeping (version, its own rate and PSNR)."""
        return {}

    def run(self, cmd: list[str], what: str) -> subprocess.CompletedProcess:
        """Run one tool; any failure becomes one line carrying the tool's last stderr line."""
        tool = Path(cmd[0]).name
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  errors="replace", timeout=self.timeout, check=False)
        except FileNotFoundError:
            raise CsalicError(f"{what} {cmd[0]} not found") from None
        except PermissionError:
            raise CsalicError(f"{what} {cmd[0]} is not executable") from None
        except subprocess.TimeoutExpired:
            raise CsalicError(f"{what} {tool} did not finish within {self.timeout:.0f} s") from None
        if proc.returncode != 0:
            raise CsalicError(f"{what} {tool} failed (exit {proc.returncode}): "
                              f"{last_line(proc.stderr) if proc.stderr.strip() else last_line(proc.stdout)}")
        return proc

    @contextlib.contextmanager
    def _tempdir(self) -> Iterator[Path]:
        if self.workdir is not None:
            self.workdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"csalic-{self.name}-", dir=self.workdir) as d:
            yield Path(d)

    def encode(self, img: Image.Image) -> bytes:
        rgb = np.asarray(check_rgb(img), dtype=np.uint8)
        h, w = rgb.shape[:2]
        if w > 0xFFFF or h > 0xFFFF:
            raise CsalicError(f"image {w}x{h} is too large for the {self.label} anchor (max 65535 per side)")
        padded = pad_even(rgb)
        ph, pw = padded.shape[:2]
        with self._tempdir() as d:
            yuv, bit = d / "input.yuv", d / f"bitstream{self.suffix}"
            write_yuv(yuv, rgb_to_yuv420(padded, BIT_DEPTH, self.matrix))
            cmd = self.encoder_command(yuv, bit, pw, ph)
            proc = self.run(cmd, f"{self.label} encoder")
            self.last_encoder_log = self.parse_log(proc.stdout + "\n" + proc.stderr)
            if not bit.is_file() or bit.stat().st_size == 0:
                raise CsalicError(f"{self.label} encoder {Path(cmd[0]).name} exited 0 but wrote no bitstream")
            return HEADER.pack(w, h) + bit.read_bytes()

    def decode(self, data: bytes) -> Image.Image:
        if len(data) <= HEADER.size:
            raise CsalicError(f"{self.label} anchor data is truncated ({len(data)} bytes)")
        w, h = HEADER.unpack_from(data)
        if w == 0 or h == 0:
            raise CsalicError(f"{self.label} anchor data has a zero size in its header")
        pw, ph = w + w % 2, h + h % 2
        with self._tempdir() as d:
            bit, rec = d / f"bitstream{self.suffix}", d / "recon.yuv"
            bit.write_bytes(data[HEADER.size:])
            cmd = self.decoder_command(bit, rec)
            self.run(cmd, f"{self.label} decoder")
            if not rec.is_file():
                raise CsalicError(f"{self.label} decoder {Path(cmd[0]).name} exited 0 but wrote no picture")
            (y, cb, cr), depth = read_yuv(rec, pw, ph)
        rgb = yuv420_to_rgb(y, cb, cr, depth, self.matrix)[:h, :w]
        return Image.fromarray(np.ascontiguousarray(rgb), "RGB")

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "qp": self.qp,
                "input": f"YCbCr 4:2:0 10-bit full range ({self.matrix}), odd sizes edge-padded to even",
                "rate_overhead": "4-byte size header counted in the rate"}
