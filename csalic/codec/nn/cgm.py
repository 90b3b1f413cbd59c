"""Chroma Generation Module (CGM, Eq. 2): luma-guided reconstruction of full-resolution chroma.

    f_c   = Conv3(DeConv3(Î_C^s, offsets = Conv4(Î_L)))       Conv4: 4x4, stride 4 -> 1/4 res
    f_l   = ResB_2↓(Î_L)                                        1/2 res
    f_c^r = Conv3(DeConv3(f_c, offsets = Conv2(f_l)))           Conv2: 2x2, stride 2 -> 1/4 res
    f_l^r = ResB_2↓(f_l)                                        1/4 res
    f_w   = NonAtten(Concat[f_c^r, f_l^r])
    Î_C   = ResB(ResB_2↑(ResB(ResB_2↑(f_w))))                   full res

The strides of Conv4 and Conv2 are what brings full- and half-resolution luma to
the 1/4 grid of the sampled chroma; the paper names only the kernel sizes.
One addition: the network output is added to a bilinear upsampling of Î_C^s,
so the CGM learns the luma-guided correction rather than the chroma itself.
That residual form is what makes the module trainable in a few hundred steps;
set ``residual=False`` for the bare Eq. 2.

Cost.  The two up-sampling residual blocks end at half and at full resolution,
where a 3x3 convolution of 64 channels costs 14 G MACs at 768x512: at one
width throughout, the up path alone was 71 G.  ``up`` sets their widths; the
paper size narrows them to 32 at half and 16 at full resolution (the output
has two channels), which costs 15 G.  The demo size keeps one width, as its
warm starts were trained.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from compressai.layers import ResidualBlock, ResidualBlockUpsample, ResidualBlockWithStride, conv3x3
from torch import Tensor, nn
from torchvision.ops import DeformConv2d

from .layers import NonLocalAttention


class LumaGuidedDeformConv(nn.Module):
    """3x3 deformable conv on chroma features whose offsets are predicted from luma, then a 3x3 conv."""

    def __init__(self, in_ch: int, out_ch: int, luma_ch: int, luma_stride: int):
        super().__init__()
        self.offsets = nn.Conv2d(luma_ch, 2 * 3 * 3, luma_stride, stride=luma_stride)
        nn.init.zeros_(self.offsets.weight)  # start as a plain 3x3 conv
        nn.init.zeros_(self.offsets.bias)
        self.deform = DeformConv2d(in_ch, out_ch, 3, padding=1)
        self.act = nn.LeakyReLU(inplace=True)
        self.conv = conv3x3(out_ch, out_ch)

    def forward(self, chroma: Tensor, luma: Tensor) -> Tensor:
        offsets = self.offsets(luma)
        # float32 under autocast: torchvision's CPU kernel has no bf16, and sampling positions need the precision
        with torch.autocast(chroma.device.type, enabled=False):
            aligned = self.deform(chroma.float(), offsets.float())
        return self.conv(self.act(aligned))


class CGM(nn.Module):
    """(Î_C^s at 1/4 resolution, Î_L at full resolution) -> Î_C at full resolution."""

    def __init__(self, ch: int = 64, kv_stride: int = 4, residual: bool = True,
                 up: tuple[int, int] | None = None):
        super().__init__()
        half, full = up or (ch, ch)
        self.residual = residual
        self.align1 = LumaGuidedDeformConv(2, ch, luma_ch=1, luma_stride=4)
        self.luma_down1 = ResidualBlockWithStride(1, ch, stride=2)
        self.align2 = LumaGuidedDeformConv(ch, ch, luma_ch=ch, luma_stride=2)
        self.luma_down2 = ResidualBlockWithStride(ch, ch, stride=2)
        self.attention = NonLocalAttention(2 * ch, kv_stride=kv_stride)
        self.up = nn.Sequential(
            ResidualBlockUpsample(2 * ch, half, 2),
            ResidualBlock(half, half),
            ResidualBlockUpsample(half, full, 2),
            ResidualBlock(full, 2),
        )

    def forward(self, chroma_s: Tensor, luma: Tensor) -> Tensor:
        f_c = self.align1(chroma_s, luma)
        f_l = self.luma_down1(luma)
        f_cr = self.align2(f_c, f_l)
        f_lr = self.luma_down2(f_l)
        out = self.up(self.attention(torch.cat([f_cr, f_lr], dim=1)))
        if self.residual:
            out = out + F.interpolate(chroma_s, size=luma.shape[-2:], mode="bilinear", align_corners=False)
        return out
