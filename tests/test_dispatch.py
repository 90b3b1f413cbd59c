"""The keeper's dispatcher: stage processes' tasks on warm workers, once per key, cancelled with their drivers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from csalic.study import dispatch

ENV = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}

# one stage-like process: join the folder's local instance, hand the dispatcher a task, print its outcome
DRIVER = textwrap.dedent("""
    import json, sys
    from csalic.study.raycluster import connect, submitter
    fn, key, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    with connect(registry="reg", idle_s=10):
        sub = submitter()
        refs = [sub.submit(fn, {"num_cpus": 1}, tuple(args), key) for _ in range(int(sys.argv[4]))]
        print("submitted", flush=True)
        out = [sub.outcome(r) for r in refs]
        print(json.dumps({"warm": sub.warm, "outcomes": [[v.decode() if isinstance(v, bytes) else v, e]
                                                         for v, e in out]}), flush=True)
""")


def _driver(cwd: Path, key: str, fn: str, *args, copies: int = 1) -> subprocess.Popen:
    import json

    return subprocess.Popen([sys.executable, "-c", DRIVER, fn, key, json.dumps(args), str(copies)], cwd=cwd,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _probe(log: Path, sleep: float) -> list[str]:
    """A task that sleeps, appends a line per execution to ``log`` and returns its Ray worker's pid."""
    return ["sh", "-c", f"sleep {sleep}; echo ran >> {log}; echo $PPID"]


def _result(proc: subprocess.Popen) -> dict:
    import json

    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_tasks_of_two_processes_run_once_per_key_on_the_keepers_warm_workers(tmp_path):
    import psutil

    log = tmp_path / "ran.log"
    # two processes ask for the same key at once (a rerun joining a running task), twice each
    first = _driver(tmp_path, "k1", "subprocess:check_output", _probe(log, 4), copies=2)
    time.sleep(2)
    second = _driver(tmp_path, "k1", "subprocess:check_output", _probe(log, 4), copies=2)
    outs = [_result(first), _result(second)]
    assert all(o["warm"] for o in outs)
    assert log.read_text() == "ran\n"  # four requests, one execution
    pids = {value.strip() for o in outs for value, error in o["outcomes"] if error is None}
    assert len(pids) == 1 and sum(len(o["outcomes"]) for o in outs) == 4
    started = time.time()
    third = _result(_driver(tmp_path, "k2", "subprocess:check_output", _probe(log, 0)))
    assert log.read_text() == "ran\nran\n"  # a key asked again after its task ended: a new task
    (pid, error), = third["outcomes"]
    assert error is None
    # on a worker that was up before this process started: the keeper's, imports already paid
    assert psutil.Process(int(pid)).create_time() < started


def _running(name: str, root: Path) -> bool:
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "cmdline").read_bytes().startswith(name.encode()) and \
                        Path(os.readlink(d / "cwd")).is_relative_to(root):
                    return True
            except OSError:
                continue
    return False


@pytest.mark.slow
def test_a_task_whose_driver_died_is_cancelled_and_errors_come_back_as_lines(tmp_path):
    import errno

    fifo, copy = tmp_path / "fifo", tmp_path / "copy"
    os.mkfifo(fifo)
    # the task blocks opening the FIFO until someone writes to it
    doomed = _driver(tmp_path, "orphan", "shutil:copyfile", str(fifo), str(copy))
    deadline = time.time() + 120
    while not _running("ray::copyfile", tmp_path) and time.time() < deadline:
        time.sleep(0.1)
    assert _running("ray::copyfile", tmp_path)
    doomed.kill()
    doomed.wait()
    while _running("ray::copyfile", tmp_path) and time.time() < deadline:
        time.sleep(0.1)
    with pytest.raises(OSError) as no_reader:  # nobody reads the FIFO any more: the task is gone
        os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    assert no_reader.value.errno == errno.ENXIO and not copy.exists()
    survivor = _result(_driver(tmp_path, "boom", "subprocess:check_output", ["sh", "-c", "exit 3"]))
    (value, error), = survivor["outcomes"]
    assert value is None and "returned non-zero exit status 3" in error


def test_the_dispatcher_is_used_only_for_the_code_the_keeper_started_with(tmp_path):
    import shutil

    code = tmp_path / "csalic"
    shutil.copytree(Path(dispatch.__file__).parents[1], code)
    fp = dispatch.code_fingerprint(code)
    assert fp == dispatch.code_fingerprint(code) and len(fp) == 16
    src = code / "study" / "dispatch.py"
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert dispatch.code_fingerprint(code) != fp  # an edited source: tasks go to fresh workers
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert dispatch.code_fingerprint(code) == fp


# a stage-like process that hands the dispatcher its MLflow-side calls (module:name functions)
TRACKER = textwrap.dedent("""
    import json, os, sys
    from csalic.errors import CsalicError
    from csalic.study.raycluster import connect, submitter
    with connect(registry="reg", idle_s=10):
        sub = submitter()
        out = {"warm": sub.warm, "me": os.getpid(), "cwd": os.getcwd()}
        out["there"] = sub.track("os:getpid", uri="sqlite:///mlflow.db")
        out["there_cwd"] = sub.track("os:getcwd", uri="sqlite:///mlflow.db")
        out["server_here"] = sub.track("os:getpid", uri="http://127.0.0.1:1")  # a server: this process's call
        for name, args in (("csalic", ("sqlite:///blocker/mlflow.db",)), ("other", ("no-such-dir/x",))):
            fn = "csalic.study.tracking:check_store" if name == "csalic" else "os:listdir"
            try:
                sub.track(fn, *args, uri="sqlite:///mlflow.db")
            except Exception as exc:
                out[name] = [type(exc).__name__, str(exc)]
        print(json.dumps(out), flush=True)
""")


@pytest.mark.slow
def test_tracking_calls_run_in_the_dispatcher_in_the_callers_folder_and_errors_keep_their_kind(tmp_path):
    """MLflow is imported once per machine (in the keeper), not by every stage process, for a sqlite store."""
    import json

    (tmp_path / "blocker").write_text("a file where the store's folder should be")
    proc = subprocess.run([sys.executable, "-c", TRACKER], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["warm"] and out["there"] != out["me"]  # ran in another process: the dispatcher's
    assert out["there_cwd"] == out["cwd"] == str(tmp_path)  # with the caller's relative paths
    assert out["server_here"] == out["me"]
    kind, msg = out["csalic"]
    assert kind == "CsalicError" and "not writable" in msg and "\n" not in msg
    kind, msg = out["other"]
    assert kind == "RuntimeError" and msg.startswith("FileNotFoundError") and "no-such-dir" in msg
