"""The CSA-LIC codec: a compressai ``CompressionModel`` with luma/chroma-aware transforms.

    x (RGB) -> YCbCr -> I_L, I_C -> [SCSM] -> I_C^s
    f_L = luma_features(I_L), f_C = chroma_features(I_C^s)
    y = analysis_tail(CFTM(f_L, f_C))                 -- entropy model (csalic.codec.entropy) --
    f = synthesis_trunk(ŷ); Î_L = luma_head(f); Î_C^s = chroma_head(f)
    Î_C = CGM(Î_C^s, Î_L); x̂ = RGB(Î_L, Î_C)

Variants (the rows of the paper's Table 2):

``full``      SCSM + CFTM + CGM, the proposed codec.
``no_casc``   no SCSM and no CGM: chroma is coded at full resolution.  The chroma
              feature extractor then uses two stride-2 stages (like the luma one) in
              place of the SCSM's 4x4 aggregation, and the chroma head uses two
              stride-2 transposed convolutions (like the luma head) in place of the
              CGM.  CFTM is kept.
``concat``    SCSM and CGM kept; CFTM replaced by channel concatenation [f_L, f_C]
              (same 2N output channels, no parameters).
``baseline``  none of the three: full-resolution chroma as in ``no_casc`` and
              concatenation as in ``concat``.

Sizes: ``paper`` (N=192, M=320, 10 slices: the WACNN backbone the paper builds on,
76 M parameters, with lean widths where the paper gives none), ``demo`` (1.9 M
parameters, trainable on a CPU in minutes) and ``demo_lean`` (the demo with the
paper size's lean choices, for checking what they cost in quality).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn.functional as F
from compressai.models import CompressionModel
from torch import Tensor

from .color import merge_luma_chroma, split_luma_chroma
from .entropy import ChannelARHyperprior, EntropyConfig
from ..errors import CsalicError
from ..names import VARIANT_COMPONENTS, VARIANT_NAMES  # noqa: F401 (VARIANT_NAMES: re-exported)
from .nn.cftm import CFTM, ConcatFusion
from .nn.cgm import CGM
from .nn.scsm import SCSM
from .nn.transforms import AnalysisTail, SynthesisTrunk, chroma_features, chroma_head, luma_features, luma_head

PAD_MULTIPLE = 64  # y is at 1/16 and z at 1/64 of the image


@dataclass(frozen=True)
class ModelConfig:
    n: int = 192
    m: int = 320
    heads: int = 8
    window: int = 8
    cgm_ch: int = 64
    cgm_kv_stride: int = 4
    scsm_iterations: int = 5
    entropy: EntropyConfig = field(default_factory=EntropyConfig)
    # Widths the paper leaves open; the defaults are the first release's (the demo's warm
    # starts and older checkpoints were built with them), SIZES["paper"] sets the lean ones.
    luma_mid: int | None = None          # luma channels at 1/2 resolution (None: N)
    cftm_bottleneck: bool = False        # CFTM's ResB as 1x1-3x3-1x1 bottlenecks
    cftm_inner: int | None = None        # channels the CFTM interaction attends over (None: N)
    cgm_up: tuple[int, int] | None = None  # CGM up path at 1/2 and full resolution (None: cgm_ch)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = dict(d)
        ent = d.pop("entropy", {})
        ent = {k: tuple(v) if isinstance(v, list) else v for k, v in ent.items()}
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(entropy=EntropyConfig(**ent), **d)


SIZES: dict[str, ModelConfig] = {
    # 76.2 M parameters and 232 G MACs at 768x512 (benchmarks/RESULTS.md; the first release's
    # widths: 80.5 M, 387 G). The lean widths take the CFTM from 78 G to 18 G, the CGM from
    # 86 G to 19 G and luma at 1/2 resolution from 27 G to 13 G each way; WACNN's backbone
    # and entropy model (80 G, 61 M of the parameters) keep their published widths.
    "paper": ModelConfig(luma_mid=96, cftm_bottleneck=True, cftm_inner=96, cgm_ch=48, cgm_kv_stride=8, cgm_up=(32, 16)),
    "demo": ModelConfig(
        n=32, m=64, heads=2, window=4, cgm_ch=16, scsm_iterations=3,
        entropy=EntropyConfig(latent=64, hyper=32, slices=4, max_support=3,
                              hidden=(48, 32), hyper_widths=(56, 48, 40)),
    ),
}
# The demo's widths with the paper size's lean choices scaled alike (half-width luma at 1/2,
# bottleneck CFTM attending over N/2, CGM at 3/4 width with a 2/3 and 1/3 up path): what the
# quality check of the lean widths trains beside ``demo`` (benchmarks/quality_lean.py).
SIZES["demo_lean"] = replace(SIZES["demo"], luma_mid=16, cftm_bottleneck=True, cftm_inner=16, cgm_ch=12,
                             cgm_kv_stride=8, cgm_up=(8, 4))

VARIANTS: dict[str, dict[str, bool]] = VARIANT_COMPONENTS  # csalic.names: the report reads them torch-free


class CSALIC(CompressionModel):
    """CSA-LIC codec; ``variant`` selects the ablation (see the module docstring)."""

    def __init__(self, config: ModelConfig | None = None, variant: str = "full", size: str | None = None):
        super().__init__()
        if variant not in VARIANTS:
            raise CsalicError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        self.config = config or ModelConfig()
        self.variant = variant
        self.size = size
        flags = VARIANTS[variant]
        self.casc = flags["scsm"]  # SCSM and CGM come as a pair: sampled chroma needs the CGM to return
        c = self.config
        self.scsm = SCSM(c.scsm_iterations) if self.casc else None
        self.luma_features = luma_features(c.n, c.luma_mid)
        self.chroma_features = chroma_features(c.n, sampled=self.casc)
        self.fusion = CFTM(c.n, c.heads, c.cftm_bottleneck, c.cftm_inner) if flags["cftm"] else ConcatFusion(c.n)
        self.g_a = AnalysisTail(self.fusion.out_channels, c.n, c.m, c.heads, c.window)
        self.entropy = ChannelARHyperprior(c.entropy)
        self.g_s = SynthesisTrunk(c.n, c.m, c.heads, c.window)
        self.luma_head = luma_head(c.n, c.luma_mid)
        self.chroma_head = chroma_head(c.n, sampled=self.casc)
        self.cgm = CGM(c.cgm_ch, c.cgm_kv_stride, up=c.cgm_up) if self.casc else None
        if c.entropy.latent != c.m:
            raise ValueError("entropy latent channels must equal M")

    # -- transforms --------------------------------------------------------------------
    def encode_latent(self, x: Tensor) -> Tensor:
        """RGB (B, 3, H, W), H and W multiples of 64 -> y."""
        luma, chroma = split_luma_chroma(x)
        if self.scsm is not None:
            chroma = self.scsm(chroma)
        return self.g_a(self.fusion(self.luma_features(luma), self.chroma_features(chroma)))

    def decode_latent(self, y_hat: Tensor) -> Tensor:
        """ŷ -> RGB x̂ (unclamped, so the training loss sees the raw values)."""
        f = self.g_s(y_hat)
        luma = self.luma_head(f)
        chroma = self.chroma_head(f)
        if self.cgm is not None:
            chroma = self.cgm(chroma, luma)
        return merge_luma_chroma(luma, chroma)

    @staticmethod
    def _pad(x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % PAD_MULTIPLE, (-w) % PAD_MULTIPLE
        return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x

    # -- compressai interface ----------------------------------------------------------
    def forward(self, x: Tensor) -> dict:
        h, w = x.shape[-2:]
        y = self.encode_latent(self._pad(x))
        out = self.entropy(y)
        x_hat = self.decode_latent(out["y_hat"])[..., :h, :w]
        return {"x_hat": x_hat, "likelihoods": out["likelihoods"]}

    def aux_loss(self) -> Tensor:
        return self.entropy.entropy_bottleneck.loss()

    @torch.no_grad()
    def compress(self, x: Tensor) -> dict:
        """RGB (B, 3, H, W) in [0, 1] -> {"strings": [[slice 0], ..., [z]], "shape": (H, W)}.

        ``shape`` is the original image size, so :meth:`decompress` can crop the padding away.
        """
        h, w = x.shape[-2:]
        out = self.entropy.compress(self.encode_latent(self._pad(x)))
        return {"strings": out["strings"], "shape": (h, w)}

    @torch.no_grad()
    def decompress(self, strings: list[list[bytes]], shape: tuple[int, int]) -> dict:
        h, w = int(shape[0]), int(shape[1])
        z_shape = (-(-h // PAD_MULTIPLE), -(-w // PAD_MULTIPLE))
        y_hat = self.entropy.decompress(strings, z_shape)
        x_hat = self.decode_latent(y_hat)[..., :h, :w].clamp(0, 1)
        return {"x_hat": x_hat}

    @property
    def num_strings(self) -> int:
        return self.config.entropy.slices + 1

    def describe(self) -> dict:
        return {"size": self.size, "variant": self.variant, "config": self.config.to_dict()}

    def fingerprint(self) -> bytes:
        """8 bytes identifying architecture and weights (entropy tables included).

        A ``.csa`` file carries it, so decoding with any other checkpoint is refused
        instead of producing garbage.
        """
        h = hashlib.blake2b(digest_size=8)
        h.update(json.dumps({"variant": self.variant, "config": self.config.to_dict()}, sort_keys=True).encode())
        for name, tensor in sorted(self.state_dict().items()):
            h.update(name.encode())
            t = tensor.detach().to("cpu").contiguous()
            h.update(str(t.dtype).encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        return h.digest()


def build_model(size: str = "demo", variant: str = "full", **overrides) -> CSALIC:
    """A fresh codec of a named size (``paper`` or ``demo``) and ablation variant."""
    if size not in SIZES:
        raise CsalicError(f"unknown model size {size!r}; choose one of {', '.join(SIZES)}")
    config = replace(SIZES[size], **overrides) if overrides else SIZES[size]
    return CSALIC(config, variant, size=size)
