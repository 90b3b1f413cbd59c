"""Cross-component Feature Transform Module (CFTM, Eq. 3) and its ablation, plain concatenation.

Eq. 3 writes the interaction as softmax(Conv1(f^p) Conv1(f^p)^T) Conv1(f^p).  Read
with features as (C x HW) matrices this is a C x C attention between channels,
which is linear in the number of pixels; read as (HW x C) it would be an
HW x HW attention costing ~0.5 TFLOPs at 768x512 on its own, twice the whole
codec's reported 258 G.  We therefore use the channel form, with L2-normalised
queries and keys and a learned temperature (as in Restormer) so that the softmax
does not saturate as the number of pixels grows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from compressai.layers import ResidualBlock, conv1x1
from torch import Tensor, nn

from .layers import ChannelAttention, SpatialAttention


class CrossComponentInteraction(nn.Module):
    """softmax(Q K^T) V between channels of one concatenated luma/chroma pair."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.q = conv1x1(in_ch, out_ch)
        self.k = conv1x1(in_ch, out_ch)
        self.v = conv1x1(in_ch, out_ch)
        self.temperature = nn.Parameter(torch.ones(1))

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        q = F.normalize(self.q(x).flatten(2), dim=-1)
        k = F.normalize(self.k(x).flatten(2), dim=-1)
        v = self.v(x).flatten(2)
        att = torch.softmax(q @ k.transpose(1, 2) * self.temperature, dim=-1)
        return (att @ v).view(b, -1, h, w)


class CFTM(nn.Module):
    """Fuse luma features f_L and chroma features f_C (each N channels, same size) into 2N channels."""

    def __init__(self, ch: int):
        super().__init__()
        self.res_l = ResidualBlock(ch, ch)
        self.res_c = ResidualBlock(ch, ch)
        self.inter_l = CrossComponentInteraction(2 * ch, ch)
        self.inter_c = CrossComponentInteraction(2 * ch, ch)
        self.refine_l = ResidualBlock(ch, ch)
        self.refine_c = ResidualBlock(ch, ch)
        self.channel_att = ChannelAttention(2 * ch)
        self.spatial_att = SpatialAttention()

    @property
    def out_channels(self) -> int:
        return 2 * self.res_l.conv1.out_channels

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
