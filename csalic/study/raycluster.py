"""One Ray instance per machine for all the training rules that run at once.

With ``RAY_ADDRESS`` (or ``ray.address`` in params.yaml) every ``csalic stage train``
joins that cluster.  Without it, the first sweep starts a small keeper process
that owns a local Ray instance and records its address under ``results/.ray``;
sweeps started meanwhile (Snakemake running several training rules in parallel)
join the same instance instead of starting their own.  Each sweep holds a shared
lock on a file of its own while it runs; the keeper shuts Ray down once no such
lock has been held for ``idle_s`` seconds, so a killed workflow leaves nothing
running for long.

The keeper also starts the dispatcher (:mod:`csalic.study.dispatch`) that sweeps hand their
tasks to, so that all of them run on the keeper's warm Ray workers.

Exposure: the dashboard UI is off (Ray's dashboard process listens on 127.0.0.1
only).  Ray's own ports listen on the machine's address, as Ray always does (it
maps localhost to that address), so the instance runs with Ray's token
authentication: a client without the token Ray keeps in ``~/.ray`` cannot join.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from ..errors import CsalicError
from ..io import atomic_write_json
from .procs import pid_alive

DEFAULT_IDLE_S = 20.0


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _recorded(registry: Path) -> dict | None:
    try:
        info = json.loads((registry / "address.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return info if pid_alive(int(info.get("pid", -1))) else None


def _recorded_address(registry: Path) -> str | None:
    info = _recorded(registry)
    return info["address"] if info else None


_keeper_code: str | None = None  # the code fingerprint of the keeper this process joined (None: a cluster)


def submitter():
    """A :class:`csalic.study.dispatch.Submitter` for the instance :func:`connect` joined."""
    from .dispatch import Submitter

    return Submitter(_keeper_code)


def _active_clients(registry: Path) -> int:
    """Count client lock files still held; remove the ones left by dead clients."""
    active = 0
    for f in (registry / "clients").glob("*.lock"):
        try:
            with open(f, "a+") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fh, fcntl.LOCK_UN)
            f.unlink(missing_ok=True)
        except BlockingIOError:
            active += 1
        except OSError:
            continue
    return active


def _start_keeper(registry: Path, num_cpus: int | None, num_gpus: int | None, idle_s: float) -> str:
    cmd = [sys.executable, "-m", "csalic.study.raycluster", "--registry", str(registry), "--idle", str(idle_s)]
    if num_cpus is not None:
        cmd += ["--num-cpus", str(num_cpus)]
    if num_gpus is not None:
        cmd += ["--num-gpus", str(num_gpus)]
    log = open(registry / "keeper.log", "ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        address = _recorded_address(registry)
        if address:
            return address
        if proc.poll() is not None:
            tail = (registry / "keeper.log").read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise CsalicError(f"could not start a local Ray instance: {tail[0][:200]} (see {registry / 'keeper.log'})")
        time.sleep(0.2)
    proc.kill()
    raise CsalicError(f"a local Ray instance did not start within 120 s (see {registry / 'keeper.log'})")


def prepare_auth(address: str | None = None) -> None:
    """Set Ray's authentication mode; Ray caches its configuration, so this runs before ``import ray``.

    The local instance always runs in token mode (the keeper sets it), so a client
    joining it must too, even on a first run when Ray has not yet written
    ``~/.ray/auth_token`` (the keeper writes it before it records its address).
    A client joining a cluster by address sends the token when one exists.
    """
    if "RAY_AUTH_MODE" in os.environ:
        return
    if not (address or os.environ.get("RAY_ADDRESS")) or (Path.home() / ".ray" / "auth_token").is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


def ensure_token() -> None:
    """Create Ray's token file once, atomically, before a local instance starts.

    Ray writes ``~/.ray/auth_token`` itself when it is missing, but two instances
    starting at once on a fresh machine would each write their own and one of
    them would then refuse its own clients.  Linking a finished file into place
    lets exactly one token win.
    """
    if os.environ.get("RAY_AUTH_TOKEN"):
        return
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if path.is_file():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
            fh.write(secrets.token_hex(32))
        os.link(tmp, path)
    except FileExistsError:
        pass  # another instance's token won: use it
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def connect(address: str | None = None, registry: str | Path = "results/.ray", num_cpus: int | None = None,
            num_gpus: int | None = None, idle_s: float = DEFAULT_IDLE_S) -> Iterator[str]:
    """Join ``address`` / ``RAY_ADDRESS``, else the machine's shared local instance; yields the address."""
    prepare_auth(address)
    import ray

    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        try:
            ray.init(address=address, logging_level="WARNING", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise CsalicError(f"cannot join the Ray cluster at {address}: {str(exc).splitlines()[0][:200]}") from None
        try:
            yield address
        finally:
            ray.shutdown()
        return
    reg = Path(registry).resolve()
    (reg / "clients").mkdir(parents=True, exist_ok=True)
    if not (reg / ".gitignore").is_file():  # a live instance's files, never a result: `git add -A` skips them
        (reg / ".gitignore").write_text("*\n")
    client = open(reg / "clients" / f"{os.getpid()}.lock", "a+")
    with _locked(reg / "registry.lock"):
        fcntl.flock(client, fcntl.LOCK_SH)
        address = _recorded_address(reg) or _start_keeper(reg, num_cpus, num_gpus, idle_s)
    global _keeper_code
    try:
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)
        _keeper_code = (_recorded(reg) or {}).get("code")
        yield address
    finally:
        _keeper_code = None
        ray.shutdown()
        fcntl.flock(client, fcntl.LOCK_UN)
        client.close()
        Path(client.name).unlink(missing_ok=True)


def keep(registry: Path, num_cpus: int | None, num_gpus: int | None, idle_s: float) -> int:
    """The keeper: own a local Ray instance until no client has held a lock for ``idle_s``."""
    os.environ.setdefault("RAY_AUTH_MODE", "token")  # clients join with the token in ~/.ray
    if os.environ["RAY_AUTH_MODE"] == "token":
        ensure_token()
    import ray

    # num_gpus None: Ray counts the machine's GPUs itself (NVML, CUDA_VISIBLE_DEVICES), which spares the
    # keeper torch's import (seconds before the first job of every study can start)
    # "local": a new instance, never one that `ray start` left recorded in /tmp/ray
    ctx = ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False,
                   logging_level="WARNING")
    from .dispatch import code_fingerprint, start

    dispatcher = start()  # noqa: F841 (held: the actor lives while the keeper does)
    atomic_write_json(registry / "address.json", {"address": ctx.address_info["gcs_address"], "pid": os.getpid(),
                                                  "code": code_fingerprint()})
    idle_since: float | None = None
    while True:
        time.sleep(1.0)
        if _active_clients(registry):
            idle_since = None
            continue
        idle_since = idle_since or time.time()
        if time.time() - idle_since < idle_s:
            continue
        with _locked(registry / "registry.lock"):
            if _active_clients(registry):  # a client arrived while we were deciding
                idle_since = None
                continue
            (registry / "address.json").unlink(missing_ok=True)
        ray.shutdown()
        return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m csalic.study.raycluster", description=keep.__doc__)
    ap.add_argument("--registry", required=True)
    ap.add_argument("--num-cpus", type=int)
    ap.add_argument("--num-gpus", type=int)
    ap.add_argument("--idle", type=float, default=DEFAULT_IDLE_S)
    a = ap.parse_args(argv)
    return keep(Path(a.registry), a.num_cpus, a.num_gpus, a.idle)


if __name__ == "__main__":
    sys.exit(main())
