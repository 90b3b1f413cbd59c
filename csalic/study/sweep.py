"""Many training jobs as Ray tasks: one per (variant, λ), one GPU each when the cluster has GPUs.

Each task runs :func:`csalic.study.train.train_job`, which resumes from its job's
``last.pt``, so Ray's retry of a failed task continues where it stopped.  The
driver logs each finished job to MLflow, one at a time (tasks never write to the
tracking store; on the local keeper's instance the dispatcher makes the calls, so
that MLflow is imported once per machine), and a job that keeps failing is reported
by variant and λ while the others run to the end.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import layout
from ..errors import CsalicError
from ..names import VARIANT_NAMES
from ..io import atomic_write_json
from .jobs import JobSpec, finished_summary, spec_from_params, warmup_spec
from .worker import import_torch, task_body


@task_body
def _run_job(spec_dict: dict[str, Any]) -> dict[str, Any]:
    """Body of one Ray task (module level: the dispatcher and Ray find it by name)."""
    import ray

    start = time.time()  # the task's span includes its imports: on a busy machine they are most of it
    torch = import_torch()
    from .train import train_job

    spec = JobSpec(**spec_dict)
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    torch.set_num_threads(max(1, int(cpus)))  # no oversubscription when tasks share a machine's cores
    gpus = ray.get_gpu_ids()
    if gpus and torch.cuda.is_available():
        spec.device = "cuda"
    elif spec.device.startswith("cuda") and not torch.cuda.is_available():
        spec.device = "cpu"
    train_start = time.time()
    summary = train_job(spec, progress=False)
    return {
        "summary": summary,
        "worker": {"pid": os.getpid(), "host": socket.gethostname(), "gpu_ids": [str(g) for g in gpus],
                   "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "device": spec.device,
                   "start": start, "train_start": train_start, "end": time.time()},
    }


def plan(params: dict, variants: list[str] | None = None, lambdas: list[float] | None = None,
         max_steps: int | None = None, warmup_only: bool = False,
         seeds: list[int | None] | None = None) -> list[JobSpec]:
    """The jobs to run, each after the job it is fine-tuned from (a variant's warm-up comes first);
    every λ under every training seed (:func:`csalic.study.layout.train_seeds`)."""
    variants = variants or list(params["variants"])  # the learned codecs: the train_learned stage's
    unknown = [v for v in variants if v not in layout.trained(params) and v not in VARIANT_NAMES]
    if unknown:
        raise CsalicError(f"{unknown[0]!r} is not one of the study's variants or learned codecs "
                          f"({', '.join(layout.trained(params))})")
    lambdas = lambdas or list(params["lambdas"])
    for lm in lambdas:
        if not lm > 0:
            raise CsalicError(f"λ must be positive, got {lm}")
    specs: list[JobSpec] = []
    for v in variants:
        if layout.uses_warmup(params):
            specs.append(warmup_spec(params, v, max_steps=max_steps, device="cpu"))
        elif warmup_only:
            raise CsalicError("--warmup: this study has no warm-up (train.init is not warmup)")
        if not warmup_only:
            specs.extend(spec_from_params(params, v, lm, max_steps=max_steps, device="cpu", seed=s)
                         for lm in lambdas for s in (layout.train_seeds(params) if seeds is None else seeds))
    unique: dict[str, JobSpec] = {}  # one job per folder, in first-asked order
    for spec in specs:
        unique.setdefault(spec.out_dir, spec)
    specs = list(unique.values())
    for spec in specs:  # Ray workers do not share the driver's working directory
        spec.out_dir, spec.manifest, spec.image_root = (str(Path(p).resolve()) for p in
                                                        (spec.out_dir, spec.manifest, spec.image_root))
        if spec.task_weights:
            spec.task_weights = str(Path(spec.task_weights).resolve())
        if spec.init_from:
            spec.init_from = str(Path(spec.init_from).resolve())
    return specs


def _name(spec: JobSpec) -> str:
    seed = f" seed {spec.seed}" if "-seed_" in Path(spec.out_dir).name else ""  # another seed than the study's
    return f"{spec.variant} {'warm-up ' if spec.stage == 'warmup' else ''}λ={spec.lmbda:g}{seed}"


def _log_jobs(results: list[dict[str, Any]], params: dict, echo, log) -> None:
    for r in results:
        try:
            log(r["out_dir"], params)
        except CsalicError as exc:  # the result files keep everything: `csalic track` can re-log later
            echo(f"warning: MLflow logging of {r['variant']} λ={r['lmbda']:g} failed: {exc}")


def run_sweep(params: dict, specs: list[JobSpec], *, track: bool = True, address: str | None = None,
              report_path: str | Path | None = None, echo=print) -> dict[str, Any]:
    """Run ``specs`` on Ray; returns {"jobs": [...], "failed": [...]} and writes it to ``report_path``."""
    from .raycluster import connect, prepare_auth

    address = address or params.get("ray", {}).get("address")
    prepare_auth(address)
    import ray

    uri = params["tracking"]["uri"]
    results: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    todo = []
    for spec in specs:
        done = finished_summary(spec.out_dir, spec)
        if done is not None:
            results.append({"variant": spec.variant, "lmbda": spec.lmbda, "stage": spec.stage, "out_dir": spec.out_dir,
                            "status": "cached", "summary": done})
        else:
            todo.append(spec)
    ray_cfg = params.get("ray", {})
    if todo:
        with connect(address, layout.ray_registry(params)) as addr:
            gpus = ray.cluster_resources().get("GPU", 0)
            if gpus > 0:
                resources = {"num_gpus": ray_cfg.get("gpus_per_task", 1), "num_cpus": ray_cfg.get("cpus_per_task", 1)}
            else:
                resources = {"num_cpus": ray_cfg.get("cpus_per_task", 1)}
            echo(f"ray: {addr}, {len(todo)} job(s), each asking for "
                 + ", ".join(f"{v} {k.split('_')[1][:-1].upper()}" for k, v in resources.items()))
            from .raycluster import submitter

            sub = submitter()
            if track:  # fail in one line before any job runs when the results could not be logged
                sub.track("csalic.study.tracking:check_store", uri, uri=uri)
            options = {"max_retries": int(ray_cfg.get("max_retries", 2)), "retry_exceptions": True, **resources}
            parent_of = {spec.out_dir: str(Path(spec.init_from).parent) if spec.init_from else None for spec in todo}
            waiting = list(todo)  # a fine-tuned job is submitted once the job it continues has finished
            pending: dict[Any, JobSpec] = {}
            finished: set[str] = set()
            while waiting or pending:
                for spec in list(waiting):
                    parent = parent_of[spec.out_dir]
                    if parent in parent_of and parent not in finished:
                        if any(f["out_dir"] == parent for f in failed):
                            waiting.remove(spec)
                            failed.append({"variant": spec.variant, "lmbda": spec.lmbda, "stage": spec.stage,
                                           "out_dir": spec.out_dir,
                                           "error": f"not trained: the job it is fine-tuned from ({parent}) failed"})
                            echo(f"FAILED {_name(spec)}: {failed[-1]['error']}")
                        continue
                    waiting.remove(spec)
                    pending[sub.submit("csalic.study.sweep:_run_job", options, (asdict(spec),), spec.out_dir)] = spec
                if not pending:
                    continue
                ready, _ = ray.wait(list(pending), num_returns=1)
                spec = pending.pop(ready[0])
                out, msg = sub.outcome(ready[0])
                if msg is not None:
                    failed.append({"variant": spec.variant, "lmbda": spec.lmbda, "stage": spec.stage, "out_dir": spec.out_dir,
                                   "error": msg})
                    echo(f"FAILED {_name(spec)} after {int(ray_cfg.get('max_retries', 2)) + 1} attempt(s): {msg}")
                    continue
                finished.add(spec.out_dir)
                results.append({"variant": spec.variant, "lmbda": spec.lmbda, "stage": spec.stage, "out_dir": spec.out_dir,
                                "status": "trained", "summary": out["summary"], "worker": out["worker"]})
                s = out["summary"]["final"]
                echo(f"done {_name(spec)}: bpp {s['bpp']:.4f}, PSNR {s['psnr']:.2f} dB "
                     f"({out['worker']['device']}, CUDA_VISIBLE_DEVICES={out['worker']['cuda_visible_devices']}"
                     f"{', warm worker' if sub.warm else ''})")
            if track:
                _log_jobs(results, params, echo, lambda *a: sub.track("csalic.study.tracking:log_training_job",
                                                                       *a, uri=uri))
    elif track:
        from .tracking import check_store, log_training_job

        check_store(uri)
        _log_jobs(results, params, echo, log_training_job)
    report = {"jobs": results, "failed": failed}
    if report_path:
        atomic_write_json(report_path, report)
    return report
