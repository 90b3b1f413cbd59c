"""MLflow: the study's results beside its training runs, where users compare ablations.

    experiment csalic-<study>   (opens on its runs: marked as model training)
    ├── <variant>               parent: BD-rate / BD-mAP against the anchor per dataset and task,
    │   │                       its rate-accuracy curve as an artifact
    │   └── <variant> λ=…       child: training (csalic.study.tracking) + coded bpp, PSNR, mAP@0.5 per dataset
    ├── anchors                 parent of the traditional codecs
    │   └── <codec> <setting>   child: one per QP or quality, with its tool, bpp, PSNR, mAP@0.5 per dataset
    └── study                   Tables 1-3 as MLflow tables, the figures, the DVC metrics file

Metrics are named ``eval/<dataset>/<metric>`` and ``bd_rate/<dataset>/<task>``,
``bd_map/<dataset>/<task>`` (their image-bootstrap interval ``bd_rate_low/…``, ``bd_rate_high/…``),
so one search over the experiment compares variants.
Everything here is logged from the result files by the stage that wrote them (or
later by ``csalic track --results``); a value already in the store is not
logged again, so logging twice logs nothing new, and a locked or unreachable
store loses nothing: the files keep it all.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from typing import Any

from ..errors import CsalicError
from ..evaluation.evaluate import load_summary
from .params import params_hash
from .tracking import (CKPT_SHA, EXPERIMENT_KIND, HASH, PARENT_TAG, ROLE, RUN_NAME, _existing, _find_runs, _key,
                       _log_all, _new_run, _retry, _variant_parent, log_training_job, store, tracking_uri)

EVAL_METRICS = ("bpp", "bpp_total", "psnr_rgb", "psnr_y", "map50_bbox", "map50_segm", "encode_s", "decode_s",
                "n_images")
METHOD, SETTING = "csalic.method", "csalic.setting"


def mark_training_experiment(client, exp_id: str) -> None:
    """Tag the experiment as model training, so MLflow 3's UI opens on its runs, not its GenAI overview."""
    exp = _retry(client.get_experiment, exp_id, what="reading the experiment")
    if exp.tags.get(EXPERIMENT_KIND[0]) != EXPERIMENT_KIND[1]:
        _retry(client.set_experiment_tag, exp_id, *EXPERIMENT_KIND, what="marking the experiment")


def _get_or_create(client, exp_id: str, identity: dict[str, str], name: str, parent: str | None = None) -> str:
    """The oldest run with this identity, or a new one (finished at once: results are added to it later)."""
    found = _find_runs(client, exp_id, identity)
    if found:
        return found[0].info.run_id
    tags = {**identity, RUN_NAME: name} | ({PARENT_TAG: parent} if parent else {})
    run = _retry(client.create_run, exp_id, run_name=name, tags=tags, what=f"creating the run {name!r}")
    _retry(client.set_terminated, run.info.run_id, "FINISHED", what="closing a run")
    return run.info.run_id


def _new_metrics(client, rid: str, values: dict[str, float]) -> dict[str, float]:
    """The values that differ from what the run already shows."""
    have = _retry(client.get_run, rid, what="reading a run").data.metrics
    return {k: v for k, v in values.items() if not (k in have and math.isclose(have[k], v, rel_tol=0, abs_tol=1e-12))}


def _log_metrics(client, rid: str, values: dict[str, float], tags: dict[str, Any] | None = None) -> int:
    from mlflow.entities import Metric

    new = _new_metrics(client, rid, values)
    if new or tags:
        _log_all(client, rid, metrics=[Metric(k, v, 0, 0) for k, v in sorted(new.items())], tags=tags)
    return len(new)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


# ----------------------------------------------------------------------------- one evaluation

def log_evaluation(summary_path: str | Path, params: dict, *, uri: str | None = None) -> str:
    """Log one evaluated point: a codec's numbers go to its λ run, an anchor's to its run under ``anchors``.

    Returns the run id the numbers went to.
    """
    path = Path(summary_path)
    s = load_summary(path)
    uri = tracking_uri(params, uri)
    metrics = {_key(f"eval/{s['dataset']}/{k}"): float(s[k]) for k in EVAL_METRICS if _finite(s.get(k))}
    prov = s.get("provenance") or {}
    # which mAP protocol scored the numbers, so that runs compared in the UI compare like with like
    tags = {f"csalic.eval.{s['dataset']}.summary": str(path),
            f"csalic.eval.{s['dataset']}.protocol": s.get("protocol", "coco")}
    if s["method"].startswith("csalic-") or "learned" in (prov.get("codec") or {}):  # a trained codec's point
        sha = prov.get("checkpoint_sha256")
        ckpt = (prov.get("codec") or {}).get("checkpoint")
        if not sha or not ckpt:
            raise CsalicError(f"{path} names no checkpoint: rerun its evaluation")
        with store(params, uri) as (client, exp_id):
            found = _find_runs(client, exp_id, {ROLE: "job", CKPT_SHA: sha})
        if not found:  # the job was never logged (its store was down): log it first, from its files
            job = Path(ckpt).parent
            if not (job / "summary.json").is_file():
                raise CsalicError(f"{path}: the training job of its checkpoint ({job}) is not there to log")
            log_training_job(job, params, uri=uri)
        with store(params, uri) as (client, exp_id):
            mark_training_experiment(client, exp_id)
            rid = _find_runs(client, exp_id, {ROLE: "job", CKPT_SHA: sha})[-1].info.run_id
            _log_metrics(client, rid, metrics, tags)
            return rid
    phash = str(prov.get("params_hash") or params_hash(params))
    label = (prov.get("codec") or {}).get("label") or s["method"]
    with store(params, uri) as (client, exp_id):
        mark_training_experiment(client, exp_id)
        parent = _get_or_create(client, exp_id, {ROLE: "anchors", HASH: phash}, "anchors")
        rid = _get_or_create(client, exp_id, {ROLE: "anchor", HASH: phash, METHOD: s["method"],
                                              SETTING: s["setting"]}, f"{s['method']} {s['setting']}", parent)
        _log_metrics(client, rid, metrics, {"csalic.tool": label, **tags})
        return rid


# ----------------------------------------------------------------------------- the report

def _sha(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def log_report(params: dict, bd: dict[str, Any], out_dir: str | Path, written: list[Path], *,
               uri: str | None = None) -> str:
    """BD deltas and curves on the variants' parent runs, Tables 1-3 and the figures on the study run.

    ``bd`` is :func:`csalic.evaluation.report.study_metrics`'s dict (what the DVC metrics file holds).
    Returns the study run's id.
    """
    import pandas as pd

    uri = tracking_uri(params, uri)
    phash = params_hash(params)
    out = Path(out_dir)
    with store(params, uri) as (client, exp_id):
        mark_training_experiment(client, exp_id)
        learned = params.get("learned") or {}
        for method, per_dataset in bd["bd"].items():
            if not method.startswith("csalic-") and method not in learned:
                continue
            variant = method.removeprefix("csalic-")
            rid = _variant_parent(client, exp_id, params, variant, phash, params["model"]["size"])
            values, notes = {}, {}
            for dataset, per_task in per_dataset.items():
                for task, cell in per_task.items():
                    for kind in ("bd_rate", "bd_map"):
                        if _finite(cell.get(kind)):
                            values[_key(f"{kind}/{dataset}/{task}")] = float(cell[kind])
                        for bound, v in zip(("low", "high"), cell.get(f"{kind}_ci") or ()):
                            if _finite(v):  # the image-bootstrap interval, beside its value
                                values[_key(f"{kind}_{bound}/{dataset}/{task}")] = float(v)
                    if cell.get("notes"):
                        notes[_key(f"csalic.bd_notes.{dataset}.{task}")] = cell["notes"]
            if _log_metrics(client, rid, values, notes | {"csalic.anchor": bd["anchor"]}):
                for curve in sorted((out / "curves").glob(f"*/{method}.json")):
                    client.log_artifact(rid, str(curve), artifact_path=f"curves/{curve.parent.name}")
        files = [p for p in written if p.is_file()]
        identity = {ROLE: "study", HASH: phash, "csalic.report_sha256": _sha(files)}
        # only a finished study run counts: one a crashed report left half-logged is removed and redone
        existing = _existing(client, exp_id, identity)
        if existing:
            return existing
        with _new_run(client, exp_id, name="study", start_ms=int(time.time() * 1000),
                      tags={**identity, RUN_NAME: "study", "csalic.anchor": bd["anchor"]}, what="study") as rid:
            for p in files:
                if p.suffix == ".csv" and p.parent.name == "tables":
                    client.log_table(rid, data=pd.read_csv(p), artifact_file=f"tables/{p.stem}.json")
                sub = p.parent.relative_to(out).as_posix() if p.is_relative_to(out) else p.parent.name
                client.log_artifact(rid, str(p), artifact_path=sub)
            _log_metrics(client, rid, {_key(f"{kind}/{m}/{d}/{t}"): float(c[kind])
                                       for m, per_d in bd["bd"].items() for d, per_t in per_d.items()
                                       for t, c in per_t.items() for kind in ("bd_rate", "bd_map")
                                       if _finite(c.get(kind))})
            _retry(client.set_terminated, rid, "FINISHED", what="closing the study run")
        return rid


def log_results(params: dict, *, uri: str | None = None, echo=print) -> None:
    """Log the study's result files again (``csalic track --results``): its finished training jobs, the
    points its tables use, and the report; what is logged already is found, not added twice.

    A file that cannot be logged (a corrupt summary, say) costs itself only: the others are logged,
    then one line names what failed (and the report, which would read it, is left for later)."""
    from ..evaluation.intervals import ImageBootstrap
    from ..evaluation.report import collect, study_metrics
    from . import layout
    from .jobs import finished_summary
    from .points import anchor_method, result_files

    failed: list[str] = []

    def attempt(fn, path: Path) -> bool:
        try:
            fn(path, params, uri=uri)
            return True
        except CsalicError as exc:
            failed.append(f"{path}: {exc}")
            echo(f"FAILED {failed[-1]}")
            return False

    jobs = [d for m in layout.trained(params)
            for d in [layout.warmup_dir(params, m)] + [layout.job_dir(params, m, lm, s) for lm in params["lambdas"]
                                                         for s in layout.train_seeds(params)]
            if finished_summary(d) is not None]
    logged_jobs = sum(attempt(log_training_job, job) for job in jobs)
    summaries, _ = result_files(params)
    logged = sum(attempt(log_evaluation, s) for s in summaries)
    echo(f"{logged_jobs} training job(s), {logged} evaluated point(s)")
    if failed:
        raise CsalicError(f"{len(failed)} result file(s) could not be logged (the others were), the report left "
                          f"for a later run: {failed[0]}")
    if summaries:
        study = collect(summaries, params["anchors"]["published"], anchor_method(params),
                        bootstrap=ImageBootstrap.from_settings(params["report"]))
        out = layout.report_dir(params)
        written = [p for d in layout.REPORT_DIRS for p in sorted((out / d).rglob("*")) if p.is_file()]
        echo(f"report: study run {log_report(params, study_metrics(study), out, written, uri=uri)}")


def warn(what: str, exc: Exception, echo=print) -> None:
    echo(f"warning: MLflow logging of {what} failed ({exc}); the result files keep everything: "
         "`csalic track --results` logs it later")
