"""The study's vocabulary, spelled once: codec names and the anchor-point grammar.

Free of numpy, torch and PIL, so the command line, the Snakefile and the schema
checks can read it without paying for the stack.
"""

from __future__ import annotations

# What `csalic evaluate --codec` accepts: the learned codec, the anchors, and no compression.
CODEC_NAMES = ("csalic", "vvc", "hevc-qp", "hevc", "jpeg", "webp", "avif", "none")
# Anchors coded at a QP (the others at a quality 1..100), with each one's largest QP.
QP_CODECS = {"vvc": 63, "hevc-qp": 51}
# An anchor point as params.yaml lists it: none, <codec>-q<quality> or <codec>-qp<QP>.
POINT_PATTERN = r"none|(hevc|jpeg|webp|avif)-q\d+|(vvc|hevc)-qp\d+"
