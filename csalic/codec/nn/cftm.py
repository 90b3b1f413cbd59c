"""Cross-component Feature Transform Module (CFTM, Eq. 3) and its ablation, plain concatenation.

Eq. 3 writes the interaction as softmax(Conv1(f^p) Conv1(f^p)^T) Conv1(f^p).  Read
with features as (C x HW) matrices this is a C x C attention between channels,
which is linear in the number of pixels; read as (HW x C) it would be an
HW x HW attention costing ~0.5 TFLOPs at 768x512 on its own, twice the whole
codec's reported 258 G.  We therefore use the channel form, with L2-normalised
queries and keys and a learned temperature (as in Restormer's transposed
attention) so that the softmax does not saturate as the number of pixels grows.

Eq. 3 taken literally is a bottleneck at the start of training.  Cosine
similarities of untrained features are small, so the softmax is nearly uniform
and every output channel is close to the mean of the value channels: measured on
the demo size, 32 channels in, an output of effective rank ~5 at a fifth of the
input's amplitude, with no path around it.  The proposed model then starts behind
a bottleneck that its own ablation ``concat`` does not have.  Three standard
remedies, each a reading of the paper rather than a change of what it computes:

- a path around the interaction: ``f^a = f^t + W_o softmax(QK^T)V``.  The paper
  says the alignment preserves each component's specific characteristics; the
  residual keeps the component's own features and lets the attention add what it
  takes from the other component (the residual form of Restormer's MDTA and of
  every transformer block);
- several heads, each a softmax over C/heads channels, so that even a uniform
  attention passes ``heads`` independent mixtures instead of one mean;
- an output projection ``W_o`` (1x1), so the attended mixture is rescaled and
  rotated before it is added, as in multi-head attention.

The temperature starts at 1 per head, as in Restormer; with the residual path
there is no need to start it sharp.

Cost.  At 1/4 resolution every 3x3 convolution of N=192 channels costs 8 G MACs
at 768x512, so four full residual blocks made the CFTM 78 G, a fifth of the
codec.  The paper's ResB cites He et al. (2016); their bottleneck form
(1x1 down to N/2, 3x3, 1x1 up) does the same job at a fifth of the cost
(``bottleneck=True``), and the interaction can attend over ``inner < N``
channels (Q, K, V of width ``inner``, W_o back to N).  The paper size uses both
(18 G); the demo size keeps the full blocks its warm starts were trained with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from compressai.layers import ResidualBlock, conv1x1
from torch import Tensor, nn

from .layers import ChannelAttention, ResidualUnit, SpatialAttention


class CrossComponentInteraction(nn.Module):
    """f^t + W_o softmax(Q K^T) V between channels, multi-head, for one concatenated [f^t, f^t_other] pair.

    Args:
        in_ch (int): channels of the concatenated pair (2N); the first ``out_ch`` are this component's own.
        out_ch (int): channels of this component (N).
        heads (int): attention heads; ``inner`` must divide by it.
        inner (int): channels that attend (Q, K, V); default ``out_ch``.
    """

    def __init__(self, in_ch: int, out_ch: int, heads: int = 1, inner: int | None = None):
        super().__init__()
        inner = inner or out_ch
        if inner % heads or in_ch < out_ch:
            raise ValueError(f"need in_ch >= out_ch and inner divisible by heads, got {in_ch}, {out_ch}, {inner}, {heads}")
        self.out_ch, self.inner, self.heads = out_ch, inner, heads
        self.q = conv1x1(in_ch, inner)
        self.k = conv1x1(in_ch, inner)
        self.v = conv1x1(in_ch, inner)
        self.proj = conv1x1(inner, out_ch)
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape

        def split(t: Tensor) -> Tensor:  # (B, C, H, W) -> (B, heads, C/heads, HW)
            return t.reshape(b, self.heads, self.inner // self.heads, h * w)

        q = F.normalize(split(self.q(x)), dim=-1)
        k = F.normalize(split(self.k(x)), dim=-1)
        att = torch.softmax(q @ k.transpose(-2, -1) * self.temperature, dim=-1)
        mixed = (att @ split(self.v(x))).reshape(b, self.inner, h, w)
        return x[:, : self.out_ch] + self.proj(mixed)


class CFTM(nn.Module):
    """Fuse luma features f_L and chroma features f_C (each N channels, same size) into 2N channels.

    ``bottleneck`` selects the residual block (compressai's two 3x3 convolutions,
    or the 1x1-3x3-1x1 bottleneck); ``inner`` the interaction's attending width.
    """

    def __init__(self, ch: int, heads: int = 1, bottleneck: bool = False, inner: int | None = None):
        super().__init__()
        self.ch = ch

        def block() -> nn.Module:
            return ResidualUnit(ch) if bottleneck else ResidualBlock(ch, ch)

        self.res_l, self.res_c = block(), block()
        self.inter_l = CrossComponentInteraction(2 * ch, ch, heads, inner)
        self.inter_c = CrossComponentInteraction(2 * ch, ch, heads, inner)
        self.refine_l, self.refine_c = block(), block()
        self.channel_att = ChannelAttention(2 * ch)
        self.spatial_att = SpatialAttention()

    @property
    def out_channels(self) -> int:
        return 2 * self.ch

    def forward(self, f_l: Tensor, f_c: Tensor) -> Tensor:
        t_l, t_c = self.res_l(f_l), self.res_c(f_c)
        a_l = self.inter_l(torch.cat([t_l, t_c], dim=1))
        a_c = self.inter_c(torch.cat([t_c, t_l], dim=1))
        f_i = torch.cat([self.refine_l(a_l), self.refine_c(a_c)], dim=1)
        f_s = self.channel_att(f_i) + f_i
        return self.spatial_att(f_s) + f_s


class ConcatFusion(nn.Module):
    """Ablation 'concat': CFTM replaced by channel-wise concatenation [f_L, f_C] (no parameters)."""

    def __init__(self, ch: int):
        super().__init__()
        self._out = 2 * ch

    @property
    def out_channels(self) -> int:
        return self._out

    def forward(self, f_l: Tensor, f_c: Tensor) -> Tensor:
        return torch.cat([f_l, f_c], dim=1)
