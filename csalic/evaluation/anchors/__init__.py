"""Traditional codecs behind the :class:`ImageCodec` protocol: the anchor and the extra baselines.

``get_anchor("vvc", 32)``, ``get_anchor("hevc-qp", 40)``, ``get_anchor("hevc", 50)``, ...
build one operating point.  The paper's anchor is VVC-Intra, through the FFmpeg
that imageio-ffmpeg bundles unless another encoder is configured; should no VVC
encoder run, HEVC-Intra stands in (:func:`primary_anchor` says which and why),
and every table names the anchor and the tool it used.
"""

from __future__ import annotations

import os
from typing import Any

from ...errors import CsalicError
from ...names import QP_CODECS
from .base import ImageCodec, Uncompressed, setting_tag
from .pillow_codecs import AVIF, JPEG, PILLOW_CODECS, HEVCIntra, WebP, avif_available, heif_available
from .published import load_published, published_curves
from .vvc import QPS as VVC_QPS
from .vvc import VVCIntra, find_vvc_tools, vvc_status
from .x265 import HEVCIntraQP

ANCHOR_NAMES = ("vvc", "hevc-qp", "hevc", "jpeg", "webp", "avif")
LABELS = {"vvc": "VVC-Intra", "hevc-qp": "HEVC-Intra (x265 via FFmpeg)", "hevc": "HEVC-Intra (x265 via pillow-heif)",
          "jpeg": "JPEG",
          "webp": "WebP", "avif": "AVIF", "none": "Uncompressed"}


def get_anchor(name: str, value: int, *, vvc_encoder: str | os.PathLike | None = None,
               vvc_decoder: str | os.PathLike | None = None, **vvc_options: Any) -> ImageCodec:
    """``value`` is the QP for ``vvc`` and ``hevc-qp``, and the quality (1..100) for the Pillow codecs."""
    if name == "vvc":
        return VVCIntra(value, vvc_encoder, vvc_decoder, **vvc_options)
    if name == "hevc-qp":
        return HEVCIntraQP(value)
    if name in PILLOW_CODECS:
        return PILLOW_CODECS[name](value)
    raise CsalicError(f"unknown anchor {name!r}; choose one of {', '.join(ANCHOR_NAMES)}")


def available_anchors(vvc_encoder: str | os.PathLike | None = None,
                      vvc_decoder: str | os.PathLike | None = None) -> dict[str, tuple[bool, str]]:
    """name -> (usable here, what was found or why not)."""
    import PIL

    pil = (True, f"Pillow {PIL.__version__}")
    heif, avif = heif_available(), avif_available()
    try:
        x265 = (True, HEVCIntraQP(32).tool())
    except CsalicError as exc:
        x265 = (False, str(exc))
    return {
        "vvc": vvc_status(vvc_encoder, vvc_decoder),
        "hevc-qp": x265,
        "hevc": (True, "pillow-heif (libheif + x265)") if heif[0] else heif,
        "jpeg": pil,
        "webp": pil,
        "avif": pil if avif[0] else avif,
    }


def primary_anchor(preferred: str = "vvc", vvc_encoder: str | os.PathLike | None = None,
                   vvc_decoder: str | os.PathLike | None = None) -> tuple[str, str]:
    """(anchor name, reason): VVC-Intra when an encoder is found, else HEVC-Intra with the reason."""
    if preferred not in ("vvc", "hevc"):
        raise CsalicError(f"anchors.primary must be vvc or hevc, got {preferred!r}")
    if preferred == "vvc":
        ok, why = vvc_status(vvc_encoder, vvc_decoder)
        if ok:
            return "vvc", why
        return "hevc", f"HEVC-Intra stands in for VVC-Intra ({why.split(':')[0]})"
    return "hevc", "anchors.primary is hevc"


__all__ = [
    "ANCHOR_NAMES", "AVIF", "HEVCIntra", "HEVCIntraQP", "ImageCodec", "JPEG", "LABELS", "QP_CODECS", "Uncompressed",
    "VVCIntra", "VVC_QPS",
    "WebP", "available_anchors", "avif_available", "find_vvc_tools", "get_anchor", "heif_available",
    "load_published", "primary_anchor", "published_curves", "setting_tag", "vvc_status",
]
