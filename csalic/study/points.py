"""A study's evaluation points: their names, what each is (a trained codec at a λ, or an anchor at
a setting), and ``inputs.json``, what a point's result depends on, so that a rerun can tell a
current result from a stale one.  Torch-free: the Snakefile and the report read it, and it sits
below both the evaluation stage (:mod:`csalic.study.eval_sweep`) and the stage functions
(:mod:`csalic.study.pipeline`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from . import layout
from ..errors import CsalicError
from ..io import atomic_write_json
from ..names import POINT_PATTERN, QP_CODECS

INPUTS = "inputs.json"


def study_points(params: dict) -> list[tuple[str, dict[str, Any]]]:
    """(folder name, :func:`csalic.study.eval_sweep.evaluate_point` keywords) of every point, codecs first."""
    points = [(layout.csalic_point(v, lm, s), {"variant": v, "lmbda": float(lm), **({"seed": s} if s is not None else {})})
              for v in layout.trained(params) for lm in params["lambdas"] for s in layout.train_seeds(params)]
    return points + [(p, {"anchor": p}) for p in params["anchors"]["points"]]


def common_inputs(params: dict, dataset: str) -> dict[str, Any]:
    """What every point on ``dataset`` depends on (hashed once per stage: paper weights are large)."""
    from ..provenance import sha256_of

    _, ann = layout.dataset(params, dataset)
    weights = layout.task_net(params)
    protocol = layout.protocol(params, dataset)
    files = {}
    if protocol == "oid":  # the ground truth the protocol reads besides the converted JSON
        f = layout.oid_files(params, dataset)
        files = {p.name: sha256_of(p) if p.is_file() else None
                 for p in (f.boxes, f.image_labels, f.hierarchy, f.masks_csv) if p is not None}
    return {"dataset": dataset, "annotations_sha256": sha256_of(ann) if ann.is_file() else None,
            "task_weights_sha256": sha256_of(weights) if weights.is_file() else None,
            "protocol": protocol, "protocol_files_sha256": files, "eval": params["eval"], "task": params["task"]}


def point_inputs(params: dict, common: dict[str, Any], *, variant: str | None = None,
                 lmbda: float | None = None, anchor: str | None = None, seed: int | None = None) -> dict[str, Any]:
    """``common`` plus what is particular to one point."""
    from ..provenance import sha256_of

    if anchor is not None:
        extra: dict[str, Any] = {"anchor": anchor}
        if anchor.startswith("vvc"):
            extra["vvc_encoder"] = params["anchors"].get("vvc_encoder")
    else:
        ckpt = layout.job_dir(params, variant, lmbda, seed) / "final.pt"
        extra = {"variant": variant, "lmbda": layout.lambda_tag(lmbda),
                 "checkpoint_sha256": sha256_of(ckpt) if ckpt.is_file() else None}
        if seed is not None:  # a one-seed study's inputs stay as they were
            extra["seed"] = int(seed)
    return {**common, **extra}


def write_inputs(out: Path, inputs: dict[str, Any]) -> None:
    """Written after summary.json: a point killed in between is evaluated again."""
    atomic_write_json(out / INPUTS, inputs)


def is_current(out: Path, inputs: dict[str, Any]) -> bool:
    try:
        recorded = json.loads((out / INPUTS).read_text())
    except (OSError, ValueError):
        return False
    return (out / "summary.json").is_file() and recorded == json.loads(json.dumps(inputs))


def point_keywords(point: str, params: dict) -> dict:
    """``csalic-full-lambda_0.001`` -> variant and λ; an anchor point -> itself (checked against the study)."""
    codec = layout.parse_csalic_point(point)
    if codec is None:
        parse_point(point)
        return {"anchor": point}
    require_trained(params, codec[0], point)
    layout.check_seed(params, codec[2], f"point {point!r}", layout.csalic_point(codec[0], codec[1]))
    return {"variant": codec[0], "lmbda": codec[1], **({"seed": codec[2]} if codec[2] is not None else {})}


def require_trained(params: dict, name: str, point: str) -> None:
    """``name`` is one of the methods the study trains, or a one-line error naming ``point``."""
    if name not in layout.trained(params):
        raise CsalicError(f"point {point!r}: variant {name!r} is not one of the study's variants or learned "
                          f"codecs ({', '.join(layout.trained(params))})")


def parse_point(point: str) -> tuple[str, int | None]:
    """``vvc-qp57`` -> (``vvc``, 57); ``hevc-qp45`` -> (``hevc-qp``, 45); ``jpeg-q10`` -> (``jpeg``, 10)."""
    if not re.fullmatch(POINT_PATTERN, point):
        raise CsalicError(f"anchor point {point!r} is not none, hevc-qN, jpeg-qN, webp-qN, avif-qN, vvc-qpN "
                          "or hevc-qpN")
    if point == "none":
        return "none", None
    codec, setting = point.split("-", 1)
    if setting.startswith("qp"):
        codec = "hevc-qp" if codec == "hevc" else codec
        value = int(setting[2:])
        if value > QP_CODECS[codec]:
            raise CsalicError(f"anchor point {point!r}: QP above {QP_CODECS[codec]}")
        return codec, value
    return codec, int(setting[1:])


def result_files(params: dict) -> tuple[list[Path], list[Path]]:
    """(summary.json of each of the study's points evaluated so far, those not yet), on every dataset.

    Only the points the study lists: a folder left by an earlier λ or QP list (DVC keeps its
    evaluation folders between runs) is not the study's, in the tables or in MLflow."""
    found, missing = [], []
    for dataset in params["eval"]["datasets"]:
        for name, _ in study_points(params):
            f = layout.eval_dir(params, dataset, name) / "summary.json"
            (found if f.is_file() else missing).append(f)
    return sorted(found), missing


def anchor_method(params: dict) -> str:
    """The BD anchor: ``anchors.primary`` (VVC-Intra, or HEVC-Intra by QP then by quality) when its points
    are evaluated, else the other of the two, else the first other anchor listed."""
    codecs = [parse_point(p)[0] for p in params["anchors"]["points"]]
    order = {"vvc": ("vvc", "hevc-qp", "hevc"), "hevc": ("hevc-qp", "hevc", "vvc")}[params["anchors"]["primary"]]
    for preferred in order:
        if preferred in codecs:
            return preferred
    others = [c for c in codecs if c != "none"]
    if not others:
        raise CsalicError("anchors.points lists no codec to compare against (only 'none'): add hevc-qN or vvc-qpN")
    return others[0]
