"""Learned comparators: any compressai ``CompressionModel``, trained and coded like CSA-LIC.

A study's ``learned`` entries name a codec by compressai registry name (``mbt2018-mean``,
``elic2022-chandelier``, ...) or by import path (``package.module:factory``, a user's own),
with the keyword arguments it is built with. :class:`LearnedCodec` wraps the model so that
the training loop, checkpoints and the ``.csa`` container treat it as they treat CSA-LIC:
images are padded to the model's stride and cropped back, and compressai's latent ``shape``
(which its ``decompress`` needs and the container has no field for) travels as the last
string of the file, so the rate counts it.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import struct
import sys
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from compressai.models import CompressionModel
from torch import Tensor

from ..errors import CsalicError

PAD_MULTIPLE = 64  # the 2^6 of compressai's hyperprior models (4 stride-2 stages, then 2 in the hyper path)


def resolve_factory(codec: str, import_root: str | Path | None = None) -> Callable[..., Any]:
    """A compressai registry name or ``module:factory`` -> the callable that builds the model."""
    if ":" not in codec:
        from compressai.registry import MODELS

        if codec not in MODELS:
            raise CsalicError(f"codec {codec!r} is not in compressai's registry (one of {', '.join(sorted(MODELS))}) "
                              "and not an import path module:factory")
        return MODELS[codec]
    module_name, _, attr = codec.partition(":")
    root = str(Path(import_root or ".").resolve())
    if root not in sys.path:  # a user's module beside the study's params.yaml, as `python -m` would find it
        sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # a module that fails while importing is as unusable as a missing one
        raise CsalicError(f"codec {codec!r}: module {module_name!r} does not import "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise CsalicError(f"codec {codec!r}: module {module_name!r} has no callable {attr!r}")
    return factory


def build_inner(codec: str, args: dict | None = None, import_root: str | Path | None = None) -> CompressionModel:
    """Build and check the model an entry names: a ``CompressionModel`` with ``compress``/``decompress``."""
    factory = resolve_factory(codec, import_root)
    try:
        model = factory(**(args or {}))
    except Exception as exc:
        raise CsalicError(f"codec {codec!r}: building it with {args or {}} failed "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(model, CompressionModel):
        raise CsalicError(f"codec {codec!r}: the factory returned a {type(model).__name__}, "
                          "not a compressai CompressionModel")
    missing = [m for m in ("compress", "decompress") if not callable(getattr(model, m, None))]
    if missing:
        raise CsalicError(f"codec {codec!r}: the model has no {' or '.join(missing)} method, so it cannot write "
                          "a bitstream")
    return model


class LearnedCodec(CompressionModel):
    """A compressai model under a study's method name, with CSA-LIC's coding interface."""

    def __init__(self, name: str, codec: str, args: dict | None = None, import_root: str | Path | None = None):
        super().__init__()
        self.variant = name  # the method name, as a CSA-LIC checkpoint names its variant
        self.size = None
        self.codec, self.args = codec, dict(args or {})
        self.inner = build_inner(codec, self.args, import_root)
        self.pad_multiple = int(getattr(self.inner, "pad_multiple", PAD_MULTIPLE))
        self._num_strings: int | None = None

    @property
    def entry(self) -> dict[str, Any]:
        return {"codec": self.codec, "args": self.args}

    def _pad(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.pad_multiple, (-w) % self.pad_multiple
        return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x

    def forward(self, x: Tensor) -> dict:
        h, w = x.shape[-2:]
        out = self.inner(self._pad(x))
        return {"x_hat": out["x_hat"][..., :h, :w], "likelihoods": out["likelihoods"]}

    def aux_loss(self) -> Tensor:
        return self.inner.aux_loss()

    def update(self, scale_table=None, force: bool = False) -> bool:
        self._num_strings = None
        return self.inner.update(scale_table=scale_table, force=force)

    @torch.no_grad()
    def compress(self, x: Tensor) -> dict:
        h, w = x.shape[-2:]
        out = self.inner.compress(self._pad(x))
        shape = [int(s) for s in out["shape"]]
        strings = [list(s) for s in out["strings"]] + [[struct.pack(f">B{len(shape)}I", len(shape), *shape)]]
        return {"strings": strings, "shape": (h, w)}

    @torch.no_grad()
    def decompress(self, strings: list[list[bytes]], shape: tuple[int, int]) -> dict:
        h, w = int(shape[0]), int(shape[1])
        packed = strings[-1][0]
        if not packed or len(packed) != 1 + 4 * packed[0]:
            raise ValueError("the latent-shape string is damaged")
        latent = list(struct.unpack(f">{packed[0]}I", packed[1:]))
        x_hat = self.inner.decompress(strings[:-1], latent)["x_hat"]
        return {"x_hat": x_hat[..., :h, :w].clamp(0, 1)}

    @property
    def num_strings(self) -> int:
        """The strings a file holds (the model's, plus the latent shape): counted once on a blank image."""
        if self._num_strings is None:
            p = next(self.parameters())
            blank = torch.zeros(1, 3, self.pad_multiple, self.pad_multiple, device=p.device)
            self._num_strings = len(self.compress(blank)["strings"])
        return self._num_strings

    def describe(self) -> dict:
        return {"size": None, "variant": self.variant, "learned": self.entry}

    def fingerprint(self) -> bytes:
        """8 bytes identifying the model and its weights, as :meth:`CSALIC.fingerprint` does."""
        h = hashlib.blake2b(digest_size=8)
        h.update(json.dumps({"method": self.variant, **self.entry}, sort_keys=True, default=str).encode())
        for name, tensor in sorted(self.state_dict().items()):
            h.update(name.encode())
            t = tensor.detach().to("cpu").contiguous()
            h.update(str(t.dtype).encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        return h.digest()


def check_learned(params: dict, source: str = "params", import_root: str | Path | None = None) -> None:
    """Build each ``learned`` entry once: a path that does not import, a factory that returns something
    else than a ``CompressionModel``, or a model without ``compress``/``decompress`` is one line here,
    before any job starts."""
    for name, entry in (params.get("learned") or {}).items():
        try:
            build_inner(entry["codec"], entry.get("args"), import_root)
        except CsalicError as exc:
            raise CsalicError(f"{source}: learned.{name}: {exc}") from None
