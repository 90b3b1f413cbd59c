"""Model complexity for the paper's Table 3: parameters, MACs/FLOPs and coding latency.

Counting uses torch's own ``FlopCounterMode`` over one eval-mode ``forward`` at the
requested resolution: analysis transforms (incl. SCSM, CFTM), hyper analysis and
both hyper syntheses, the per-slice mean/scale/LRP transforms, the synthesis heads
and the CGM, each once -- the network a learned codec runs, which is what
published FLOP figures count (entropy coding itself is not arithmetic the counter
sees).  ``FlopCounterMode`` counts 2 FLOPs per multiply-accumulate for convolutions
and matrix products, so ``macs = flops / 2`` throughout; element-wise work
(activations, GDN's square, softmax, the SCSM's association updates) is not
counted, by the same convention as ptflops/fvcore/thop.

Two ops it misses on CPU are counted here with analytic formulas instead of
silently contributing zero (:data:`ANALYTIC_OPS`; their share is ``analytic`` in the result):

* ``aten._scaled_dot_product_flash_attention_for_cpu`` (what
  ``F.scaled_dot_product_attention`` runs on CPU; torch registers only the CUDA
  kernels): torch's own ``sdpa_flop_count``, i.e. QK^T and PV products.
* ``torchvision::deform_conv2d`` (the CGM's two deformable convolutions):
  the convolution GEMM, ``out_elems * in_ch/groups * kh*kw`` MACs, plus the
  bilinear sampling of the im2col columns, 4 MACs (the 4-neighbour weighted sum)
  per sampled value, ``B * in_ch * kh*kw * Ho*Wo * 4`` (+1 per value with a mask);
  the interpolation-weight computation is not counted.

Which convention is the paper's 258.36 G?  MACs: no plausible resolution gives
258 G in FLOPs (2 per MAC) for a WACNN-sized codec.  The first release of this
reproduction measured 388.7 G MACs at 768x512 and 258.1 G at 512x512, so the
paper's figure could be read as MACs at 512x512; the lean widths of issue 15
(half-width luma at 1/2 resolution, bottleneck CFTM, narrower CGM; see
``csalic.codec.model.SIZES``) bring 768x512 itself under the paper's figure instead
(``count_macs``, untrained weights, 76.20 M parameters against the paper's 77.93 M):

    paper/full        MACs (G)   FLOPs (G)
    768x512            232.27     464.54
    640x480 (->x512)   193.43     386.86
    512x512            154.64     309.28
    paper/baseline (no SCSM/CFTM/CGM) at 768x512: 218.91 G MACs

Report MACs, name the resolution, and do not compare FLOPs (2x) with the paper's number.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Any, Callable

import torch
from torch import nn

from ..errors import CsalicError

#: formulas added to FlopCounterMode for ops it does not count, by op name
ANALYTIC_OPS = {
    "aten._scaled_dot_product_flash_attention_for_cpu": "torch sdpa_flop_count (QK^T + PV)",
    "torchvision.deform_conv2d": "GEMM out*in/groups*kh*kw + bilinear sampling 4 MACs/sample",
}


# -- parameters ------------------------------------------------------------------------
def count_params(model: nn.Module) -> dict[str, Any]:
    """Total parameters and the share of each top-level child (shared tensors counted once)."""
    total = sum(p.numel() for p in model.parameters())
    by_module = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    return {"total": total, "by_module": by_module}


# -- MACs --------------------------------------------------------------------------------
def _deform_conv2d_flop(input_shape, weight_shape, offset_shape, mask_shape, bias_shape, stride_h, stride_w,
                        pad_h, pad_w, dil_h, dil_w, groups, offset_groups, use_mask, *args,
                        out_shape=None, **kwargs) -> int:
    b, in_ch = input_shape[0], input_shape[1]
    out_ch, in_per_group, kh, kw = weight_shape
    ho, wo = out_shape[-2:]
    gemm = b * out_ch * ho * wo * in_per_group * kh * kw
    samples = b * in_ch * kh * kw * ho * wo
    sampling = samples * (4 + (1 if use_mask else 0))
    return 2 * (gemm + sampling)  # FlopCounterMode convention: 2 FLOPs per MAC


def _sdpa_cpu_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _analytic_mapping() -> dict[Any, Callable[..., int]]:
    """Formulas for the ops torch's registry lacks (an existing registration wins)."""
    import torchvision  # noqa: F401  -- registers torch.ops.torchvision
    from torch.utils.flop_counter import flop_registry

    mapping: dict[Any, Callable[..., int]] = {}
    candidates = [
        (getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None), _sdpa_cpu_flop),
        (getattr(torch.ops.torchvision, "deform_conv2d", None), _deform_conv2d_flop),
    ]
    for op, formula in candidates:
        if op is not None and op not in flop_registry:
            mapping[op] = formula
    return mapping


def count_macs(model: nn.Module, height: int, width: int, batch: int = 1) -> dict[str, Any]:
    """MACs and FLOPs (= 2 MACs) of one eval-mode forward at ``height`` x ``width``.

    Returns ``macs``, ``flops``, ``by_module`` (MACs per top-level child, 0 for
    children without counted ops), ``by_op`` (MACs per op) and ``analytic`` (MACs
    contributed by the formulas of :data:`ANALYTIC_OPS`).
    """
    from torch.utils.flop_counter import FlopCounterMode

    if height <= 0 or width <= 0:
        raise CsalicError(f"height and width must be positive, got {height}x{width}")
    mapping = _analytic_mapping()
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(0)).to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False, depth=None, custom_mapping=mapping) as counter:
            model(x)
    finally:
        model.train(was_training)
    counts = counter.get_flop_counts()
    total = counter.get_total_flops()
    root = type(model).__name__
    by_module = {name: sum(counts.get(f"{root}.{name}", {}).values()) // 2 for name, _ in model.named_children()}
    by_op = {str(op): n // 2 for op, n in counts.get("Global", {}).items()}
    analytic_names = {str(op) for op in mapping}
    return {
        "height": height,
        "width": width,
        "batch": batch,
        "macs": total // 2,
        "flops": total,
        "by_module": by_module,
        "by_op": by_op,
        "analytic": {op: n for op, n in by_op.items() if op in analytic_names},
    }


# -- latency -----------------------------------------------------------------------------
def device_name(device: str | torch.device) -> str:
    """Human name of the timing device: the GPU's, or the CPU model from /proc/cpuinfo."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def entropy_ready(model: nn.Module) -> bool:
    """True when every entropy model has its CDF tables (``update`` was called)."""
    from compressai.entropy_models import EntropyModel

    models = [m for m in model.modules() if isinstance(m, EntropyModel)]
    return bool(models) and all(m._offset.numel() > 0 for m in models)


def sample_image(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A deterministic, image-like input: smooth colour gradients plus mild texture.

    Entropy-coding time depends on the symbols, so pure noise (or a flat image)
    would misstate it; this sits between the two.
    """
    g = torch.Generator().manual_seed(seed)
    yy = torch.linspace(0, 1, height).view(1, 1, height, 1)
    xx = torch.linspace(0, 1, width).view(1, 1, 1, width)
    phase = torch.rand(1, 3, 1, 1, generator=g) * 6.28
    smooth = 0.5 + 0.3 * torch.sin(6 * xx + phase) * torch.cos(4 * yy + phase)
    return (smooth + 0.05 * torch.randn(1, 3, height, width, generator=g)).clamp(0, 1)


def median_times(fn_encode: Callable[[], Any], fn_decode: Callable[[Any], Any], device: torch.device,
                 runs: int, warmup: int) -> dict[str, Any]:
    """Time ``fn_encode`` then ``fn_decode(encoded)`` ``warmup + runs`` times; medians of the last ``runs``."""
    if runs < 1 or warmup < 0:
        raise CsalicError(f"need runs >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    cuda = device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    enc_times: list[float] = []
    dec_times: list[float] = []
    encoded = None
    with torch.no_grad():
        for i in range(warmup + runs):
            sync()
            t0 = time.perf_counter()
            encoded = fn_encode()
            sync()
            t1 = time.perf_counter()
            fn_decode(encoded)
            sync()
            t2 = time.perf_counter()
            if i >= warmup:
                enc_times.append(t1 - t0)
                dec_times.append(t2 - t1)
    return {
        "encode_s": statistics.median(enc_times),
        "decode_s": statistics.median(dec_times),
        "encode_runs_s": enc_times,
        "decode_runs_s": dec_times,
        "encoded": encoded,
    }


def measure_latency(model: nn.Module, height: int, width: int, device: str | torch.device = "cpu",
                    runs: int = 5, warmup: int = 2, image: torch.Tensor | None = None) -> dict[str, Any]:
    """Encode/decode seconds of one image through the full ``.csa`` path, entropy coding included.

    Uses :func:`csalic.codec.encode_tensor` / :func:`~csalic.codec.decode_bytes`
    (transforms + rANS + container).  The model's fingerprint is computed once
    up front: hashing ~78 M weights per call is a file-format cost of the CLI,
    not of the codec, and would add ~0.5 s to every paper-size run.  Entropy
    tables are built (``update(force=True)``) only if missing.  The model is moved
    to ``device``.
    """
    from ..codec.coding import decode_bytes, encode_tensor

    if image is None and (height <= 0 or width <= 0):
        raise CsalicError(f"height and width must be positive, got {height}x{width}")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CsalicError("--device cuda requested but torch sees no CUDA device; use --device cpu")
    model = model.to(dev).eval()
    if not entropy_ready(model):
        model.update(force=True)
    x = (image if image is not None else sample_image(height, width)).to(dev)
    h, w = x.shape[-2:]
    fingerprint = model.fingerprint()
    res = median_times(
        lambda: encode_tensor(model, x, fingerprint),
        lambda enc: decode_bytes(model, enc.data, fingerprint, max_pixels=max(h * w, 1)),
        dev, runs, warmup,
    )
    enc = res.pop("encoded")
    return {
        **res,
        "height": int(h),
        "width": int(w),
        "bytes": len(enc.data),
        "bpp": enc.bpp,
        "runs": runs,
        "warmup": warmup,
        "device": dev.type,
        "device_name": device_name(dev),
        "threads": torch.get_num_threads() if dev.type == "cpu" else None,
        "cpu_count": os.cpu_count(),
    }

# -- the study's Table 3 row -----------------------------------------------------------------
def measure(size: str, variant: str = "full", height: int = 512, width: int = 768, *, latency: bool = False,
            runs: int = 5, warmup: int = 2, device: str = "cpu", threads: int | None = None,
            out: str | os.PathLike | None = None) -> dict[str, Any]:
    """Parameters and MACs per module of an untrained codec, and with ``latency`` its coding times.

    ``csalic complexity``'s work; ``out`` also gets the result as JSON (atomically).
    """
    from ..codec.model import SIZES, VARIANTS, build_model

    if size not in SIZES:
        raise CsalicError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    if variant not in VARIANTS:
        raise CsalicError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if height <= 0 or width <= 0:
        raise CsalicError(f"--height and --width must be positive, got {height}x{width}")
    if threads is not None and threads < 1:
        raise CsalicError(f"--threads must be >= 1, got {threads}")
    if latency:
        if runs < 1 or warmup < 0:
            raise CsalicError(f"need --runs >= 1 and --warmup >= 0, got {runs} and {warmup}")
        if device != "cpu" and not device.startswith("cuda"):
            raise CsalicError(f"unknown device {device!r}; use cpu or cuda")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise CsalicError("--device cuda requested but torch sees no CUDA device; use --device cpu")
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(size, variant).eval()
    params = count_params(model)
    macs = count_macs(model, height, width)
    result = {
        "size": size,
        "variant": variant,
        "height": height,
        "width": width,
        "params": params["total"],
        "params_m": params["total"] / 1e6,
        "macs": macs["macs"],
        "macs_g": macs["macs"] / 1e9,
        "flops": macs["flops"],
        "flops_g": macs["flops"] / 1e9,
        "params_by_module": params["by_module"],
        "macs_by_module": macs["by_module"],
        "modules": list(params["by_module"]),  # the codec's order (the JSON's keys come sorted)
        "macs_analytic": macs["analytic"],
        "threads": torch.get_num_threads(),
    }
    if latency:
        lat = measure_latency(model, height, width, device, runs=runs, warmup=warmup)
        result.update({k: lat[k] for k in ("encode_s", "decode_s", "encode_runs_s", "decode_runs_s", "runs",
                                           "warmup", "device", "device_name", "threads", "bytes", "bpp")})
    if out:
        from ..io import atomic_write_json

        atomic_write_json(out, result)
    return result


def format_table(r: dict) -> str:
    """:func:`measure`'s result as the per-module table ``csalic complexity`` prints."""
    total_macs = r["macs"] or 1
    lines = [f"CSA-LIC {r['size']}/{r['variant']} at {r['width']}x{r['height']} (untrained weights)",
             f"  {'module':<16}{'params (M)':>12}{'MACs (G)':>11}{'share':>8}"]
    for name, n in r["params_by_module"].items():
        m = r["macs_by_module"].get(name, 0)
        lines.append(f"  {name:<16}{n / 1e6:>12.3f}{m / 1e9:>11.2f}{m / total_macs:>8.1%}")
    lines += [
        f"  {'total':<16}{r['params_m']:>12.3f}{r['macs_g']:>11.2f}",
        f"  FLOPs = 2 x MACs: {r['flops_g']:.2f} G (the paper's 258.36 G are MACs)",
    ]
    if "encode_s" in r:
        threads = f", {r['threads']} thread{'s' if r['threads'] != 1 else ''}" if r.get("threads") else ""
        lines += [
            f"  encode {r['encode_s']:.3f} s, decode {r['decode_s']:.3f} s "
            f"(median of {r['runs']} after {r['warmup']} warm-up, entropy coding included; "
            f"{r['device_name']}{threads}; {r['bpp']:.3f} bpp)",
        ]
    return "\n".join(lines)
