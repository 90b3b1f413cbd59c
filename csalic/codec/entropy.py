"""Hyperprior + channel-wise autoregressive entropy model with latent residual prediction.

Minnen & Singh (ICIP 2020), the entropy model the paper uses.  The latent y is cut
into ``slices`` channel groups; each group's Gaussian mean and scale are predicted
from the hyperprior and the already decoded groups (at most ``max_support``), and
after quantisation a latent-residual-prediction (LRP) branch adds back a bounded
estimate of the quantisation error.  The probability machinery is compressai's
``EntropyBottleneck`` (for z) and ``GaussianConditional`` (for y); this module only
orders the slices, so the encoder and the decoder run the same code path and
their latents agree exactly.

Kept apart from the transforms: it sees only y, never the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.layers import conv3x3, subpel_conv3x3
from compressai.ops import quantize_ste
from torch import Tensor, nn


@dataclass(frozen=True)
class EntropyConfig:
    latent: int = 320          # M: channels of y
    hyper: int = 192           # channels of z
    slices: int = 10
    max_support: int = 5       # decoded slices a slice may condition on
    hidden: tuple[int, ...] = (224, 176, 128, 64)   # widths of the per-slice transforms
    hyper_widths: tuple[int, int, int] = (288, 256, 224)


def _stack(widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(conv3x3(a, b))
        if i < len(widths) - 2:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


class ChannelARHyperprior(nn.Module):
    """Entropy model of y: ``forward`` for training, ``compress``/``decompress`` for real bitstreams."""

    def __init__(self, cfg: EntropyConfig):
        super().__init__()
        if cfg.latent % cfg.slices:
            raise ValueError(f"latent channels {cfg.latent} not divisible by {cfg.slices} slices")
        self.cfg = cfg
        m, z = cfg.latent, cfg.hyper
        w1, w2, w3 = cfg.hyper_widths
        self.slice_ch = m // cfg.slices
        self.h_a = nn.Sequential(
            conv3x3(m, m), nn.GELU(),
            conv3x3(m, w1), nn.GELU(),
            conv3x3(w1, w2, stride=2), nn.GELU(),
            conv3x3(w2, w3), nn.GELU(),
            conv3x3(w3, z, stride=2),
        )
        self.h_mean_s = self._hyper_synthesis(z, m, (w3, w2, w1))
        self.h_scale_s = self._hyper_synthesis(z, m, (w3, w2, w1))
        s = self.slice_ch
        support = [min(i, cfg.max_support) for i in range(cfg.slices)]
        self.cc_mean = nn.ModuleList(_stack([m + s * k, *cfg.hidden, s]) for k in support)
        self.cc_scale = nn.ModuleList(_stack([m + s * k, *cfg.hidden, s]) for k in support)
        self.lrp = nn.ModuleList(_stack([m + s * (k + 1), *cfg.hidden, s]) for k in support)
        self.entropy_bottleneck = EntropyBottleneck(z)
        self.gaussian_conditional = GaussianConditional(None)

    @staticmethod
    def _hyper_synthesis(z: int, m: int, widths: tuple[int, int, int]) -> nn.Sequential:
        w3, w2, w1 = widths
        return nn.Sequential(
            conv3x3(z, z), nn.GELU(),
            subpel_conv3x3(z, w3, 2), nn.GELU(),
            conv3x3(w3, w2), nn.GELU(),
            subpel_conv3x3(w2, w1, 2), nn.GELU(),
            conv3x3(w1, m),
        )

    # -- shared per-slice step ------------------------------------------------------------
    def _params(self, k: int, mu_h: Tensor, sigma_h: Tensor, decoded: list[Tensor]) -> tuple[Tensor, Tensor]:
        support = decoded[: self.cfg.max_support]
        mean = self.cc_mean[k](torch.cat([mu_h, *support], dim=1))
        scale = self.cc_scale[k](torch.cat([sigma_h, *support], dim=1))
        return mean, scale

    def _refine(self, k: int, mu_h: Tensor, decoded: list[Tensor], y_hat_k: Tensor) -> Tensor:
        support = decoded[: self.cfg.max_support]
        lrp = self.lrp[k](torch.cat([mu_h, *support, y_hat_k], dim=1))
        return y_hat_k + 0.5 * torch.tanh(lrp)

    def _hyper(self, z_hat: Tensor, y_hw: tuple[int, int]) -> tuple[Tensor, Tensor]:
        h, w = y_hw
        return self.h_mean_s(z_hat)[..., :h, :w], self.h_scale_s(z_hat)[..., :h, :w]

    # -- training / likelihood estimate ----------------------------------------------------
    def forward(self, y: Tensor) -> dict:
        """Likelihoods in float32 even under bf16 autocast.

        bf16 keeps 8 bits of mantissa, too coarse for -log2 p summed over 10^5
        symbols; the transforms that predict the parameters may run in bf16, the
        probabilities (and the quantisation around the predicted means) do not.
        """
        z = self.h_a(y)
        fp32 = torch.autocast(y.device.type, enabled=False)
        with fp32:
            _, z_likelihoods = self.entropy_bottleneck(z.float())
            medians = self.entropy_bottleneck._get_medians()
            z_hat = quantize_ste(z.float() - medians) + medians
        mu_h, sigma_h = self._hyper(z_hat, y.shape[-2:])
        decoded: list[Tensor] = []
        likelihoods: list[Tensor] = []
        for k, y_k in enumerate(y.chunk(self.cfg.slices, dim=1)):
            mean, scale = self._params(k, mu_h, sigma_h, decoded)
            with fp32:
                y_k, mean = y_k.float(), mean.float()
                _, lik = self.gaussian_conditional(y_k, scale.float(), mean)
                y_hat_k = quantize_ste(y_k - mean) + mean
            likelihoods.append(lik)
            decoded.append(self._refine(k, mu_h, decoded, y_hat_k))
        return {
            "y_hat": torch.cat(decoded, dim=1),
            "likelihoods": {"y": torch.cat(likelihoods, dim=1), "z": z_likelihoods},
        }

    # -- real bitstreams -------------------------------------------------------------------
    def compress(self, y: Tensor) -> dict:
        z = self.h_a(y)
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.shape[-2:])
        mu_h, sigma_h = self._hyper(z_hat, y.shape[-2:])
        decoded: list[Tensor] = []
        y_strings: list[list[bytes]] = []
        gc = self.gaussian_conditional
        for k, y_k in enumerate(y.chunk(self.cfg.slices, dim=1)):
            mean, scale = self._params(k, mu_h, sigma_h, decoded)
            indexes = gc.build_indexes(scale)
            y_strings.append(gc.compress(y_k, indexes, means=mean))
            y_hat_k = gc.quantize(y_k, "dequantize", mean)
            decoded.append(self._refine(k, mu_h, decoded, y_hat_k))
        return {
            "strings": [*y_strings, z_strings],
            "shape": tuple(z.shape[-2:]),
            "y_hat": torch.cat(decoded, dim=1),
        }

    def decompress(self, strings: list[list[bytes]], shape: tuple[int, int]) -> Tensor:
        if len(strings) != self.cfg.slices + 1:
            raise ValueError(f"expected {self.cfg.slices + 1} strings, got {len(strings)}")
        z_hat = self.entropy_bottleneck.decompress(strings[-1], shape)
        y_hw = (shape[0] * 4, shape[1] * 4)
        mu_h, sigma_h = self._hyper(z_hat, y_hw)
        decoded: list[Tensor] = []
        gc = self.gaussian_conditional
        for k in range(self.cfg.slices):
            mean, scale = self._params(k, mu_h, sigma_h, decoded)
            indexes = gc.build_indexes(scale)
            symbols = gc.decompress(strings[k], indexes, dtype=mean.dtype)
            y_hat_k = gc.dequantize(symbols, mean)
            decoded.append(self._refine(k, mu_h, decoded, y_hat_k))
        return torch.cat(decoded, dim=1)
