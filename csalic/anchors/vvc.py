"""VVC-Intra, the paper's anchor, through an external encoder (no VVC encoder is on PyPI or Debian).

Recipe (MPEG VCM image anchors): RGB -> YCbCr 4:2:0, 10 bit, full range, raw
planar little-endian YUV written here with numpy; odd sizes padded to even by
edge replication and cropped back after decoding; one picture coded intra at
QP 22/27/32/37/42/47; decoded back to RGB.  The matrix is BT.601 by default,
the same as the codec's own colour transform (:mod:`csalic.color`); ``matrix=
"bt709"`` is available.  Chroma is downsampled by 2x2 averaging (centre-sited)
and upsampled bilinearly.

Tools: Fraunhofer ``vvencapp`` (decoder ``vvdecapp``) or VTM ``EncoderAppStatic``
(``DecoderAppStatic``), found on PATH or at a configured path.  vvencapp runs with
``--qpa 0`` (no perceptual QP adaptation: a PSNR-optimised anchor).  VTM runs with
the all-intra settings on the command line; pass VTM's ``cfg/encoder_intra_vtm.cfg``
as ``config`` to get the exact CTC configuration.

The bytes returned by :meth:`VVCIntra.encode` are the VVC bitstream preceded by a
4-byte header (original width and height, 2 x uint16 big-endian) that lets odd
sizes crop back exactly; the header is counted in the rate (0.0001 bpp at 640x480).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from PIL import Image

from ..errors import CsalicError
from .base import ImageCodec, check_rgb

QPS: tuple[int, ...] = (22, 27, 32, 37, 42, 47)
BIT_DEPTH = 10
ENCODER_NAMES = ("vvencapp", "EncoderAppStatic", "EncoderApp")
DECODER_NAMES = {"vvenc": ("vvdecapp", "DecoderAppStatic", "DecoderApp"),
                 "vtm": ("DecoderAppStatic", "DecoderApp", "vvdecapp")}
HEADER = struct.Struct(">HH")
INSTALL_HINT = (
    "no VVC encoder found: build vvenc (git clone https://github.com/fraunhoferhhi/vvenc; "
    "cmake -S vvenc -B vvenc/build -DCMAKE_BUILD_TYPE=Release; cmake --build vvenc/build -j) and put "
    "vvencapp on PATH, or give its path as anchors.vvc_encoder: /path/to/vvencapp (or --vvc-encoder); "
    "VTM's EncoderAppStatic works too"
)
DECODER_HINT = (
    "no VVC decoder found for {enc}: build vvdec (github.com/fraunhoferhhi/vvdec, cmake) and put vvdecapp on "
    "PATH or beside the encoder, or pass --vvc-decoder /path/to/vvdecapp (VTM's DecoderAppStatic works too)"
)

_MATRICES = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}


# ----------------------------------------------------------------------------- colour and raw YUV

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
        raise CsalicError(f"VVC decoder wrote {len(raw)} bytes; a {width}x{height} 4:2:0 picture has "
                          f"{2 * (n + 2 * c)} (10 bit) or {n + 2 * c} (8 bit): wrong decoder or damaged bitstream")
    y = arr[:n].reshape(height, width)
    cb = arr[n:n + c].reshape(height // 2, width // 2)
    cr = arr[n + c:n + 2 * c].reshape(height // 2, width // 2)
    return (y, cb, cr), depth


# ----------------------------------------------------------------------------- finding the tools

@dataclass(frozen=True)
class VVCTools:
    encoder: Path
    decoder: Path
    flavour: str  # "vvenc" or "vtm"


def _flavour(path: Path) -> str:
    low = path.name.lower()
    if "vvenc" in low:
        return "vvenc"
    if "encoderapp" in low:
        return "vtm"
    raise CsalicError(f"cannot tell whether {path} is vvencapp or VTM's EncoderApp from its name: "
                      "rename it or pass flavour='vvenc' or 'vtm'")


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


def find_vvc_tools(encoder: str | os.PathLike | None = None, decoder: str | os.PathLike | None = None,
                   flavour: str | None = None) -> VVCTools:
    """The encoder/decoder pair to use, or one CsalicError line saying how to install them."""
    if encoder is not None:
        enc = _resolve(encoder, "VVC encoder")
    else:
        found = next((shutil.which(n) for n in ENCODER_NAMES if shutil.which(n)), None)
        if found is None:
            raise CsalicError(INSTALL_HINT)
        enc = Path(found)
    fl = flavour or _flavour(enc)
    if fl not in DECODER_NAMES:
        raise CsalicError(f"unknown VVC tool flavour {fl!r}; use 'vvenc' or 'vtm'")
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
    return True, f"{tools.flavour}: {tools.encoder} / {tools.decoder}"


# ----------------------------------------------------------------------------- encoder output

_VERSION = re.compile(r"(?:ver\.|Version)\s*\[?\s*([0-9][\w.\-+]*)")
_SUMMARY = re.compile(r"^\s*(?:\S+\s+\[\w+\]:\s*)?(\d+)\s+a\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$",
                      re.M)
_AVG_BITRATE = re.compile(r"avg_bitrate=\s*([\d.]+)\s*kbps")


def parse_encoder_output(text: str) -> dict[str, Any]:
    """The version and the summary row (frames, kbps, Y/U/V/YUV PSNR of the 10-bit YUV) that
    vvencapp and VTM print; for the log only -- the rate is always the bitstream's size."""
    out: dict[str, Any] = {}
    if m := _VERSION.search(text):
        out["version"] = m.group(1)
    if m := _SUMMARY.search(text):
        out.update(frames=int(m.group(1)), bitrate_kbps=float(m.group(2)), psnr_y=float(m.group(3)),
                   psnr_u=float(m.group(4)), psnr_v=float(m.group(5)), psnr_yuv=float(m.group(6)))
    elif m := _AVG_BITRATE.search(text):
        out["bitrate_kbps"] = float(m.group(1))
    return out


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "(no output)"


# ----------------------------------------------------------------------------- the codec

class VVCIntra(ImageCodec):
    """One picture, all-intra, at one QP, through vvencapp or VTM."""

    name = "vvc"

    def __init__(self, qp: int, encoder: str | os.PathLike | None = None, decoder: str | os.PathLike | None = None,
                 *, flavour: str | None = None, preset: str = "medium", config: str | os.PathLike | None = None,
                 threads: int | None = None, timeout: float = 900.0, matrix: str = "bt601",
                 workdir: str | os.PathLike | None = None, extra_args: Sequence[str] = ()):
        if isinstance(qp, bool) or not isinstance(qp, (int, np.integer)) or not 0 <= int(qp) <= 63:
            raise CsalicError(f"VVC QP must be an integer 0..63, got {qp!r}")
        _coefficients(matrix)
        self.qp = int(qp)
        self.setting = f"qp={self.qp}"
        self.tools = find_vvc_tools(encoder, decoder, flavour)
        self.preset = preset
        self.config = Path(config) if config else None
        if self.config is not None and not self.config.is_file():
            raise CsalicError(f"VVC config file {self.config} not found")
        self.threads = threads
        self.timeout = float(timeout)
        self.matrix = matrix
        self.workdir = Path(workdir) if workdir else None
        self.extra_args = [str(a) for a in extra_args]
        self.last_encoder_log: dict[str, Any] = {}

    # -- commands: built here, run by :meth:`run` (never through a shell)
    def encoder_command(self, yuv: Path, bitstream: Path, width: int, height: int) -> list[str]:
        enc = str(self.tools.encoder)
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
        cmd = [str(self.tools.decoder), "-b", str(bitstream), "-o", str(recon)]
        if "vvdec" not in self.tools.decoder.name.lower():
            cmd += ["-d", "10"]  # VTM's decoder: write 10-bit planes
        return cmd

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
                              f"{_last_line(proc.stderr) if proc.stderr.strip() else _last_line(proc.stdout)}")
        return proc

    @contextlib.contextmanager
    def _tempdir(self) -> Iterator[Path]:
        if self.workdir is not None:
            self.workdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="csalic-vvc-", dir=self.workdir) as d:
            yield Path(d)

    def encode(self, img: Image.Image) -> bytes:
        rgb = np.asarray(check_rgb(img), dtype=np.uint8)
        h, w = rgb.shape[:2]
        if w > 0xFFFF or h > 0xFFFF:
            raise CsalicError(f"image {w}x{h} is too large for the VVC anchor (max 65535 per side)")
        padded = pad_even(rgb)
        ph, pw = padded.shape[:2]
        with self._tempdir() as d:
            yuv, bit = d / "input.yuv", d / "bitstream.266"
            write_yuv(yuv, rgb_to_yuv420(padded, BIT_DEPTH, self.matrix))
            proc = self.run(self.encoder_command(yuv, bit, pw, ph), "VVC encoder")
            self.last_encoder_log = parse_encoder_output(proc.stdout + "\n" + proc.stderr)
            if not bit.is_file() or bit.stat().st_size == 0:
                raise CsalicError(f"VVC encoder {self.tools.encoder.name} exited 0 but wrote no bitstream")
            return HEADER.pack(w, h) + bit.read_bytes()

    def decode(self, data: bytes) -> Image.Image:
        if len(data) <= HEADER.size:
            raise CsalicError(f"VVC anchor data is truncated ({len(data)} bytes)")
        w, h = HEADER.unpack_from(data)
        if w == 0 or h == 0:
            raise CsalicError("VVC anchor data has a zero size in its header")
        pw, ph = w + w % 2, h + h % 2
        with self._tempdir() as d:
            bit, rec = d / "bitstream.266", d / "recon.yuv"
            bit.write_bytes(data[HEADER.size:])
            self.run(self.decoder_command(bit, rec), "VVC decoder")
            if not rec.is_file():
                raise CsalicError(f"VVC decoder {self.tools.decoder.name} exited 0 but wrote no picture")
            (y, cb, cr), depth = read_yuv(rec, pw, ph)
        rgb = yuv420_to_rgb(y, cb, cr, depth, self.matrix)[:h, :w]
        return Image.fromarray(np.ascontiguousarray(rgb), "RGB")

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "qp": self.qp, "flavour": self.tools.flavour,
                "encoder": str(self.tools.encoder), "decoder": str(self.tools.decoder),
                "encoder_version": self.last_encoder_log.get("version"),
                "preset": self.preset if self.tools.flavour == "vvenc" else None,
                "config": str(self.config) if self.config else None,
                "input": f"YCbCr 4:2:0 10-bit full range ({self.matrix}), odd sizes edge-padded to even",
                "rate_overhead": "4-byte size header counted in the rate"}
