"""One evaluation point (:func:`evaluate_point`, the body of a Ray task), and all of a study's
points, on every dataset, side by side as Ray tasks.

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

from . import layout
from ..errors import CsalicError
from ..names import QP_CODECS
from .points import (common_inputs, is_current, parse_point, point_inputs, point_keywords, require_trained, study_points,
                     write_inputs)
from .worker import import_torch, task_body


def evaluate_point(params: dict, dataset: str, *, variant: str | None = None,
                   lmbda: float | None = None, anchor: str | None = None, track: bool = True,
                   inputs: dict | None = None, threads: int | None = None, seed: int | None = None) -> Path:
    """Evaluate one trained codec (at λ, under training seed ``seed``; None: the study's) or one anchor
    point on one dataset; returns the output folder.

    ``threads``: torch's threads for it; None keeps the process's (an evaluation task has set them to
    the CPUs Ray reserved for it).

    The folder also gets ``inputs.json``, what the result depends on, so that a stage run over
    every point can tell a current result from a stale one.
    """
    if (anchor is None) == (variant is None or lmbda is None):
        raise CsalicError("give either an anchor point or both a variant and a λ")
    if dataset not in params["eval"]["datasets"]:
        raise CsalicError(f"dataset {dataset!r} is not in eval.datasets ({', '.join(params['eval']['datasets'])})")
    from ..evaluation.evaluate import run_evaluation
    from .params import params_hash

    images, ann = layout.dataset(params, dataset)
    oid = layout.oid_files(params, dataset) if layout.protocol(params, dataset) == "oid" else None
    common = dict(dataset_name=dataset, task_net=params["task"]["name"], task_weights=layout.task_net(params),
                  oid_files=oid,
                  params_hash=params_hash(params), vvc={"vvc_encoder": params["anchors"].get("vvc_encoder")},
                  device=params["eval"]["device"], threads=threads, max_images=params["eval"]["max_images"],
                  progress=False)
    if anchor is not None:
        codec, value = parse_point(anchor)
        out = layout.eval_dir(params, dataset, anchor)
        setting = {"qp": value} if codec in QP_CODECS else {"quality": value} if value is not None else {}
        run_evaluation(codec, images, ann, out=out, **setting, **common)
    else:
        point = layout.csalic_point(variant, lmbda, seed)
        require_trained(params, variant, point)
        checkpoint = layout.job_dir(params, variant, lmbda, seed) / "final.pt"
        if not checkpoint.exists():
            raise CsalicError(f"trained codec {point} not found at {checkpoint}: run its training stage first")
        out = layout.eval_dir(params, dataset, point)
        run_evaluation("csalic", images, ann, out=out, checkpoint=checkpoint, learned=layout.learned(params),
                       seed=layout.seed_of(params, seed), **common)
    if inputs is None:
        inputs = point_inputs(params, common_inputs(params, dataset), variant=variant, lmbda=lmbda, anchor=anchor,
                              seed=seed)
    write_inputs(out, inputs)
    if not track:
        return out
    from .tracking_results import log_evaluation, warn

    try:  # from the driver side, as training is logged: a store that is down loses nothing
        log_evaluation(out / "summary.json", params)
    except CsalicError as exc:
        warn(f"{dataset} {out.name}", exc)
    return out


@task_body
def _eval_task(cwd: str, params: dict, dataset: str, kw: dict, inputs: dict) -> str:
    """Body of one Ray task (module level: the dispatcher and Ray find it by name)."""
    import ray

    torch = import_torch()
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
        known = dict(chosen)
        chosen = [(p, known[p] if p in known else point_keywords(p, params)) for p in dict.fromkeys(points)]
    missing = [p for p, kw in chosen if "variant" in kw
               and not (layout.job_dir(params, kw["variant"], kw["lmbda"], kw.get("seed")) / "final.pt").is_file()]
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
            try:  # one unreadable result costs its own point, never the points after it
                summary = json.loads((out / "summary.json").read_text())
                line = f"{summary['bpp']:.4f} bpp, mAP@0.5 bbox {summary['map50_bbox']}"
            except (OSError, ValueError, KeyError, TypeError) as exc:
                failed.append(f"{dataset} {name}: its summary.json cannot be read ({type(exc).__name__}: {exc})")
                echo(f"FAILED {failed[-1]}")
                continue
            echo(f"done {dataset} {name}: {line}")
            if track:  # through the keeper's dispatcher when it serves this code (MLflow imported once)
                try:
                    sub.track("csalic.study.tracking_results:log_evaluation", str(out / "summary.json"), params,
                              uri=params["tracking"]["uri"])
                except CsalicError as exc:
                    from .tracking_results import warn

                    warn(f"{dataset} {name}", exc)
    return failed
