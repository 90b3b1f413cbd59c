"""HEVC-Intra at a QP: x265 through the bundled FFmpeg, on the same 4:2:0 10-bit planes as VVC-Intra.

pillow-heif's HEVC (:class:`csalic.evaluation.anchors.pillow_codecs.HEVCIntra`) takes a
quality 1..100, whose lowest setting still spends about 0.06 bpp on the demo's
images, above the rates where a study's codecs work.  Coding at a QP (0..51)
reaches down to a few hundred bytes a picture, so this curve spans the same
range as VVC-Intra's, with the same recipe (:mod:`csalic.evaluation.anchors.yuv420`).
``info=0`` keeps x265's settings SEI (about 2 kB of text) out of the bitstream.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Sequence

from . import ffmpeg
from .external import ExternalIntraCodec

_VERSION = re.compile(r"HEVC encoder version\s+(\S+)")


class HEVCIntraQP(ExternalIntraCodec):
    """One picture, all-intra, at one QP, through FFmpeg's libx265 (Main 10) and FFmpeg's HEVC decoder."""

    name = "hevc-qp"
    label = "HEVC"
    suffix = ".265"

    def __init__(self, qp: int, *, ffmpeg_exe: str | os.PathLike | None = None, preset: str = "medium",
                 threads: int = 1, timeout: float = 900.0, matrix: str = "bt601",
                 workdir: str | os.PathLike | None = None, extra_args: Sequence[str] = ()):
        super().__init__(qp, timeout=timeout, matrix=matrix, workdir=workdir, extra_args=extra_args)
        exe = Path(ffmpeg_exe) if ffmpeg_exe else ffmpeg.bundled_ffmpeg()
        self.info = ffmpeg.ffmpeg_info(exe).require("libx265", "hevc")
        self.preset = preset
        self.threads = int(threads)

    def encoder_command(self, yuv: Path, bitstream: Path, width: int, height: int) -> list[str]:
        x265 = f"qp={self.qp}:keyint=1:info=0:pools={self.threads}:frame-threads=1"
        return [str(self.info.path), "-hide_banner", "-nostdin", "-loglevel", "info", "-y",
                *ffmpeg.raw_input_args(yuv, width, height), "-c:v", "libx265", "-preset", self.preset,
                "-x265-params", x265, *self.extra_args, "-f", "hevc", str(bitstream)]

    def decoder_command(self, bitstream: Path, recon: Path) -> list[str]:
        return ffmpeg.decode_command(self.info.path, "hevc", bitstream, recon)

    def parse_log(self, text: str) -> dict[str, Any]:
        m = _VERSION.search(text)
        return {"version": m.group(1)} if m else {}

    def tool(self) -> str:
        version = self.last_encoder_log.get("version")
        x265 = f"x265 {version.split('+')[0]}" if version else "x265"
        return f"{x265} via FFmpeg {ffmpeg.short_version(self.info.version)}"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "tool": self.tool(), "label": f"HEVC-Intra ({self.tool()}, 4:2:0 10-bit)",
                "encoder": str(self.info.path), "encoder_version": self.last_encoder_log.get("version"),
                "ffmpeg_version": self.info.version, "preset": self.preset, "threads": self.threads}
