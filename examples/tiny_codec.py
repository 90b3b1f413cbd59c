"""A user's own codec for a csalic study: the worked example of README's "Your own codec".

A study names it by import path in params.yaml (the folder holding ``examples/`` is the study's):

    learned:
      tiny: {codec: "examples.tiny_codec:build", args: {N: 16, M: 24}}

csalic asks three things of the factory's model: it is a compressai ``CompressionModel``
(``forward`` returns ``x_hat`` and the ``likelihoods`` the rate term reads), and it has
``compress`` (an image batch -> ``{"strings", "shape"}``) and ``decompress`` (their inverse).
csalic pads each image to ``pad_multiple`` (64 when the model does not say), trains it
under the study's loss R + λ(D_i + D_f), and writes its strings into real ``.csa`` files.
"""

from __future__ import annotations

import torch
from compressai.entropy_models import EntropyBottleneck
from compressai.layers import GDN
from compressai.models import CompressionModel
from compressai.models.utils import conv, deconv
from torch import nn


class TinyFactorized(CompressionModel):
    """Three stride-2 stages with GDN, a factorized entropy bottleneck, and the mirror image."""

    pad_multiple = 8  # 2^3: the three stride-2 stages

    def __init__(self, N: int = 16, M: int = 24):
        super().__init__()
        self.entropy_bottleneck = EntropyBottleneck(M)
        self.g_a = nn.Sequential(conv(3, N), GDN(N), conv(N, N), GDN(N), conv(N, M))
        self.g_s = nn.Sequential(deconv(M, N), GDN(N, inverse=True), deconv(N, N), GDN(N, inverse=True),
                                 deconv(N, 3))

    def forward(self, x: torch.Tensor) -> dict:
        y_hat, likelihoods = self.entropy_bottleneck(self.g_a(x))
        return {"x_hat": self.g_s(y_hat), "likelihoods": {"y": likelihoods}}

    def compress(self, x: torch.Tensor) -> dict:
        y = self.g_a(x)
        return {"strings": [self.entropy_bottleneck.compress(y)], "shape": y.shape[-2:]}

    def decompress(self, strings: list, shape) -> dict:
        y_hat = self.entropy_bottleneck.decompress(strings[0], shape)
        return {"x_hat": self.g_s(y_hat).clamp(0, 1)}


def build(N: int = 16, M: int = 24) -> TinyFactorized:
    return TinyFactorized(N, M)

