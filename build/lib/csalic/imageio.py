"""Reading user images into RGB tensors and writing reconstructions, with one-line errors.

Every mode PIL can open is brought to 8-bit RGB: EXIF orientation applied,
alpha composited on white (the codec has no alpha channel), palette, greyscale
and CMYK converted, 16-bit and 32-bit integer images scaled down from their full
range rather than clipped.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import CsalicError, UnreadableImageError
from .io import atomic_path

DEFAULT_MAX_PIXELS = 1 << 26


def to_rgb(img: Image.Image) -> Image.Image:
    """The one conversion to 8-bit RGB used by compression, evaluation and training."""
    img = ImageOps.exif_transpose(img)
    if img.mode == "F":  # float images: [0, 1] if they fit, else taken as 0..255
        arr = np.asarray(img, dtype=np.float64)
        arr = arr * 255.0 if arr.size and float(arr.max()) <= 1.0 else arr
        img = Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def load_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    p = Path(path)
    if not p.is_file():
        raise CsalicError(f"image {p} not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                if img.width * img.height > max_pixels:
                    raise UnreadableImageError(f"image {p} is {img.width}x{img.height}, above the {max_pixels}-pixel limit")
                img.load()
                return to_rgb(img)
    except CsalicError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombWarning,
            Image.DecompressionBombError) as exc:
        raise UnreadableImageError(f"cannot read image {p}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """8-bit RGB image -> (1, 3, H, W) float in [0, 1]."""
    arr = np.asarray(img, dtype=np.uint8).copy()
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    arr = x.detach().squeeze(0).clamp(0, 1).mul(255.0).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr, "RGB")


def read_tensor(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> torch.Tensor:
    return pil_to_tensor(load_image(path, max_pixels))


def save_png(path: str | Path, x: torch.Tensor) -> None:
    img = tensor_to_pil(x)
    with atomic_path(path, suffix=".png") as tmp:
        img.save(tmp, format="PNG")
