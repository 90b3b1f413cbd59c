"""Traditional codecs available without any external binary: HEVC-Intra, JPEG, WebP, AVIF.

HEVC-Intra goes through pillow-heif (libheif + x265, one intra-coded picture in a
HEIF file); JPEG, WebP and AVIF through Pillow's own plugins.  The rate is the
size of the whole file, container included (a HEIF file carries a few hundred
bytes of boxes; at 320x320 that is ~0.02 bpp, at COCO sizes under 0.01 bpp).
All use Pillow's default 4:2:0 chroma subsampling where the format has one.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Any

from PIL import Image

from ...errors import CsalicError
from .base import ImageCodec, check_rgb, open_rgb


def _quality(q: Any, name: str) -> int:
    bad = CsalicError(f"{name} quality must be an integer 1..100, got {q!r}")
    if isinstance(q, bool) or (isinstance(q, float) and not q.is_integer()):
        raise bad
    try:
        qi = int(q)
    except (TypeError, ValueError):
        raise bad from None
    if not 1 <= qi <= 100:
        raise bad
    return qi


class PillowCodec(ImageCodec):
    """A Pillow save/open round trip at one ``quality``."""

    format: str = ""
    label: str = ""
    save_options: dict[str, Any] = {}

    def __init__(self, quality: int):
        self.quality = _quality(quality, self.label or self.name)
        self.setting = f"quality={self.quality}"

    def encode(self, img: Image.Image) -> bytes:
        buf = io.BytesIO()
        check_rgb(img).save(buf, format=self.format, quality=self.quality, **self.save_options)
        return buf.getvalue()

    def decode(self, data: bytes) -> Image.Image:
        return open_rgb(data, self.label)

    def describe(self) -> dict[str, Any]:
        import PIL

        return {**super().describe(), "quality": self.quality, "format": self.format,
                "library": f"Pillow {PIL.__version__}", "options": dict(self.save_options)}


class JPEG(PillowCodec):
    name, format, label = "jpeg", "JPEG", "JPEG"


class WebP(PillowCodec):
    name, format, label = "webp", "WEBP", "WebP"


class AVIF(PillowCodec):
    name, format, label = "avif", "AVIF", "AVIF"

    def __init__(self, quality: int):
        ok, why = avif_available()
        if not ok:
            raise CsalicError(why)
        super().__init__(quality)


@lru_cache(maxsize=1)
def _register_heif() -> str:
    try:
        import pillow_heif
    except ImportError:
        raise CsalicError("HEVC-Intra needs pillow-heif: pip install pillow-heif") from None
    pillow_heif.register_heif_opener()
    info = pillow_heif.libheif_info()
    if "x265" not in str(info.get("encoders", {})) and "HEVC" not in str(info.get("HEIF", "")):
        raise CsalicError("this pillow-heif build has no HEVC (x265) encoder: reinstall pillow-heif from PyPI")
    return f"pillow-heif {pillow_heif.__version__}, libheif {info.get('libheif')}, {info.get('HEIF')}"


class HEVCIntra(PillowCodec):
    """HEVC intra through libheif/x265 at a quality 1..100 (:class:`csalic.evaluation.anchors.x265.HEVCIntraQP` codes at a QP)."""

    name, format, label = "hevc", "HEIF", "HEVC-Intra (HEIF)"
    save_options = {"chroma": 420}

    def __init__(self, quality: int):
        self._library = _register_heif()
        super().__init__(quality)

    def describe(self) -> dict[str, Any]:
        import pillow_heif

        return {**super().describe(), "library": self._library,
                "label": f"HEVC-Intra (x265 via pillow-heif {pillow_heif.__version__}, HEIF 4:2:0)"}


def avif_available() -> tuple[bool, str]:
    """(True, "") when Pillow can write AVIF, else (False, why) -- AVIF is then skipped, never faked."""
    from PIL import features

    try:
        ok = bool(features.check("avif"))
    except (ValueError, KeyError):
        ok = False
    if ok:
        return True, ""
    return False, ("AVIF is not available in this Pillow (PIL.features.check('avif') is False): "
                   "install Pillow >= 11.3 wheels from PyPI, or drop avif from anchors.extra")


def heif_available() -> tuple[bool, str]:
    try:
        _register_heif()
    except CsalicError as exc:
        return False, str(exc)
    return True, ""


PILLOW_CODECS: dict[str, type[PillowCodec]] = {"hevc": HEVCIntra, "jpeg": JPEG, "webp": WebP, "avif": AVIF}
