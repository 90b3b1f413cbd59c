"""A Ray worker whose torch import was cut short, or whose task was interrupted, leaves instead of failing retries."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from csalic.study import worker

# an import of torch stopped half-way, as a KeyboardInterrupt from ray.cancel stops it
CUT = textwrap.dedent("""
    import importlib.abc, sys
    class Cut(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "torch._meta_registrations":
                sys.meta_path.remove(self)
                raise KeyboardInterrupt
    sys.meta_path.insert(0, Cut())
""")


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_a_process_whose_torch_import_was_cut_short_leaves():
    spoilt = _python(CUT + textwrap.dedent("""
        try:
            import torch
        except KeyboardInterrupt:
            pass
        try:
            import torch  # what every later task on this worker would meet
        except Exception as exc:
            print("again:", type(exc).__name__)
        from csalic.study.worker import import_torch
        import_torch()
        print("not reached")
    """))
    assert spoilt.stdout.startswith("again:") and "not reached" not in spoilt.stdout, spoilt.stdout
    assert spoilt.returncode == worker.EXIT_STATUS
    assert spoilt.stderr.strip().splitlines()[-1] == \
        "csalic: this Ray worker leaves: an earlier import of torch was cut short"
    cut = _python(CUT + "from csalic.study.worker import import_torch\nimport_torch()\nprint('not reached')")
    assert cut.returncode == worker.EXIT_STATUS and not cut.stdout
    assert "import torch failed half-way (KeyboardInterrupt" in cut.stderr
    fine = _python("from csalic.study.worker import import_torch\nprint(import_torch().__name__)")
    assert fine.returncode == 0 and fine.stdout.strip() == "torch"


def _interrupted(path: str) -> None:
    """A task stopped as ``ray.cancel`` stops one: a KeyboardInterrupt raised inside it."""
    Path(path).write_text(str(os.getpid()))
    raise KeyboardInterrupt


def _pid() -> int:
    return os.getpid()


_guarded = worker.task_body(_interrupted)


def _torch_after_a_cut_import(marker: str) -> tuple[str, int]:
    """The first attempt spoils its worker's torch (as an interrupted import does), then asks for torch."""
    if not Path(marker).exists():
        Path(marker).write_text(str(os.getpid()))
        exec(CUT, {})
        try:
            import torch  # noqa: F401
        except KeyboardInterrupt:
            pass
    return worker.import_torch().__name__, os.getpid()


@pytest.mark.slow
def test_an_interrupted_task_ends_its_worker_and_the_next_task_gets_a_fresh_one(tmp_path):
    import psutil
    import ray
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import the tests folder
    ray.init(address="local", num_cpus=1, include_dashboard=False, logging_level="WARNING")
    try:
        pids = []
        for i, fn in enumerate((_interrupted, _guarded)):
            started = tmp_path / f"{i}.pid"
            with pytest.raises(ray.exceptions.RayError):
                ray.get(ray.remote(num_cpus=1, max_retries=0)(fn).remote(str(started)), timeout=120)
            pids.append(int(started.read_text()))
        plain, guarded = pids
        assert plain == guarded  # Ray reuses the interrupted worker of a plain task ...
        deadline = time.time() + 30
        while psutil.pid_exists(guarded) and time.time() < deadline:
            time.sleep(0.1)
        assert not psutil.pid_exists(guarded)  # ... and the guarded task's worker has left
        assert ray.get(ray.remote(num_cpus=1)(_pid).remote(), timeout=60) != guarded
        # the failure CI met: a spoilt worker is left, and Ray's retry on a fresh one imports torch
        marker = tmp_path / "cut.pid"
        name, pid = ray.get(ray.remote(num_cpus=1, max_retries=1)(_torch_after_a_cut_import).remote(str(marker)),
                            timeout=120)
        assert name == "torch" and pid != int(marker.read_text())
    finally:
        ray.shutdown()
