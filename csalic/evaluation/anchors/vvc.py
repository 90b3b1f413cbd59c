"""VVC-Intra, the paper's anchor: VVenC through the bundled FFmpeg by default, vvencapp or VTM on request.

Recipe (MPEG VCM image anchors): RGB -> YCbCr 4:2:0, 10 bit, full range
(:mod:`csalic.evaluation.anchors.yuv420`, converted here, never by the tool), one picture
coded intra at one QP, decoded back to RGB.  The paper's QPs are 22/27/32/37/42/47;
VVC allows up to 63, which a study needs when its codecs work at lower rates.

Three flavours, one recipe:

``ffmpeg`` (the default, found with no configuration)
    The FFmpeg that imageio-ffmpeg >= 0.8.1 ships, built with libvvenc (Fraunhofer
    VVenC 1.15) and FFmpeg's native VVC decoder.  ``-qpa 0`` turns off perceptual QP
    adaptation (a PSNR-optimised anchor) and ``-f vvc`` writes raw Annex-B.  One
    encoder thread unless ``threads`` says otherwise.
``vvenc``
    Fraunhofer ``vvencapp`` / ``vvdecapp`` (``--qpa 0``), for exact CTC runs.
``vtm``
    VTM ``EncoderAppStatic`` / ``DecoderAppStatic`` with the all-intra settings on
    the command line; pass VTM's ``cfg/encoder_intra_vtm.cfg`` as ``config`` to get
    the exact CTC configuration.

``anchors.vvc_encoder`` (or ``--vvc-encoder``) names vvencapp, EncoderAppStatic or
an FFmpeg, by path or by a name on PATH; the flavour follows from the name.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ...errors import CsalicError
from . import ffmpeg
from .external import HEADER, ExternalIntraCodec  # noqa: F401  (HEADER: the rate overhead, for callers)
from .yuv420 import BIT_DEPTH, pad_even, read_yuv, rgb_to_yuv420, write_yuv, yuv420_to_rgb  # noqa: F401

QPS: tuple[int, ...] = (22, 27, 32, 37, 42, 47)
FLAVOURS = ("ffmpeg", "vvenc", "vtm")
DECODER_NAMES = {"vvenc": ("vvdecapp", "DecoderAppStatic", "DecoderApp"),
                 "vtm": ("DecoderAppStatic", "DecoderApp", "vvdecapp")}
INSTALL_HINT = (
    "no VVC encoder: the default is the FFmpeg bundled with imageio-ffmpeg>=0.8.1 (pip install "
    "'imageio-ffmpeg>=0.8.1'); for exact CTC runs build vvenc (github.com/fraunhoferhhi/vvenc, cmake) or VTM "
    "and give its path as anchors.vvc_encoder (or --vvc-encoder)"
)
DECODER_HINT = (
    "no VVC decoder found for {enc}: build vvdec (github.com/fraunhoferhhi/vvdec, cmake) and put vvdecapp on "
    "PATH or beside the encoder, or pass --vvc-decoder /path/to/vvdecapp (VTM's DecoderAppStatic works too)"
)


# ----------------------------------------------------------------------------- finding the tools

@dataclass(frozen=True)
class VVCTools:
    encoder: Path
    decoder: Path
    flavour: str  # "ffmpeg", "vvenc" or "vtm"
    version: str = ""  # FFmpeg's, for the ffmpeg flavour (the encoder's own comes from its log)


def _flavour(path: Path) -> str:
    low = path.name.lower()
    if "ffmpeg" in low:
        return "ffmpeg"
    if "vvenc" in low:
        return "vvenc"
    if "encoderapp" in low:
        return "vtm"
    raise CsalicError(f"cannot tell whether {path} is FFmpeg, vvencapp or VTM's EncoderApp from its name: "
                      "rename it or pass flavour='ffmpeg', 'vvenc' or 'vtm'")


def _resolve(path: str | os.PathLike, what: str) -> Path:
    p = Path(os.path.expanduser(str(path)))
    if not p.exists() and os.sep not in str(path):
        found = shutil.which(str(path))
        if found:
            return Path(found)
    if not p.is_file():
        raise CsalicError(f"{what} {p} not found")
    if not os.access(p, os.X_OK):
        raise CsalicError(f"{what} {p} is not executable (chmod +x it)")
    return p


def _ffmpeg_tools(exe: Path) -> VVCTools:
    info = ffmpeg.ffmpeg_info(exe).require("libvvenc", "vvc")
    return VVCTools(exe, exe, "ffmpeg", info.version)


def find_vvc_tools(encoder: str | os.PathLike | None = None, decoder: str | os.PathLike | None = None,
                   flavour: str | None = None) -> VVCTools:
    """The encoder/decoder pair to use, or one CsalicError line saying how to get them.

    No encoder given: the bundled FFmpeg (the same tool on every machine, so a
    study's anchor does not depend on what happens to be on PATH).
    """
    if flavour is not None and flavour not in FLAVOURS:
        raise CsalicError(f"unknown VVC tool flavour {flavour!r}; use one of {', '.join(FLAVOURS)}")
    if encoder is None:
        if flavour not in (None, "ffmpeg"):
            raise CsalicError(f"flavour {flavour!r} needs the encoder's path (anchors.vvc_encoder)")
        try:
            exe = ffmpeg.bundled_ffmpeg()
        except CsalicError:
            raise CsalicError(INSTALL_HINT) from None
        return _ffmpeg_tools(exe)
    enc = _resolve(encoder, "VVC encoder")
    fl = flavour or _flavour(enc)
    if fl == "ffmpeg":
        return _ffmpeg_tools(_resolve(decoder, "VVC decoder") if decoder is not None else enc)
    if decoder is not None:
        dec = _resolve(decoder, "VVC decoder")
    else:
        beside = [enc.parent / n for n in DECODER_NAMES[fl]]
        cand = next((p for p in beside if p.is_file() and os.access(p, os.X_OK)), None)
        if cand is None:
            w = next((shutil.which(n) for n in DECODER_NAMES[fl] if shutil.which(n)), None)
            cand = Path(w) if w else None
        if cand is None:
            raise CsalicError(DECODER_HINT.format(enc=enc))
        dec = cand
    return VVCTools(enc, dec, fl)


def vvc_status(encoder: str | os.PathLike | None = None, decoder: str | os.PathLike | None = None) -> tuple[bool, str]:
    try:
        tools = find_vvc_tools(encoder, decoder)
    except CsalicError as exc:
        return False, str(exc)
    if tools.flavour == "ffmpeg":
        return True, f"ffmpeg: VVenC via FFmpeg {ffmpeg.short_version(tools.version)} libvvenc ({tools.encoder})"
    return True, f"{tools.flavour}: {tools.encoder} / {tools.decoder}"


# ----------------------------------------------------------------------------- encoder output

_VERSION = re.compile(r"(?:libvvenc version:|ver\.|Version)\s*\[?\s*([0-9][\w.\-+]*)")
_SUMMARY = re.compile(r"^\s*(?:\S+\s+\[\w+\]:\s*)?(\d+)\s+a\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$",
                      re.M)
_AVG_BITRATE = re.compile(r"avg_bitrate=\s*([\d.]+)\s*kbps")


def parse_encoder_output(text: str) -> dict[str, Any]:
    """The version and the summary row (frames, kbps, Y/U/V/YUV PSNR of the 10-bit YUV) that
    vvencapp, VTM and FFmpeg's libvvenc print; for the log only -- the rate is always the bitstream's size."""
    out: dict[str, Any] = {}
    if m := _VERSION.search(text):
        out["version"] = m.group(1)
    if m := _SUMMARY.search(text):
        out.update(frames=int(m.group(1)), bitrate_kbps=float(m.group(2)), psnr_y=float(m.group(3)),
                   psnr_u=float(m.group(4)), psnr_v=float(m.group(5)), psnr_yuv=float(m.group(6)))
    elif m := _AVG_BITRATE.search(text):
        out["bitrate_kbps"] = float(m.group(1))
    return out


# ----------------------------------------------------------------------------- the codec

class VVCIntra(ExternalIntraCodec):
    """One picture, all-intra, at one QP, through FFmpeg's libvvenc, vvencapp or VTM."""

    name = "vvc"
    label = "VVC"
    suffix = ".266"
    max_qp = 63

    def __init__(self, qp: int, encoder: str | os.PathLike | None = None, decoder: str | os.PathLike | None = None,
                 *, flavour: str | None = None, preset: str = "medium", config: str | os.PathLike | None = None,
                 threads: int | None = None, timeout: float = 900.0, matrix: str = "bt601",
                 workdir: str | os.PathLike | None = None, extra_args: Sequence[str] = ()):
        super().__init__(qp, timeout=timeout, matrix=matrix, workdir=workdir, extra_args=extra_args)
        self.tools = find_vvc_tools(encoder, decoder, flavour)
        self.preset = preset
        self.config = Path(config) if config else None
        if self.config is not None and not self.config.is_file():
            raise CsalicError(f"VVC config file {self.config} not found")
        if self.config is not None and self.tools.flavour != "vtm":
            raise CsalicError("a VVC config file (--vvc-config) applies to VTM's EncoderApp only")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise CsalicError(f"VVC encoder threads must be a positive integer, got {threads!r}")
        self.threads = threads

    # -- commands: built here, run by :meth:`run` (never through a shell)
    def encoder_command(self, yuv: Path, bitstream: Path, width: int, height: int) -> list[str]:
        enc = str(self.tools.encoder)
        if self.tools.flavour == "ffmpeg":
            cmd = [enc, "-hide_banner", "-nostdin", "-loglevel", "verbose", "-y",
                   *ffmpeg.raw_input_args(yuv, width, height),
                   "-c:v", "libvvenc", "-preset", self.preset, "-qp", str(self.qp), "-qpa", "0",
                   "-threads", str(self.threads or 1), *self.extra_args, "-f", "vvc", str(bitstream)]
            return cmd
        if self.tools.flavour == "vvenc":
            cmd = [enc, "-i", str(yuv), "-s", f"{width}x{height}", "-c", "yuv420_10", "-r", "1", "-f", "1",
                   "--preset", self.preset, "-q", str(self.qp), "--qpa", "0", "--internal-bitdepth", "10",
                   "-o", str(bitstream)]
            if self.threads:
                cmd += ["-t", str(self.threads)]
        else:
            cmd = [enc] + (["-c", str(self.config)] if self.config else [])
            cmd += ["-i", str(yuv), "-b", str(bitstream), f"--SourceWidth={width}", f"--SourceHeight={height}",
                    "--InputBitDepth=10", "--InternalBitDepth=10", "--OutputBitDepth=10",
                    "--InputChromaFormat=420", "--FrameRate=1", "--FramesToBeEncoded=1", f"--QP={self.qp}",
                    "--IntraPeriod=1", "--GOPSize=1", "--ConformanceWindowMode=1"]
        return cmd + self.extra_args

    def decoder_command(self, bitstream: Path, recon: Path) -> list[str]:
        if self.tools.flavour == "ffmpeg":
            return ffmpeg.decode_command(self.tools.decoder, "vvc", bitstream, recon)
        cmd = [str(self.tools.decoder), "-b", str(bitstream), "-o", str(recon)]
        if "vvdec" not in self.tools.decoder.name.lower():
            cmd += ["-d", "10"]  # VTM's decoder: write 10-bit planes
        return cmd

    def parse_log(self, text: str) -> dict[str, Any]:
        return parse_encoder_output(text)

    def tool(self) -> str:
        """The tool and its version as tables name them, e.g. ``VVenC 1.15.0 via FFmpeg 9.0.2 libvvenc``."""
        version = self.last_encoder_log.get("version")
        if self.tools.flavour == "ffmpeg":
            venc = f"VVenC {version.removesuffix('-dev')}" if version else "VVenC"
            return f"{venc} via FFmpeg {ffmpeg.short_version(self.tools.version)} libvvenc"
        name = "VVenC (vvencapp)" if self.tools.flavour == "vvenc" else "VTM"
        return f"{name} {version}" if version else name

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "flavour": self.tools.flavour, "tool": self.tool(),
                "label": f"VVC-Intra ({self.tool()}, 4:2:0 10-bit)",
                "encoder": str(self.tools.encoder), "decoder": str(self.tools.decoder),
                "encoder_version": self.last_encoder_log.get("version"),
                "ffmpeg_version": self.tools.version or None,
                "preset": self.preset if self.tools.flavour in ("ffmpeg", "vvenc") else None,
                "threads": (self.threads or 1) if self.tools.flavour == "ffmpeg" else self.threads,
                "config": str(self.config) if self.config else None}
