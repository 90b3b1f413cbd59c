"""CSA-LIC: chroma superpixel aggregation learned image compression for machines.

The codec (:func:`build_model`) is a compressai ``CompressionModel``; the rest of
the package trains it, evaluates it against task networks and anchors, and
builds the paper's tables.
"""

import warnings

__version__ = "0.1.0"

# compressai still calls torch.jit.script at import; the deprecation is theirs to fix.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
# Training flushes subnormals to zero for speed; numpy then warns once per dtype about it.
warnings.filterwarnings("ignore", message=r".*smallest subnormal.*", category=UserWarning)


def build_model(size: str = "demo", variant: str = "full"):
    """Return an untrained CSA-LIC codec of a named ``size`` and ablation ``variant``."""
    from .codec.model import build_model as _build

    return _build(size, variant)


__all__ = ["build_model", "__version__"]
