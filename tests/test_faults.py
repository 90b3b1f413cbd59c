"""Faults injected for real: a write that fails mid-checkpoint, a killed Ray worker, killed workflow runs."""

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from csalic.study import layout
from helpers import micro_params, write_params


def _no_sigxfsz():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # so a write past the file-size limit fails with EFBIG


@pytest.fixture
def study(tmp_path):
    params = micro_params(max_steps=400, checkpoint_every=2)
    write_params(tmp_path / "params.yaml", params)
    subprocess.run([sys.executable, "-m", "csalic", "demo-data", "--out", str(layout.demo_data(params)),
                    "--train", "8", "--val", "2"], cwd=tmp_path, check=True, capture_output=True)
    return tmp_path


def test_a_checkpoint_write_that_fails_keeps_the_previous_checkpoint(study):
    """The file-size limit is lowered under a running job (as a full disk would): the next checkpoint
    write fails, the job stops with one line, and the previous checkpoint is intact and resumable."""
    job = study / "job"
    proc = subprocess.Popen([sys.executable, "-m", "csalic", "train", "--variant", "baseline", "--lmbda", "0.001",
                             "--out", "job", "--no-track", "--quiet"], cwd=study, preexec_fn=_no_sigxfsz,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (job / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.02)
    size = (job / "last.pt").stat().st_size
    resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (size // 2, size // 2))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("csalic: error: could not write job/last.pt: File too large"), err
    record = torch.load(job / "last.pt", weights_only=True)  # the previous checkpoint, complete
    assert 2 <= record["step"] < 400 and not (job / "final.pt").exists()
    assert sorted(p.name for p in job.iterdir()) == ["last.pt", "metrics.csv"]  # no temporary files left
    resumed = subprocess.run([sys.executable, "-m", "csalic", "train", "--variant", "baseline", "--lmbda", "0.001",
                              "--out", "job", "--no-track", "--quiet", "--max-steps", str(record["step"] + 2)],
                             cwd=study, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert (job / "final.pt").is_file() and (job / "summary.json").is_file()


def _ray_worker_running(root: Path, name: str = "ray::_run_job") -> int | None:
    """pid of a Ray worker executing a training task of the instance started under ``root``.

    Ray names the process after the task; its working directory is the one the instance was
    started from, so workers of other tests' instances running at the same time are left alone."""
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace").startswith(name) \
                        and Path(os.readlink(d / "cwd")).is_relative_to(root):
                    return int(d.name)
            except OSError:
                continue
    return None


def _sweep(cwd, env=None):
    return subprocess.Popen([sys.executable, "-m", "csalic", "stage", "train", "--no-track", "--variants", "baseline",
                             "--lambdas", "0.001", "--report", "report.json"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_a_killed_ray_worker_is_retried_and_resumes_to_the_same_weights(tmp_path):
    """SIGKILL the Ray worker running a job: Ray retries the task, which resumes from last.pt, and the
    final weights equal those of a run that was never interrupted."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    dirs = {}
    for name in ("ref", "killed"):
        d = tmp_path / name
        d.mkdir()
        params = micro_params(max_steps=40, checkpoint_every=4)
        params["tracking"]["uri"] = f"sqlite:///{d}/mlflow.db"
        write_params(d / "params.yaml", params)
        subprocess.run([sys.executable, "-m", "csalic", "demo-data", "--out", str(layout.demo_data(params)),
                        "--train", "8", "--val", "2"], cwd=d, check=True, capture_output=True)
        dirs[name] = d / layout.job_dir(params, "baseline", 0.001)
    ref = _sweep(tmp_path / "ref", env)
    assert ref.wait(600) == 0, ref.stderr.read()

    sweep = _sweep(tmp_path / "killed", env)
    last = dirs["killed"] / "last.pt"
    deadline = time.time() + 300
    while not last.exists() and time.time() < deadline and sweep.poll() is None:
        time.sleep(0.05)
    pid = _ray_worker_running(tmp_path / "killed")
    assert pid is not None and sweep.poll() is None
    os.kill(pid, signal.SIGKILL)
    out, err = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, out + err
    import json

    worker = json.loads((tmp_path / "killed" / "report.json").read_text())["jobs"][0]["worker"]
    assert worker["pid"] != pid  # finished by the retry, on another worker
    a = torch.load(dirs["ref"] / "final.pt", weights_only=True)["state_dict"]
    b = torch.load(dirs["killed"] / "final.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    ra = (dirs["ref"] / "metrics.csv").read_text().splitlines()
    rb = (dirs["killed"] / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[:9] for r in ra] == [r.split(",")[:9] for r in rb]
