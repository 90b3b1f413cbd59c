"""The FFmpeg that imageio-ffmpeg ships: VVenC (libvvenc), x265 and their decoders, found with no set-up.

imageio-ffmpeg >= 0.8.1 bundles a static FFmpeg 9 built with libvvenc (Fraunhofer
VVenC 1.15), libx265 and FFmpeg's native VVC and HEVC decoders, so the paper's
VVC-Intra anchor runs wherever ``pip install csalic`` ran.  ``IMAGEIO_FFMPEG_EXE``
(imageio-ffmpeg's own setting) or an explicit path selects another FFmpeg; it
is checked for the encoder a codec needs before anything is coded.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ...errors import CsalicError

INSTALL_HINT = "the bundled FFmpeg comes with imageio-ffmpeg>=0.8.1: pip install 'imageio-ffmpeg>=0.8.1'"


@dataclass(frozen=True)
class FFmpegInfo:
    path: Path
    version: str
    encoders: frozenset[str]
    decoders: frozenset[str]

    def require(self, encoder: str, decoder: str) -> "FFmpegInfo":
        missing = ([f"encoder {encoder}"] if encoder not in self.encoders else []) + \
                  ([f"decoder {decoder}"] if decoder not in self.decoders else [])
        if missing:
            raise CsalicError(f"FFmpeg {self.path} ({self.version}) has no {' and no '.join(missing)}: "
                              f"use the one imageio-ffmpeg>=0.8.1 bundles (unset IMAGEIO_FFMPEG_EXE)")
        return self


def bundled_ffmpeg() -> Path:
    """imageio-ffmpeg's FFmpeg (or the one ``IMAGEIO_FFMPEG_EXE`` names)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise CsalicError(f"no FFmpeg for the VVC and HEVC anchors: {INSTALL_HINT}") from None
    try:
        return Path(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as exc:  # no binary for this platform and none on PATH
        raise CsalicError(f"imageio-ffmpeg found no FFmpeg binary ({str(exc).splitlines()[0][:120]}): "
                          f"{INSTALL_HINT}") from None


def _codec_names(text: str) -> frozenset[str]:
    """Names from ``ffmpeg -encoders`` / ``-decoders``: lines like `` V....D libvvenc   libvvenc H.266``."""
    return frozenset(m.group(1) for m in re.finditer(r"^\s[VAS][\w.]{5}\s+(\S+)", text, re.M))


@lru_cache(maxsize=8)
def ffmpeg_info(path: str | os.PathLike) -> FFmpegInfo:
    """Version and codec lists of one FFmpeg binary (asked once per process)."""
    exe = str(path)

    def ask(*args: str) -> str:
        try:
            proc = subprocess.run([exe, "-hide_banner", *args], stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, errors="replace", timeout=60, check=False)
        except (FileNotFoundError, PermissionError, OSError):
            hint = ("IMAGEIO_FFMPEG_EXE names it: unset it to use the bundled FFmpeg"
                    if os.environ.get("IMAGEIO_FFMPEG_EXE") == exe else INSTALL_HINT)
            raise CsalicError(f"FFmpeg {exe} cannot be run: {hint}") from None
        except subprocess.TimeoutExpired:
            raise CsalicError(f"FFmpeg {exe} did not answer `{' '.join(args)}` within 60 s") from None
        if proc.returncode != 0:
            raise CsalicError(f"FFmpeg {exe} failed on `{' '.join(args)}` (exit {proc.returncode})")
        return proc.stdout

    first = ask("-version").splitlines()[:1]
    m = re.match(r"ffmpeg version (\S+)", first[0] if first else "")
    return FFmpegInfo(Path(exe), m.group(1) if m else "unknown version", _codec_names(ask("-encoders")),
                      _codec_names(ask("-decoders")))


def short_version(version: str) -> str:
    """``n9.0.2-17-g2a571b6068-20260930`` -> ``9.0.2``."""
    m = re.match(r"n?(\d+(?:\.\d+)*)", version)
    return m.group(1) if m else version


def raw_input_args(yuv: Path, width: int, height: int) -> list[str]:
    """FFmpeg's input side for one raw 10-bit 4:2:0 picture."""
    return ["-f", "rawvideo", "-pix_fmt", "yuv420p10le", "-s:v", f"{width}x{height}", "-r", "1", "-i", str(yuv),
            "-frames:v", "1"]


def decode_command(exe: Path, container: str, bitstream: Path, recon: Path) -> list[str]:
    """Decode one raw Annex-B picture to raw 10-bit 4:2:0 planes (same pixel format: no conversion)."""
    return [str(exe), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-threads", "1", "-f", container,
            "-i", str(bitstream), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "yuv420p10le", str(recon)]
