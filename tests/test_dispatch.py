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
    fn, key, code = sys.argv[1], sys.argv[2], sys.argv[3]
    with connect(registry="reg", idle_s=10):
        import ray
        sub = submitter()
        refs = [sub.submit(fn, {"num_cpus": 1}, (code,), key) for _ in range(int(sys.argv[4]))]
        print(json.dumps({"warm": sub.warm, "job": ray.get_runtime_context().get_job_id(),
                          "outcomes": [sub.outcome(r) for r in refs]}), flush=True)
""")

# the task: sleep, append a line per execution to a file, return the Ray job it ran in
PROBE = ("(__import__('time').sleep({sleep}), open({log!r}, 'a').write('ran\\n'), "
         "__import__('ray').get_runtime_context().get_job_id())[-1]")


def _driver(cwd: Path, key: str, code: str, copies: int = 1) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", DRIVER, "builtins:eval", key, code, str(copies)], cwd=cwd,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_tasks_of_two_processes_run_once_per_key_on_the_keepers_workers(tmp_path):
    import json

    log = tmp_path / "ran.log"
    # two processes ask for the same key at once (a rerun joining a running task), twice each
    first = _driver(tmp_path, "k1", PROBE.format(sleep=3, log=str(log)), copies=2)
    time.sleep(1.5)
    second = _driver(tmp_path, "k1", PROBE.format(sleep=3, log=str(log)), copies=2)
    outs = []
    for proc in (first, second):
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-2000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
    assert all(o["warm"] for o in outs)
    assert log.read_text() == "ran\n"  # four requests, one execution
    jobs = {value for o in outs for value, error in o["outcomes"] if error is None}
    assert len(jobs) == 1 and sum(len(o["outcomes"]) for o in outs) == 4
    assert outs[0]["job"] != outs[1]["job"] and not jobs & {outs[0]["job"], outs[1]["job"]}  # the keeper's job
    third = _driver(tmp_path, "k2", PROBE.format(sleep=0, log=str(log)))
    out, err = third.communicate(timeout=180)
    assert third.returncode == 0, err[-2000:]
    assert log.read_text() == "ran\nran\n"  # a key asked again after its task ended: a new task
    assert json.loads(out.strip().splitlines()[-1])["outcomes"] == [[jobs.pop(), None]]  # the same job's workers


@pytest.mark.slow
def test_a_task_whose_driver_died_is_cancelled_and_errors_come_back_as_lines(tmp_path):
    import json

    log = tmp_path / "late.log"
    doomed = _driver(tmp_path, "orphan", PROBE.format(sleep=6, log=str(log)))
    deadline = time.time() + 120
    keeper = tmp_path / "reg" / "address.json"
    while not keeper.is_file() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(2.5)  # joined and submitted
    doomed.kill()
    doomed.wait()
    survivor = _driver(tmp_path, "boom", "int('a bad point')")
    out, err = survivor.communicate(timeout=180)
    assert survivor.returncode == 0, err[-2000:]
    assert json.loads(out.strip().splitlines()[-1])["outcomes"] == [[None, "ValueError: invalid literal for int() with base 10: 'a bad point'"]]
    time.sleep(6)
    assert not log.exists()  # the orphan was cancelled before it wrote


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
