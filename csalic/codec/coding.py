"""Image <-> ``.csa`` bytes with a loaded codec: what ``csalic compress``/``decompress`` run."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import bitstream
from ..errors import BitstreamError
from .model import CSALIC


@dataclass(frozen=True)
class Encoded:
    data: bytes
    height: int
    width: int

    @property
    def bpp(self) -> float:
        """Real rate: every byte of the file, over the original pixels."""
        return len(self.data) * 8.0 / (self.height * self.width)


def encode_tensor(model: CSALIC, x: torch.Tensor, fingerprint: bytes | None = None) -> Encoded:
    """(1, 3, H, W) RGB in [0, 1] -> a complete ``.csa`` file in memory."""
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise ValueError(f"expected one RGB image (1, 3, H, W), got {tuple(x.shape)}")
    device = next(model.parameters()).device
    out = model.compress(x.to(device))
    strings = [s[0] for s in out["strings"]]
    h, w = out["shape"]
    data = bitstream.encode(fingerprint or model.fingerprint(), h, w, strings)
    return Encoded(data, h, w)


def decode_bytes(model: CSALIC, data: bytes, fingerprint: bytes | None = None,
                 max_pixels: int = bitstream.DEFAULT_MAX_PIXELS) -> torch.Tensor:
    """A ``.csa`` file's bytes -> (1, 3, H, W) RGB in [0, 1]; foreign or damaged files are refused."""
    payload = bitstream.decode(
        data,
        expected_fingerprint=fingerprint or model.fingerprint(),
        expected_strings=model.num_strings,
        max_pixels=max_pixels,
    )
    return decode_payload(model, payload)


def decode_payload(model: CSALIC, payload: bitstream.Payload) -> torch.Tensor:
    try:
        out = model.decompress([[s] for s in payload.strings], (payload.height, payload.width))
    except (ValueError, RuntimeError) as exc:  # the rANS decoder's own checks
        raise BitstreamError(f"entropy-coded data is inconsistent with its header ({exc})") from None
    return out["x_hat"]
