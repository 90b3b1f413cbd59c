"""MLflow: an experiment per study, a parent run per variant, a child run per λ.

Training jobs never talk to MLflow while they run: they leave ``metrics.csv``,
``summary.json`` and ``final.pt`` in their job folder, and a driver (the Ray
sweep, ``csalic train`` at its end, ``csalic track`` later) logs finished jobs
here one at a time.  Concurrent jobs therefore cannot lose metrics to sqlite's
"database is locked", and any job can be (re-)logged from its files.

Several drivers may still log at once (e.g. parallel Snakemake rules), so for a
sqlite store every logging call holds an exclusive file lock beside the
database, and every MLflow call is retried with backoff while the store reports
itself locked.  Logging is idempotent: a job or evaluation summary whose
identity and content hash are already in the store returns the existing run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlparse

from ..errors import CsalicError
from ..io import read_json_object
from .layout import lambda_tag
from .params import experiment_name, params_hash
from ..provenance import sha256_of

# No network here and nothing to report: keep MLflow's telemetry off unless the user decided otherwise.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

log = logging.getLogger(__name__)

DEFAULT_URI = "sqlite:///mlflow.db"
ROLE, VARIANT, LAMBDA, HASH = "csalic.role", "csalic.variant", "csalic.lambda", "csalic.params_hash"
CKPT_SHA = "csalic.checkpoint_sha256"
PARENT_TAG, RUN_NAME, NOTE, GIT_TAG = "mlflow.parentRunId", "mlflow.runName", "mlflow.note.content", "mlflow.source.git.commit"
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
SUMMARY_KEYS = ("loss", "bpp", "psnr", "d_f")
BATCH = 1000                     # MLflow's limit on metrics per log_batch
PARAM_BATCH = 100                # ... and on params/tags per log_batch
MAX_PARAM, MAX_TAG = 6000, 8000  # value lengths MLflow accepts
LOCK_WAIT_S = 900.0
_LOCKED = ("database is locked", "database table is locked", "sqlite_busy", "could not obtain lock")


# ----------------------------------------------------------------------------- store plumbing

def tracking_uri(params: dict | None, uri: str | None = None) -> str:
    if uri:
        return uri
    return ((params or {}).get("tracking") or {}).get("uri") or DEFAULT_URI


def _sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (relative to the working folder, like MLflow), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    p = uri[len("sqlite:///"):].split("?", 1)[0]
    return None if p in ("", ":memory:") else Path(p)


def _is_locked(exc: BaseException) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if any(s in str(exc).lower() for s in _LOCKED):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


#: the packages between csalic and a store: an error raised from them is the store's (or the way to it)
_STORE_PACKAGES = ("mlflow", "requests", "urllib3", "sqlalchemy", "sqlite3", "http")


def store_failure(exc: BaseException, what: str) -> CsalicError | None:
    """A one-line CsalicError for a failure of the store or of the way to it; None for anything else
    (a bug in csalic stays a traceback).  Callers catch CsalicError: a server that answers 500 or has
    gone away must cost one run's logging, not the driver that logs the rest."""
    if isinstance(exc, CsalicError) or not isinstance(exc, Exception):
        return None
    if not (isinstance(exc, OSError) or any(c.__module__.split(".")[0] in _STORE_PACKAGES for c in type(exc).__mro__)):
        return None
    first = (str(exc).strip().splitlines() or [""])[0][:400]
    return CsalicError(f"the tracking store failed while {what}: {type(exc).__name__}: {first}")


def _retry(fn: Callable, *args, what: str = "talking to MLflow", attempts: int = 9, base_s: float = 0.2,
           max_s: float = 8.0, **kwargs):
    """Call ``fn`` again with jittered exponential backoff while the store says it is locked.

    Other drivers may hold sqlite's write lock for a moment; only a lock that
    outlives every attempt (about a minute) becomes a one-line error, as does any other
    failure of the store at once (:func:`store_failure`).
    """
    waited = 0.0
    for i in range(attempts):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # MlflowException, sqlalchemy/sqlite OperationalError, ...
            if not _is_locked(exc):
                failure = store_failure(exc, what)
                if failure is None:
                    raise
                raise failure from exc
            if i == attempts - 1:
                raise CsalicError(f"tracking store stayed locked for {waited:.0f} s while {what}: another "
                                  "process holds it (a long transaction or an open sqlite shell?); retry later") from exc
            delay = min(max_s, base_s * 2 ** i) * (0.5 + random.random())
            log.debug("store locked while %s; retrying in %.2f s", what, delay)
            time.sleep(delay)
            waited += delay


@contextlib.contextmanager
def _store_lock(uri: str, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """Serialise csalic's own writers to one sqlite file (sqlite allows one writer anyway).

    This also makes get-or-create of experiments and parent runs race-free
    between processes; other stores (an MLflow server) do their own locking.
    """
    db = _sqlite_path(uri)
    if db is None:
        yield
        return
    import fcntl

    db.parent.mkdir(parents=True, exist_ok=True)
    try:
        fh = open(db.with_name(db.name + ".csalic.lock"), "a")
    except OSError as exc:
        raise CsalicError(f"cannot create a lock file beside {db}: {exc.strerror or exc}") from exc
    with fh:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise CsalicError(f"another csalic process has been logging to {db} for over {wait_s:.0f} s; "
                                      "wait for it or remove a stale process") from None
                time.sleep(0.05 + 0.05 * random.random())
            except OSError:  # a filesystem without flock: rely on retries alone
                break
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(fh, fcntl.LOCK_UN)


def _client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


@contextlib.contextmanager
def store(params: dict, uri: str) -> Iterator[tuple[Any, str]]:
    """The study's store, locked against csalic's other writers: (client, experiment id)."""
    with _store_lock(uri):
        client = _client(uri)
        yield client, _experiment_id(client, params, uri)


@contextlib.contextmanager
def _new_run(client, exp_id: str, *, name: str, start_ms: int, tags: dict[str, str], what: str) -> Iterator[str]:
    """A run created for the block to fill in; marked FAILED if the block raises (the caller finishes it)."""
    run = _retry(client.create_run, exp_id, start_time=start_ms, run_name=name, tags=tags,
                 what=f"creating the {what} run")
    rid = run.info.run_id
    try:
        yield rid
    except BaseException as exc:
        with contextlib.suppress(Exception):
            client.set_terminated(rid, "FAILED")
        failure = store_failure(exc, f"filling in the {what} run")  # an artifact upload, say
        if failure is None:
            raise
        raise failure from exc


def _with_timeout(fn: Callable[[], Any], timeout_s: float) -> tuple[bool, Any, BaseException | None]:
    """Run ``fn`` in a daemon thread: a locked or silent store must not hang the caller."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True, name="csalic-check-store")
    t.start()
    t.join(timeout_s)
    return (not t.is_alive()), box.get("value"), box.get("error")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def check_store(uri: str, timeout_s: float = 60) -> None:
    """Fail in one line, before hours of training, when results could not be logged at the end."""
    db = _sqlite_path(uri)
    if db is not None:
        folder = db.parent if str(db.parent) else Path(".")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".csalic-probe-", dir=folder)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise CsalicError(f"tracking store {uri}: folder {folder} is not writable "
                              f"({exc.strerror or exc}); set tracking.uri to a writable place") from None
        if db.exists():
            try:
                open(db, "ab").close()
            except OSError as exc:
                raise CsalicError(f"tracking store {uri}: {db} is not writable ({exc.strerror or exc})") from None
    elif uri.startswith(("http://", "https://")):
        u = urlparse(uri)
        port = u.port or (443 if u.scheme == "https" else 80)
        try:
            socket.create_connection((u.hostname, port), timeout=min(timeout_s, 5)).close()
        except OSError as exc:
            reason = "timed out" if isinstance(exc, socket.timeout) else (exc.strerror or str(exc))
            raise CsalicError(f"tracking server {uri} is unreachable ({reason}); start it, or set tracking.uri "
                              f"to sqlite:///mlflow.db") from None

    def probe_store():
        # The first client of a sqlite file creates MLflow's tables, which takes seconds; a second
        # one arriving meanwhile (parallel training rules) would create them again and fail, and
        # the file exists from the first moment: every probe takes the drivers' lock (no-op for a server).
        with _store_lock(uri, wait_s=timeout_s):
            return _client(uri).search_experiments(max_results=1)

    done, _, error = _with_timeout(probe_store, timeout_s)
    if not done:
        raise CsalicError(f"tracking store {uri} did not answer within {timeout_s:g} s "
                          "(locked by another process, or a slow server?)")
    if error is not None:
        if _is_locked(error):
            raise CsalicError(f"tracking store {uri} is locked by another process; retry when it is free")
        raise CsalicError(f"tracking store {uri} cannot be used: {_first_line(error)}")


# ----------------------------------------------------------------------------- small helpers

def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _key(k: str) -> str:
    """MLflow keys allow letters, digits, ``_ - . / space``; anything else becomes ``_``."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in str(k))[:250]


def _text(v: Any, limit: int) -> str:
    s = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _quote(v: str) -> str:
    if "'" in v:
        raise CsalicError(f"value {v!r} cannot be used as a tracking key (it holds a quote)")
    return f"'{v}'"


def _find_runs(client, exp_id: str, tags: dict[str, str]) -> list:
    flt = " and ".join(f"tags.`{k}` = {_quote(v)}" for k, v in tags.items())
    runs = _retry(client.search_runs, [exp_id], filter_string=flt, max_results=1000,
                  order_by=["attributes.start_time ASC"], what="searching runs")
    return list(runs)


def _experiment_id(client, params: dict, uri: str, create: bool = True) -> str | None:
    name = experiment_name(params)
    exp = _retry(client.get_experiment_by_name, name, what="looking up the experiment")
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            raise CsalicError(f"MLflow experiment {name!r} is deleted; restore it (mlflow experiments restore "
                              f"--experiment-id {exp.experiment_id}) or set tracking.experiment to a new name")
        return exp.experiment_id
    if not create:
        return None
    db = _sqlite_path(uri)
    # Artifacts beside the database, not in whatever folder the driver happened to run from.
    location = str(db.resolve().parent / "mlruns" / _key(name).replace("/", "_").replace(" ", "_")) if db else None
    try:
        # marked as model training, so that MLflow 3's UI opens on the runs rather than its GenAI overview
        return _retry(client.create_experiment, name, artifact_location=location,
                      tags={"csalic.study": str(params.get("study", "")), EXPERIMENT_KIND[0]: EXPERIMENT_KIND[1]},
                      what="creating the experiment")
    except Exception as exc:  # created meanwhile by another driver (not a sqlite store: no file lock)
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise CsalicError(f"could not create MLflow experiment {name!r}: {_first_line(exc)}") from None
        return exp.experiment_id


def _variant_parent(client, exp_id: str, params: dict, variant: str, phash: str, size: str | None) -> str:
    """Get or create the run that groups one variant's λ runs (one per params hash)."""
    from mlflow.entities import Param

    key = {ROLE: "variant", VARIANT: variant, HASH: phash}
    found = [r for r in _find_runs(client, exp_id, key)]
    if found:
        return found[0].info.run_id
    tags = {**key, RUN_NAME: variant, "csalic.study": str(params.get("study", "")), "csalic.size": str(size or "")}
    entry = (params.get("learned") or {}).get(variant)
    tags["csalic.method_kind"] = "learned" if entry else "variant"  # a learned comparator, or a CSA-LIC variant
    if entry:
        tags["csalic.learned.codec"] = str(entry["codec"])
    run = _retry(client.create_run, exp_id, run_name=variant, tags=tags, what="creating the variant run")
    rid = run.info.run_id
    study = {_key(f"study.{k}"): _text(v, MAX_PARAM) for k, v in _flatten(params).items()}
    study.update({"variant": variant, "params_hash": phash})
    items = [Param(k, v) for k, v in sorted(study.items())]
    for i in range(0, len(items), PARAM_BATCH):
        _retry(client.log_batch, rid, params=items[i:i + PARAM_BATCH], what="logging study parameters")
    _retry(client.set_terminated, rid, "FINISHED", what="closing the variant run")
    # Without a file lock (a server store) two drivers may both have created one: keep the oldest.
    again = _find_runs(client, exp_id, key)
    if again and again[0].info.run_id != rid:
        with contextlib.suppress(Exception):
            client.delete_run(rid)
        return again[0].info.run_id
    return rid


def _existing(client, exp_id: str, identity: dict[str, str]) -> str | None:
    """A finished run with this identity, after removing half-logged ones a crashed driver left."""
    for r in _find_runs(client, exp_id, identity):
        if r.info.status == "FINISHED":
            return r.info.run_id
        log.warning("removing incomplete run %s (%s) before logging it again", r.info.run_id, r.info.status)
        _retry(client.delete_run, r.info.run_id, what="removing an incomplete run")
    return None


def _log_all(client, rid: str, *, metrics=(), params: dict | None = None, tags: dict | None = None) -> None:
    from mlflow.entities import Param, RunTag

    ps = [Param(_key(k), _text(v, MAX_PARAM)) for k, v in sorted((params or {}).items())]
    ts = [RunTag(k, _text(v, MAX_TAG)) for k, v in sorted((tags or {}).items())]
    for i in range(0, len(ps), PARAM_BATCH):
        _retry(client.log_batch, rid, params=ps[i:i + PARAM_BATCH], what="logging parameters")
    for i in range(0, len(ts), PARAM_BATCH):
        _retry(client.log_batch, rid, tags=ts[i:i + PARAM_BATCH], what="logging tags")
    metrics = list(metrics)
    for i in range(0, len(metrics), BATCH):
        _retry(client.log_batch, rid, metrics=metrics[i:i + BATCH], what="logging metrics")


# ----------------------------------------------------------------------------- training jobs

def _metric_name(column: str) -> str:
    return f"system/{column[4:]}" if column.startswith("sys_") else _key(column)


def _read_metrics(path: Path):
    import pandas as pd

    if not path.is_file():
        raise CsalicError(f"metrics file {path} not found: is the job finished?")
    try:
        df = pd.read_csv(path)
    except Exception as exc:  # pandas raises several types for a broken CSV
        raise CsalicError(f"metrics file {path} cannot be read: {_first_line(exc)}") from None
    if "step" not in df.columns:
        raise CsalicError(f"metrics file {path} has no 'step' column (columns: {', '.join(map(str, df.columns))})")
    for col in df.columns:
        try:
            df[col] = pd.to_numeric(df[col])
        except (TypeError, ValueError):
            raise CsalicError(f"metrics file {path}: column {col!r} holds non-numeric values") from None
    if df["step"].isna().any():
        raise CsalicError(f"metrics file {path}: a row has no step")
    # A resumed job may have written a step twice: the later row is the one that counts.
    return df.drop_duplicates("step", keep="last").sort_values("step", kind="stable")


def _metric_entities(df, timestamp_ms: int) -> list:
    from mlflow.entities import Metric

    steps = df["step"].to_numpy().astype("int64")
    out = []
    for col in df.columns:
        if col == "step":
            continue
        name = _metric_name(col)
        for step, value in zip(steps.tolist(), df[col].to_numpy(dtype="float64").tolist()):
            if not math.isnan(value):
                out.append(Metric(name, value, timestamp_ms, step))
    return out


def _find_manifest(manifest: str | None, job_dir: Path) -> Path | None:
    if not manifest:
        return None
    p = Path(manifest)
    candidates = [p] if p.is_absolute() else [Path.cwd() / p, job_dir / p]
    return next((c.resolve() for c in candidates if c.is_file()), None)


def _dataset_input(manifest: Path, name: str):
    import warnings

    import mlflow.data
    import pandas as pd
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # schema-inference hints about integer columns are noise here
        ds = mlflow.data.from_pandas(pd.read_csv(manifest), source=str(manifest), name=name)
        entity = ds._to_mlflow_entity()
    return DatasetInput(entity, tags=[InputTag(MLFLOW_DATASET_CONTEXT, "training")])


def _read_job(job: Path, log_checkpoint: bool) -> tuple[dict, Any, Path, str]:
    """A finished job's summary, metrics table, checkpoint path and content sha256 (checked)."""
    if not job.is_dir():
        raise CsalicError(f"job folder {job} does not exist")
    summary_path = job / "summary.json"
    summary = read_json_object(summary_path, "job summary")
    missing = [k for k in ("variant", "lmbda") if summary.get(k) is None]
    if missing:
        raise CsalicError(f"job summary {summary_path} lacks {', '.join(missing)}")
    df = _read_metrics(job / "metrics.csv")
    ckpt = job / str(summary.get("checkpoint") or "final.pt")
    if not ckpt.is_file() and log_checkpoint:
        raise CsalicError(f"checkpoint {ckpt} not found: is the job finished? (or log without the checkpoint)")
    return summary, df, ckpt, sha256_of(ckpt) if ckpt.is_file() else sha256_of(summary_path)


def _job_tags(job: Path, summary: dict, params: dict, identity: dict, parent: str, name: str, size,
              manifest: Path | None) -> dict[str, Any]:
    commit = summary.get("git_commit")
    tags = {
        **identity, PARENT_TAG: parent, RUN_NAME: name, "csalic.size": str(size or ""),
        "csalic.git_commit": str(commit or "unknown"), "csalic.task_network": summary.get("task_network") or {},
        "csalic.study": str(params.get("study", "")), "csalic.device": str(summary.get("device") or ""),
        "csalic.job_dir": str(job.resolve()), "csalic.manifest": str(summary.get("manifest") or ""),
        "csalic.seed": str((summary.get("job_params") or {}).get("seed", "")),
    }
    if commit:
        tags[GIT_TAG] = str(commit)
    if manifest is None:
        note = f"training manifest {summary.get('manifest')!r} not found when logging: no dataset input"
        log.warning("%s: %s", job, note)
        tags[NOTE] = note
    return tags


def _job_metrics(summary: dict, df, end_ms: int) -> list:
    """The training curve, and the summary's final numbers as ``final/*`` at the last step."""
    from mlflow.entities import Metric

    metrics = _metric_entities(df, end_ms)
    final = dict(summary.get("final") or {})
    final.update({k: summary[k] for k in ("steps", "epochs", "wall_s") if summary.get(k) is not None})
    last_step = int(summary.get("steps") or (df["step"].max() if len(df) else 0))
    for k, v in final.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(float(v)):
            metrics.append(Metric(f"final/{_key(k)}", float(v), end_ms, last_step))
    return metrics


def log_training_job(job_dir, params: dict, *, uri: str | None = None, log_checkpoint: bool = True) -> str:
    """Log one finished training job as the λ child of its variant's run; return the child run id.

    Safe to call again (after a crash, or from ``csalic track``): the same job
    (params hash, variant, λ, checkpoint sha256) returns the run already logged.
    """
    job = Path(job_dir)
    summary, df, ckpt, content_sha = _read_job(job, log_checkpoint)
    variant, lmbda = str(summary["variant"]), float(summary["lmbda"])
    size = summary.get("size") or params.get("model", {}).get("size")
    phash = str(summary.get("params_hash") or params_hash(params))
    warmup = summary.get("stage") == "warmup"  # the start its variant's λ fine-tune: kept apart from the λ runs
    identity = {ROLE: "warmup" if warmup else "job", VARIANT: variant, LAMBDA: lambda_tag(lmbda), HASH: phash,
                CKPT_SHA: content_sha}
    manifest = _find_manifest(summary.get("manifest"), job)
    uri = tracking_uri(params, uri)
    end_ms = int((job / "summary.json").stat().st_mtime * 1000)
    wall = summary.get("wall_s")
    start_ms = end_ms - int(float(wall) * 1000) if isinstance(wall, (int, float)) else end_ms
    name = f"{variant} warm-up λ={lmbda:g}" if warmup else f"{variant} λ={lmbda:g}"
    seed = (summary.get("job_params") or {}).get("seed")
    if "-seed_" in job.name:  # another training seed than the study's: its own run, named for it
        name += f" seed={seed}"

    with store(params, uri) as (client, exp_id):
        done = _existing(client, exp_id, identity)
        if done:
            return done
        parent = _variant_parent(client, exp_id, params, variant, phash, size)
        tags = _job_tags(job, summary, params, identity, parent, name, size, manifest)
        with _new_run(client, exp_id, name=name, start_ms=start_ms, what="job",
                      tags={k: _text(v, MAX_TAG) for k, v in identity.items()} | {PARENT_TAG: parent}) as rid:
            job_params = _flatten(summary.get("job_params") or {})
            job_params.update(variant=variant, lmbda=lmbda, size=size, device=summary.get("device"))
            _log_all(client, rid, metrics=_job_metrics(summary, df, end_ms), params=job_params, tags=tags)
            if manifest is not None:
                ds = _dataset_input(manifest, f"{params.get('study', 'study')}/{manifest.stem}")
                _retry(client.log_inputs, rid, datasets=[ds], what="logging the dataset input")
            for extra in ("summary.json", "metrics.csv"):
                client.log_artifact(rid, str(job / extra), artifact_path="job")
            if log_checkpoint:
                client.log_artifact(rid, str(ckpt))
            _retry(client.set_terminated, rid, "FINISHED", end_time=max(end_ms, start_ms),
                   what="finishing the job run")
        return rid


# ----------------------------------------------------------------------------- reading back

def ui_hint(params: dict, uri: str | None = None, port: int = 5000) -> str:
    """How to open the study's runs in the MLflow UI.

    MLflow 3.17's UI opens an experiment on its GenAI overview whatever the experiment's
    ``mlflow.experimentKind`` tag says, unless the URL (or the browser's remembered
    "Model training" switch) asks for the model-training view: the link does.
    """
    uri = tracking_uri(params, uri)
    exp_id = _experiment_id(_client(uri), params, uri, create=False)
    page = f"#/experiments/{exp_id}?workflowType=machine_learning" if exp_id else ""
    store = f" --backend-store-uri {uri}" if not uri.startswith(("http://", "https://")) else ""
    where = (uri.rstrip("/") + "/" + page) if store == "" else f"http://127.0.0.1:{port}/{page}"
    return (f"browse: {where}" + (f"  (after: mlflow ui{store} --host 127.0.0.1 --port {port})" if store else ""))


TABLE_COLUMNS = ["variant", "lmbda", "size", "steps", "bpp", "psnr", "loss", "d_f", "params_hash", "status",
                 "start_time", "run_id"]


def runs_table(params: dict, *, uri: str | None = None, latest_only: bool = True):
    """The study's training runs, one row per (params hash, variant, λ), in params.yaml's variant order.

    ``latest_only`` hides runs superseded by a later re-training of the same job.
    """
    import pandas as pd

    uri = tracking_uri(params, uri)
    client = _client(uri)
    exp_id = _experiment_id(client, params, uri, create=False)
    if exp_id is None:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    rows = []
    for r in _find_runs(client, exp_id, {ROLE: "job"}):
        t, m = r.data.tags, r.data.metrics
        rows.append({
            "variant": t.get(VARIANT), "lmbda": float(t.get(LAMBDA, "nan")), "size": t.get("csalic.size"),
            "steps": m.get("final/steps"), "bpp": m.get("final/bpp"), "psnr": m.get("final/psnr"),
            "loss": m.get("final/loss"), "d_f": m.get("final/d_f"), "params_hash": t.get(HASH),
            "status": r.info.status, "start_time": pd.to_datetime(r.info.start_time, unit="ms"),
            "run_id": r.info.run_id,
        })
    df = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    if df.empty:
        return df
    if latest_only:
        df = df.sort_values("start_time").drop_duplicates(["params_hash", "variant", "lmbda"], keep="last")
    order = {v: i for i, v in enumerate(params.get("variants", []))}
    df = df.assign(_o=df["variant"].map(lambda v: order.get(v, len(order))))
    return df.sort_values(["_o", "variant", "lmbda", "start_time"]).drop(columns="_o").reset_index(drop=True)
