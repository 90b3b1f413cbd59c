"""Superpixel-based Chroma Sampling Module (SCSM, Eq. 1 of the paper).

Eq. 1 associates every chroma pixel with every superpixel, which is
O(HW * HW/16) memory: 4.7 G entries at 768x512.  As in Superpixel Sampling
Networks (Jampani et al. 2018), each pixel here is associated only with the 3x3
superpixels around the one it starts in, so time and memory are linear in the
number of pixels.  Within that neighbourhood the equations are the paper's:

    S^0 = AvgPool_4x4(I_C)
    Q^t = softmax_j( <I_C(p), S^{t-1}_j> / sqrt(d) )       j in the 3x3 neighbourhood of p
    S^t_j = sum_p Q^t_pj I_C(p) / sum_p Q^t_pj

The column normalisation in the last line (SSN's) makes S^t a weighted mean of
chroma values, so a constant-colour region aggregates to exactly that colour;
Eq. 1 leaves it implicit.  The module has no parameters.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_NEG = -1e4  # logit for neighbours outside the image: exp() underflows to 0 in float32 and bf16


class SCSM(nn.Module):
    """Aggregate chroma (B, d, H, W) into superpixel chroma (B, d, H/cell, W/cell)."""

    def __init__(self, iterations: int = 5, cell: int = 4):
        super().__init__()
        if iterations < 0 or cell < 1:
            raise ValueError("iterations must be >= 0 and cell >= 1")
        self.iterations = iterations
        self.cell = cell

    def extra_repr(self) -> str:
        return f"iterations={self.iterations}, cell={self.cell}"

    def forward(self, chroma: Tensor) -> Tensor:
        superpixels, _ = self.aggregate(chroma)
        return superpixels

    def aggregate(self, chroma: Tensor) -> tuple[Tensor, Tensor]:
        """Return the superpixels and the last association map Q (B, 9, H, W)."""
        b, d, height, width = chroma.shape
        c = self.cell
        if height % c or width % c:
            raise ValueError(f"SCSM needs H and W divisible by {c}, got {height}x{width}")
        h, w = height // c, width // c
        s = F.avg_pool2d(chroma, c)
        valid = self._neighbour_mask(h, w, chroma)
        q = torch.full((b, 9, height, width), 1.0 / 9, device=chroma.device, dtype=chroma.dtype)
        for _ in range(self.iterations):
            q = self._associate(chroma, s, valid)
            s = self._update(chroma, q, h, w)
        return s, q

    def _neighbour_mask(self, h: int, w: int, like: Tensor) -> Tensor:
        ones = torch.ones(1, 1, h, w, device=like.device, dtype=like.dtype)
        mask = F.unfold(ones, 3, padding=1).view(1, 9, h, w)
        return F.interpolate(mask, scale_factor=self.cell, mode="nearest") > 0.5

    def _associate(self, chroma: Tensor, s: Tensor, valid: Tensor) -> Tensor:
        b, d, height, width = chroma.shape
        h, w = s.shape[-2:]
        neigh = F.unfold(s, 3, padding=1).view(b, d * 9, h, w)
        neigh = F.interpolate(neigh, scale_factor=self.cell, mode="nearest").reshape(b, d, 9, height, width)
        logits = (chroma.unsqueeze(2) * neigh).sum(1) / math.sqrt(d)
        logits = logits.masked_fill(~valid, _NEG)
        return torch.softmax(logits, dim=1)

    def _update(self, chroma: Tensor, q: Tensor, h: int, w: int) -> Tensor:
        b, d, height, width = chroma.shape
        c = self.cell
        # Sum Q-weighted chroma over each cell, then fold (the adjoint of unfold) sends
        # each cell's contribution to the superpixel its neighbour slot points at.
        weighted = (q.unsqueeze(1) * chroma.unsqueeze(2)).reshape(b, d * 9, height, width)
        num = F.avg_pool2d(weighted, c) * (c * c)
        den = F.avg_pool2d(q, c) * (c * c)
        num = F.fold(num.view(b, d * 9, h * w), (h, w), 3, padding=1)
        den = F.fold(den.view(b, 9, h * w), (h, w), 3, padding=1)
        return num / den.clamp_min(1e-6)
