"""RGB <-> YCbCr, the split into luma I_L and chroma I_C that CSA-LIC codes differently.

Standard: ITU-R BT.601 luma weights, full range (the JPEG/JFIF convention), with the
chroma centred on zero and not offset by 0.5: for RGB in [0, 1],
Y is in [0, 1] and Cb, Cr are in [-0.5, 0.5].  Centring keeps the SCSM's dot-product
similarities (Eq. 1) symmetric around neutral grey.  The conversion is one linear
map, so it is differentiable and its inverse is exact up to float rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor

KR, KG, KB = 0.299, 0.587, 0.114

_RGB2YCC = torch.tensor(
    [
        [KR, KG, KB],
        [-KR / (2 * (1 - KB)), -KG / (2 * (1 - KB)), 0.5],
        [0.5, -KG / (2 * (1 - KR)), -KB / (2 * (1 - KR))],
    ],
    dtype=torch.float64,
)
_YCC2RGB = torch.linalg.inv(_RGB2YCC)


def _apply(matrix: Tensor, x: Tensor) -> Tensor:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a (B, 3, H, W) tensor, got {tuple(x.shape)}")
    m = matrix.to(device=x.device, dtype=x.dtype)
    return torch.einsum("ij,bjhw->bihw", m, x)


def rgb_to_ycbcr(x: Tensor) -> Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> (B, 3, H, W) Y, Cb, Cr."""
    return _apply(_RGB2YCC, x)


def ycbcr_to_rgb(x: Tensor) -> Tensor:
    """Exact inverse of :func:`rgb_to_ycbcr` (no clamping: the loss sees the raw values)."""
    return _apply(_YCC2RGB, x)


def split_luma_chroma(x: Tensor) -> tuple[Tensor, Tensor]:
    """RGB image -> (I_L with 1 channel, I_C with 2 channels)."""
    ycc = rgb_to_ycbcr(x)
    return ycc[:, :1], ycc[:, 1:]


def merge_luma_chroma(luma: Tensor, chroma: Tensor) -> Tensor:
    """(I_L, I_C) at the same resolution -> RGB."""
    return ycbcr_to_rgb(torch.cat([luma, chroma], dim=1))
