"""Layers shared by the CSA-LIC modules: window attention, CBAM, non-local attention.

Convolutions, GDN and the residual blocks come from compressai; what compressai
lacks is written here once and reused by the transforms, the CFTM and the CGM.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from compressai.layers import conv1x1, conv3x3
from torch import Tensor, nn


class ResidualUnit(nn.Module):
    """Bottleneck residual unit (1x1 -> 3x3 -> 1x1, GELU) used inside window-attention modules."""

    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(
            conv1x1(ch, ch // 2), nn.GELU(), conv3x3(ch // 2, ch // 2), nn.GELU(), conv1x1(ch // 2, ch)
        )
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(x + self.body(x))


class WindowSelfAttention(nn.Module):
    """Multi-head self-attention inside non-overlapping windows, with a learned relative position bias.

    No MLP follows it: in the window-attention module the residual units of the
    mask branch play that part, as in Zou et al.

    Feature maps whose sides are not multiples of the window are padded and cropped
    back, so any latent size works.
    """

    def __init__(self, ch: int, heads: int, window: int):
        super().__init__()
        if ch % heads:
            raise ValueError(f"channels {ch} not divisible by heads {heads}")
        self.heads, self.window = heads, window
        self.norm1 = nn.LayerNorm(ch)
        self.qkv = nn.Linear(ch, 3 * ch)
        self.proj = nn.Linear(ch, ch)
        self.bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
        self.register_buffer("bias_index", rel[..., 0] * (2 * window - 1) + rel[..., 1], persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        ws = self.window
        ph, pw = (-h) % ws, (-w) % ws
        t = F.pad(x, (0, pw, 0, ph)) if ph or pw else x
        hp, wp = h + ph, w + pw
        t = t.permute(0, 2, 3, 1)  # B H W C
        windows = t.reshape(b, hp // ws, ws, wp // ws, ws, c).transpose(2, 3).reshape(-1, ws * ws, c)
        windows = windows + self._attend(self.norm1(windows))
        t = windows.reshape(b, hp // ws, wp // ws, ws, ws, c).transpose(2, 3).reshape(b, hp, wp, c)
        return t[:, :h, :w].permute(0, 3, 1, 2).contiguous()

    def _attend(self, t: Tensor) -> Tensor:
        n, L, c = t.shape
        qkv = self.qkv(t).reshape(n, L, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        bias = self.bias_table[self.bias_index.reshape(-1)].reshape(L, L, -1).permute(2, 0, 1)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=bias.unsqueeze(0).to(t.dtype))
        return self.proj(out.transpose(1, 2).reshape(n, L, c))


class WindowAttentionModule(nn.Module):
    """Window-based attention module of Zou et al. (CVPR 2022): x + trunk(x) * sigmoid(mask(x)).

    The mask branch carries the window self-attention, so attention decides where
    the residual trunk's features pass through.
    """

    def __init__(self, ch: int, heads: int = 8, window: int = 8):
        super().__init__()
        self.trunk = nn.Sequential(ResidualUnit(ch), ResidualUnit(ch), ResidualUnit(ch))
        self.mask = nn.Sequential(
            WindowSelfAttention(ch, heads, window),
            ResidualUnit(ch),
            ResidualUnit(ch),
            ResidualUnit(ch),
            conv1x1(ch, ch),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.trunk(x) * torch.sigmoid(self.mask(x))


class ChannelAttention(nn.Module):
    """CBAM channel attention (Woo et al. 2018): x scaled by a gate from avg- and max-pooled descriptors."""

    def __init__(self, ch: int, reduction: int = 16):
        super().__init__()
        hidden = max(ch // reduction, 4)
        self.mlp = nn.Sequential(conv1x1(ch, hidden), nn.ReLU(inplace=True), conv1x1(hidden, ch))

    def forward(self, x: Tensor) -> Tensor:
        gate = self.mlp(F.adaptive_avg_pool2d(x, 1)) + self.mlp(F.adaptive_max_pool2d(x, 1))
        return x * torch.sigmoid(gate)


class SpatialAttention(nn.Module):
    """CBAM spatial attention: x scaled by a 7x7 conv gate over channel-mean and channel-max maps."""

    def __init__(self, kernel: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2)

    def forward(self, x: Tensor) -> Tensor:
        desc = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(desc))


class NonLocalAttention(nn.Module):
    """Non-local (global dot-product) attention with pooled keys and values.

    Keys and values are average-pooled by ``kv_stride`` (the subsampling trick of
    Wang et al.'s non-local networks), so a 192x128 feature map attends over 1.5 k
    positions instead of 24 k and the cost stays linear in the query count.
    """

    def __init__(self, ch: int, kv_stride: int = 4):
        super().__init__()
        inner = max(ch // 2, 8)
        self.kv_stride = kv_stride
        self.q = conv1x1(ch, inner)
        self.k = conv1x1(ch, inner)
        self.v = conv1x1(ch, inner)
        self.out = conv1x1(inner, ch)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        kv = F.avg_pool2d(x, self.kv_stride, ceil_mode=True) if self.kv_stride > 1 else x
        q = self.q(x).flatten(2).transpose(1, 2).unsqueeze(1)
        k = self.k(kv).flatten(2).transpose(1, 2).unsqueeze(1)
        v = self.v(kv).flatten(2).transpose(1, 2).unsqueeze(1)
        att = F.scaled_dot_product_attention(q, k, v).squeeze(1)
        return x + self.out(att.transpose(1, 2).reshape(b, -1, h, w))
