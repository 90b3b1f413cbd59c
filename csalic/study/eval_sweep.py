"""All of a study's evaluation points, on every dataset, side by side as Ray tasks.

This is what DVC's evaluation stage runs (``csalic stage evaluate``): DVC runs its stages one
after another, so a stage per point would leave all but one core idle.  Each (dataset, point)
is one Ray task asking for one CPU (and one GPU when ``eval.device`` is CUDA and the cluster
has GPUs), so the cluster's size bounds how many run at once.  A point whose folder holds a
finished result with the same inputs (``inputs.json``: the codec's checkpoint, the task
network's weights, the annotations and the evaluation settings) is not evaluated again, so a
stage rerun after one λ changed evaluates only that λ.  The driver logs each result to
MLflow, as the training sweep does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from . import layout
from ..errors import CsalicError
from ..io import atomic_write_json
from .worker import import_torch, task_body

INPUTS = "inputs.json"


def study_points(params: dict) -> list[tuple[str, dict[str, Any]]]:
    """(folder name, :func:`csalic.study.pipeline.evaluate_point` keywords) of every point, codecs first."""
    points = [(layout.csalic_point(v, lm), {"variant": v, "lmbda": float(lm)})
              for v in layout.trained(params) for lm in params["lambdas"]]
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
                 lmbda: float | None = None, anchor: str | None = None) -> dict[str, Any]:
    """``common`` plus what is particular to one point."""
    from ..provenance import sha256_of

    if anchor is not None:
        extra: dict[str, Any] = {"anchor": anchor}
        if anchor.startswith("vvc"):
            extra["vvc_encoder"] = params["anchors"].get("vvc_encoder")
    else:
        ckpt = layout.job_dir(params, variant, lmbda) / "final.pt"
        extra = {"variant": variant, "lmbda": layout.lambda_tag(lmbda),
                 "checkpoint_sha256": sha256_of(ckpt) if ckpt.is_file() else None}
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


@task_body
def _eval_task(cwd: str, params: dict, dataset: str, kw: dict, inputs: dict) -> str:
    """Body of one Ray task (module level: the dispatcher and Ray find it by name)."""
    import ray

    torch = import_torch()
    from .pipeline import evaluate_point

    os.chdir(cwd)  # the study's paths are relative to the checkout, as in every stage
    # a warm worker may have trained before (training flushes denormals): evaluate as a fresh process does
    torch.set_flush_denormal(False)
    torch.set_num_threads(max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))))
    out = evaluate_point(params, dataset, track=False, inputs=inputs, **kw)
    return str(out)


def evaluate_points(params: dict, datasets: list[str], *, points: list[str] | None = None, track: bool = True,
                    address: str | None = None, echo=print) -> list[Path]:
    """Evaluate the study's points (or the named ones) on ``datasets`` unless already current; returns all folders."""
    for dataset in datasets:
        if dataset not in params["eval"]["datasets"]:
            raise CsalicError(f"dataset {dataset!r} is not in eval.datasets "
                              f"({', '.join(params['eval']['datasets'])})")
    chosen = study_points(params)
    if points is not None:
        from .pipeline import point_keywords

        known = dict(chosen)
        chosen = [(p, known[p] if p in known else point_keywords(p, params)) for p in dict.fromkeys(points)]
    missing = [f"{kw['variant']} λ={layout.lambda_tag(kw['lmbda'])}" for _, kw in chosen if "variant" in kw
               and not (layout.job_dir(params, kw["variant"], kw["lmbda"]) / "final.pt").is_file()]
    if missing:
        raise CsalicError(f"trained codec(s) not found: {', '.join(missing)}: run their training stage first")
    todo, outs = [], []
    for dataset in datasets:
        common = common_inputs(params, dataset)
        for name, kw in chosen:
            outs.append(layout.eval_dir(params, dataset, name))
            inputs = point_inputs(params, common, **kw)
            if is_current(outs[-1], inputs):
                echo(f"{dataset} {name}: evaluated already, with the same inputs")
            else:
                todo.append((dataset, name, kw, inputs))
    failed: list[str] = []
    if todo:
        failed = _run(params, todo, track=track, address=address, echo=echo)
    if failed:
        raise CsalicError(f"{len(failed)} of {len(todo)} evaluation(s) failed: {'; '.join(failed)}")
    return outs


def _run(params: dict, todo: list, *, track: bool, address: str | None, echo) -> list[str]:
    from .raycluster import connect, prepare_auth

    address = address or params.get("ray", {}).get("address")
    prepare_auth(address)  # before Ray is imported: it reads the auth mode then
    import ray

    ray_cfg = params.get("ray", {})
    failed: list[str] = []
    with connect(address, layout.ray_registry(params)) as addr:
        resources: dict[str, float] = {"num_cpus": ray_cfg.get("cpus_per_task", 1)}
        if str(params["eval"]["device"]).startswith("cuda") and ray.cluster_resources().get("GPU", 0) > 0:
            resources["num_gpus"] = ray_cfg.get("gpus_per_task", 1)
        echo(f"ray: {addr}, {len(todo)} evaluation(s), each asking for "
             + ", ".join(f"{v} {k.split('_')[1][:-1].upper()}" for k, v in resources.items()))
        from .raycluster import submitter

        sub = submitter()
        options = {"max_retries": int(ray_cfg.get("max_retries", 2)), "retry_exceptions": True, **resources}
        cwd = str(Path.cwd())
        pending = {sub.submit("csalic.study.eval_sweep:_eval_task", options, (cwd, params, dataset, kw, inputs),
                              str(layout.eval_dir(params, dataset, name).resolve())): (dataset, name)
                   for dataset, name, kw, inputs in todo}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            dataset, name = pending.pop(ready[0])
            value, msg = sub.outcome(ready[0])
            if msg is not None:
                failed.append(f"{dataset} {name}: {msg}")
                echo(f"FAILED {failed[-1]}")
                continue
            out = Path(value)
            summary = json.loads((out / "summary.json").read_text())
            echo(f"done {dataset} {name}: {summary['bpp']:.4f} bpp, mAP@0.5 bbox {summary['map50_bbox']}")
            if track:  # through the keeper's dispatcher when it serves this code (MLflow imported once)
                try:
                    sub.track("csalic.study.tracking_results:log_evaluation", str(out / "summary.json"), params,
                              uri=params["tracking"]["uri"])
                except CsalicError as exc:
                    from .tracking_results import warn

                    warn(f"{dataset} {name}", exc)
    return failed
