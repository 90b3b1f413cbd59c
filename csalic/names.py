"""The study's vocabulary, spelled once: variants, codec names and the anchor-point grammar.

Free of numpy, torch and PIL, so the command line, the Snakefile and the schema
checks can read it without paying for the stack.
"""

from __future__ import annotations

# The codec's ablation variants, the rows of the paper's Table 2 (what each composes:
# csalic.codec.model.VARIANTS, whose keys a test holds to this tuple, as it holds the schema's enum).
VARIANT_NAMES = ("full", "no_casc", "concat", "baseline")



def trained_method(name: str) -> str:
    """A trained method's name in points, tables and MLflow: ``csalic-<variant>``, or a learned codec's own."""
    return f"csalic-{name}" if name in VARIANT_NAMES else name


# What `csalic evaluate --codec` accepts: the learned codec, the anchors, and no compression.
CODEC_NAMES = ("csalic", "vvc", "hevc-qp", "hevc", "jpeg", "webp", "avif", "none")
# Anchors coded at a QP, with each one's largest QP, and those coded at a quality 1..100.
QP_CODECS = {"vvc": 63, "hevc-qp": 51}
QUALITY_CODECS = ("hevc", "jpeg", "webp", "avif")
# An anchor point as params.yaml lists it: none, <codec>-q<quality> or <codec>-qp<QP>.
POINT_PATTERN = r"none|(hevc|jpeg|webp|avif)-q\d+|(vvc|hevc)-qp\d+"
# Steps of the demo task network's training (`csalic train-task-net --steps`): mAP@0.5 = 1.0 (bbox
# and segm) on the default demo data in ~3 CPU minutes.
DEMO_TASK_STEPS = 300

# the files of a demo task-network warm start (csalic pretrain-task-net); the workflows list them as inputs
TASK_WARM_START_WEIGHTS = "demo_task_net.pt"
TASK_WARM_START_PROVENANCE = "provenance.json"

# each variant's components (SCSM, CFTM, CGM), torch-free for the report; csalic.codec.model.VARIANTS is this
VARIANT_COMPONENTS: dict[str, dict[str, bool]] = dict(zip(VARIANT_NAMES, (
    {"scsm": True, "cftm": True, "cgm": True},      # full
    {"scsm": False, "cftm": True, "cgm": False},    # no_casc
    {"scsm": True, "cftm": False, "cgm": True},     # concat
    {"scsm": False, "cftm": False, "cgm": False},   # baseline
), strict=True))
