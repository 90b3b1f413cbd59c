"""Ray tasks submitted through one actor of the local keeper, so that Ray reuses warm workers.

Ray gives each job (each ``csalic stage`` process that joins the instance) worker processes of
its own, so every training or evaluation task of a Snakemake study started a fresh worker and paid
torch's and compressai's imports again (3-6 s).  The keeper of the machine's local instance
(:mod:`csalic.study.raycluster`) starts a :class:`Dispatcher` actor; stage processes hand it their
tasks, which then belong to the keeper's job, whose idle workers Ray keeps and reuses.

Two things the direct route gave for free are kept: a task asked for again while it runs (a
rerun of a killed workflow) is the same task, never a second writer of its folder; and a task
whose waiting stage processes have all died is cancelled, as Ray cancels a dead driver's tasks.
A worker that imported csalic stays on that code, so the dispatcher is used only while the
source under ``csalic/`` is the one the keeper started with; otherwise, and on a cluster given by
address, tasks are submitted directly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import importlib
import os
from pathlib import Path
from typing import Any

from .procs import pid_alive as _alive

NAME = "csalic-dispatch"
NAMESPACE = "csalic"
WATCH_S = 1.0


def code_fingerprint(root: Path | None = None) -> str:
    """Names, sizes and mtimes of csalic's sources: a cheap stat walk (milliseconds), no hashing of bytes."""
    root = root or Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        st = p.stat()
        h.update(f"{p.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _resolve(fn: str):
    module, name = fn.split(":")
    return getattr(importlib.import_module(module), name)


def _error_line(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    lines = str(cause).strip().splitlines()
    return lines[-1] if lines else type(cause).__name__


class Dispatcher:
    """Async actor: runs each keyed task once, on the keeper's job, for every process waiting on it."""

    def __init__(self) -> None:
        self._tasks: dict[str, list] = {}  # key -> [ref, {waiting pids}]
        self._remote: dict[tuple, Any] = {}
        self._watch: asyncio.Task | None = None
        self._logger: concurrent.futures.ThreadPoolExecutor | None = None

    async def ping(self) -> str:
        return "ok"

    async def run(self, fn: str, options: dict, args: tuple, key: str, pid: int) -> tuple[str, Any]:
        """("ok", result) or ("error", the task's last error line), once ``key``'s task ends."""
        import ray

        if self._watch is None:
            self._watch = asyncio.get_running_loop().create_task(self._cancel_orphans())
        entry = self._tasks.get(key)
        if entry is None:
            sig = (fn, tuple(sorted(options.items())))
            if sig not in self._remote:
                self._remote[sig] = ray.remote(_resolve(fn)).options(**options)
            entry = self._tasks[key] = [self._remote[sig].remote(*args), set()]
        entry[1].add(pid)
        try:
            return "ok", await entry[0]
        except Exception as exc:  # RayTaskError wraps the task's own exception
            return "error", _error_line(exc)
        finally:
            entry[1].discard(pid)
            if self._tasks.get(key) is entry:  # ended: a later request for the key is a new task
                del self._tasks[key]

    async def track(self, fn: str, args: tuple, cwd: str) -> tuple[str, Any]:
        """A stage process's MLflow call, run here: importing MLflow costs a process ~3 s of CPU, paid
        once per machine instead of once per job; one thread, so the store sees one writer at a time."""
        if self._logger is None:
            self._logger = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="csalic-track")
        return await asyncio.get_running_loop().run_in_executor(self._logger, _call_in, fn, args, cwd)

    async def in_flight(self) -> list[str]:
        return sorted(self._tasks)

    async def _cancel_orphans(self) -> None:
        """Interrupt (KeyboardInterrupt: the task's atomic writes clean up) a task nobody waits for; kill it 10 s on."""
        import ray

        interrupted: dict[str, tuple[Any, float]] = {}
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(WATCH_S)
            for key, (ref, pids) in list(self._tasks.items()):
                if pids and not any(_alive(p) for p in pids):
                    ray.cancel(ref, force=False)
                    interrupted[key] = (ref, loop.time())
                    self._tasks.pop(key, None)
            for key, (ref, since) in list(interrupted.items()):
                ready, _ = ray.wait([ref], timeout=0)
                if ready:
                    interrupted.pop(key)
                elif loop.time() - since > 10:
                    ray.cancel(ref, force=True)
                    interrupted.pop(key)


def _call_in(fn: str, args: tuple, cwd: str) -> tuple[str, Any]:
    """``fn(*args)`` in ``cwd``: the study's relative paths (``sqlite:///mlflow.db``, manifests) are the
    stage process's.  ("ok", value), ("csalic", message) for a CsalicError, else ("error", its line)."""
    from ..errors import CsalicError

    before = os.getcwd()
    try:
        os.chdir(cwd)
        return "ok", _resolve(fn)(*args)
    except CsalicError as exc:
        return "csalic", str(exc)
    except Exception as exc:
        return "error", f"{type(exc).__name__}: {_error_line(exc)}"
    finally:
        os.chdir(before)


def start() -> Any:
    """In the keeper: the named actor, ready (its handle must stay referenced)."""
    import ray

    actor = ray.remote(num_cpus=0, max_concurrency=10_000)(Dispatcher).options(
        name=NAME, namespace=NAMESPACE, get_if_exists=True).remote()
    ray.get(actor.ping.remote())
    return actor


class Submitter:
    """In a stage process joined to an instance: submit tasks, through the dispatcher when it serves this code."""

    def __init__(self, keeper_code: str | None) -> None:
        import ray

        self._actor = None
        if keeper_code is not None and keeper_code == code_fingerprint():
            try:
                self._actor = ray.get_actor(NAME, namespace=NAMESPACE)
            except ValueError:
                self._actor = None
        self._direct: dict[tuple, Any] = {}

    @property
    def warm(self) -> bool:
        """Whether tasks go through the keeper's dispatcher (and its warm workers)."""
        return self._actor is not None

    def submit(self, fn: str, options: dict, args: tuple, key: str) -> Any:
        """An object ref whose value :meth:`outcome` turns into (result, None) or (None, error line)."""
        if self._actor is not None:
            return self._actor.run.remote(fn, options, args, key, os.getpid())
        import ray

        sig = (fn, tuple(sorted(options.items())))
        if sig not in self._direct:
            self._direct[sig] = ray.remote(_resolve(fn)).options(**options)
        return self._direct[sig].remote(*args)

    def track(self, fn: str, *args: Any, uri: str) -> Any:
        """``fn(*args)`` (``module:name``, a tracking call): in the dispatcher when it serves this code and
        the store is a local sqlite file (a server may need this process's credentials), else here."""
        if self._actor is not None and uri.startswith("sqlite:"):
            import ray

            try:
                status, value = ray.get(self._actor.track.remote(fn, args, os.getcwd()))
            except ray.exceptions.RayError:  # the keeper went away meanwhile: log from here
                return _resolve(fn)(*args)
            if status == "ok":
                return value
            from ..errors import CsalicError

            raise (CsalicError if status == "csalic" else RuntimeError)(value)
        return _resolve(fn)(*args)

    def outcome(self, ref: Any) -> tuple[Any, str | None]:
        import ray

        try:
            value = ray.get(ref)
        except Exception as exc:
            return None, _error_line(exc)[:300]
        if self._actor is not None:
            status, value = value
            if status != "ok":
                return None, str(value)[:300]
        return value, None
