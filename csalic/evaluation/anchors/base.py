"""The one protocol for "something that codes an image at one operating point".

The evaluator only ever calls ``encode`` and ``decode`` and counts ``len(bytes)``,
so a learned codec, an external VVC binary and a Pillow plugin are measured the
same way: the rate is the size of a real, self-contained file that ``decode``
turns back into the image, never a model's estimate.
"""

from __future__ import annotations

import io
import re
from abc import ABC, abstractmethod
from typing import Any

from PIL import Image

from ...errors import CsalicError


class ImageCodec(ABC):
    """One codec at one setting.

    ``name`` is the method's short name (``vvc``, ``hevc``, ``jpeg``, ``csalic-full``,
    ...), ``setting`` the operating point as ``key=value`` (``qp=32``,
    ``quality=50``, ``lambda=0.0025``); together they name a result folder.
    """

    name: str = ""
    setting: str = ""

    @abstractmethod
    def encode(self, img: Image.Image) -> bytes:
        """8-bit RGB image -> the complete file a decoder needs (its length is the rate)."""

    @abstractmethod
    def decode(self, data: bytes) -> Image.Image:
        """Bytes from :meth:`encode` -> 8-bit RGB image of the original size."""

    def describe(self) -> dict[str, Any]:
        """Provenance stored with every result: enough to rerun the same operating point."""
        return {"codec": self.name, "setting": self.setting}

    @property
    def setting_tag(self) -> str:
        """``qp=32`` -> ``qp_32``: the setting as a folder name."""
        return setting_tag(self.setting)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.setting}>"


def setting_tag(setting: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", setting.replace("=", "_")) or "default"


def open_rgb(data: bytes, what: str) -> Image.Image:
    """Decode an in-memory image file to RGB, turning decoder failures into one line."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return im.convert("RGB")
    except Exception as exc:  # PIL raises many types for damaged data
        raise CsalicError(f"cannot decode {what} data ({type(exc).__name__}: {str(exc)[:120]})") from None


def check_rgb(img: Image.Image) -> Image.Image:
    if not isinstance(img, Image.Image):
        raise CsalicError(f"expected a PIL image, got {type(img).__name__}")
    return img if img.mode == "RGB" else img.convert("RGB")


class Uncompressed(ImageCodec):
    """No compression: the task network's ceiling.

    The bytes are a binary PPM (header + raw RGB), so the recorded rate is the
    honest 24 bpp (plus a few header bytes) rather than zero or a placeholder.
    """

    name = "none"
    setting = "uncompressed"

    def encode(self, img: Image.Image) -> bytes:
        buf = io.BytesIO()
        check_rgb(img).save(buf, format="PPM")
        return buf.getvalue()

    def decode(self, data: bytes) -> Image.Image:
        return open_rgb(data, "PPM")

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "format": "binary PPM (raw 8-bit RGB)", "lossless": True}
