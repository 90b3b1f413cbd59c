"""Analysis and synthesis transforms around the CSA-LIC latent, after Zou et al. (CVPR 2022).

The window-attention CNN of Zou et al. maps RGB through four stride-2 stages
(with window-attention modules after the second and fourth) to the latent y.
CSA-LIC replaces its first two stages by separate luma and chroma feature
extraction and a fusion (CFTM or concatenation) at 1/4 resolution, and splits its
last two synthesis stages into a luma head and a chroma head.
"""

from __future__ import annotations

from compressai.layers import GDN, ResidualBlock, conv3x3
from compressai.models.utils import conv, deconv
from torch import nn

from .layers import WindowAttentionModule


def luma_features(n: int, mid: int | None = None) -> nn.Sequential:
    """I_L (1 channel, full resolution) -> N channels at 1/4 resolution, ``mid`` (default N) at 1/2.

    WACNN's first stage turns three colour channels into N at half resolution;
    luma is one channel, and ``mid = N/2`` there halves the stage's second
    convolution and quarters its GDN, the two costliest layers at that resolution.
    """
    mid = mid or n
    return nn.Sequential(conv(1, mid, 5, 2), GDN(mid), conv(mid, n, 5, 2), GDN(n))


def chroma_features(n: int, sampled: bool) -> nn.Sequential:
    """I_C^s (already at 1/4 resolution, stride 1) or full-resolution I_C (two stride-2 stages)."""
    if sampled:
        return nn.Sequential(conv(2, n, 3, 1), GDN(n), conv(n, n, 3, 1), GDN(n))
    return nn.Sequential(conv(2, n, 5, 2), GDN(n), conv(n, n, 5, 2), GDN(n))


class AnalysisTail(nn.Sequential):
    """Fused features (C_in at 1/4) -> y (M at 1/16): WAM(N), two stride-2 stages, WAM(M)."""

    def __init__(self, c_in: int, n: int, m: int, heads: int, window: int):
        super().__init__(
            nn.Conv2d(c_in, n, 1),
            WindowAttentionModule(n, heads, window),
            conv(n, n, 5, 2),
            GDN(n),
            conv(n, m, 5, 2),
            WindowAttentionModule(m, heads, window),
        )


class SynthesisTrunk(nn.Sequential):
    """ŷ (M at 1/16) -> shared features (N at 1/4): mirror of :class:`AnalysisTail`."""

    def __init__(self, n: int, m: int, heads: int, window: int):
        super().__init__(
            WindowAttentionModule(m, heads, window),
            deconv(m, n, 5, 2),
            GDN(n, inverse=True),
            deconv(n, n, 5, 2),
            GDN(n, inverse=True),
            WindowAttentionModule(n, heads, window),
        )


def luma_head(n: int, mid: int | None = None) -> nn.Sequential:
    """Shared features -> Î_L at full resolution (the two last synthesis stages); mirror of :func:`luma_features`."""
    mid = mid or n
    return nn.Sequential(deconv(n, mid, 5, 2), GDN(mid, inverse=True), deconv(mid, 1, 5, 2))


def chroma_head(n: int, sampled: bool) -> nn.Module:
    """Shared features -> Î_C^s at 1/4 resolution (for the CGM), or Î_C at full resolution."""
    if sampled:
        return nn.Sequential(ResidualBlock(n, n // 2), conv3x3(n // 2, 2))
    return nn.Sequential(deconv(n, n // 2, 5, 2), GDN(n // 2, inverse=True), deconv(n // 2, 2, 5, 2))


