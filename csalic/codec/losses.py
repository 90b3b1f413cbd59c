"""The training objective of Eq. 4: L = R + λ (D_i + D_f).

Scales (the paper gives none):
- R is bits per pixel of the training crop: -Σ log2 p over y and z, divided by B·H·W.
- D_i is the pixel MSE on the 0..255 scale, i.e. 255² · MSE of [0, 1] images
  (compressai's convention), which puts the paper's λ ∈ {0.001, 0.0025, 0.005,
  0.01} in the usual rate range (≈0.1 to 1 bpp).
- D_f is the MSE between the frozen task network's FPN features of x̂ and of x,
  averaged over the FPN levels and put on the same 255² scale so that the two
  distortions are summed like for like, as Eq. 4 sums them unweighted;
  ``feature_weight`` rescales it for ablations.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

PIXEL_SCALE = 255.0**2


def bits_per_pixel(likelihoods: dict[str, Tensor], num_pixels: int) -> Tensor:
    return sum(-torch.log2(t).sum() for t in likelihoods.values()) / num_pixels


def feature_mse(feats_hat: list[Tensor], feats: list[Tensor]) -> Tensor:
    """Mean over FPN levels of the per-level MSE (each level counts equally, whatever its size)."""
    if len(feats_hat) != len(feats) or not feats:
        raise ValueError("feature lists must be non-empty and of equal length")
    return sum(torch.mean((a.float() - b.float()) ** 2) for a, b in zip(feats_hat, feats)) / len(feats)


class RateDistortionLoss(nn.Module):
    """Eq. 4 with an optional task network; without one, D_f is 0 (a pure R + λ D_i model)."""

    def __init__(self, lmbda: float, task=None, feature_weight: float = 1.0):
        super().__init__()
        if not lmbda > 0:
            raise ValueError(f"λ must be positive, got {lmbda}")
        self.lmbda = float(lmbda)
        self.task = task
        self.feature_weight = float(feature_weight)

    def forward(self, output: dict, target: Tensor) -> dict[str, Tensor]:
        """Every term in float32, with autocast off: a codec run under bf16 autocast hands over a bf16 x̂,
        which the frozen task network's float32 convolutions refuse, and rates summed in bf16 lose bits."""
        with torch.autocast(target.device.type, enabled=False):
            x_hat, target = output["x_hat"].float(), target.float()
            b, _, h, w = target.shape
            bpp = bits_per_pixel({k: v.float() for k, v in output["likelihoods"].items()}, b * h * w)
            mse = torch.mean((x_hat - target) ** 2)
            d_i = PIXEL_SCALE * mse
            if self.task is not None and self.feature_weight > 0:
                with torch.no_grad():
                    ref = [f.detach() for f in self.task.features(target)]
                d_f = PIXEL_SCALE * self.feature_weight * feature_mse(self.task.features(x_hat), ref)
            else:
                d_f = torch.zeros((), device=target.device)
            loss = bpp + self.lmbda * (d_i + d_f)
        return {"loss": loss, "bpp": bpp, "mse": mse, "d_i": d_i, "d_f": d_f}


def psnr(mse: float, peak: float = 1.0) -> float:
    return float("inf") if mse <= 0 else 10.0 * math.log10(peak * peak / mse)
