"""The Ray sweep on real Ray: a cluster with declared GPUs, a job that keeps failing, one shared local instance."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import micro_params, write_params

from csalic.study import layout

pytestmark = pytest.mark.slow


def _study(tmp_path, **train):
    params = micro_params(**train)
    params["tracking"]["uri"] = f"sqlite:///{tmp_path}/mlflow.db"
    write_params(tmp_path / "params.yaml", params)
    subprocess.run([sys.executable, "-m", "csalic", "demo-data", "--out", str(layout.demo_data(params)),
                    "--train", "8", "--val", "2"], cwd=tmp_path, check=True, capture_output=True)
    return params


def _sweep(cwd, *args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "csalic", "stage", "train", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


# Four λ at once, each on its own GPU of a `ray start --head --num-gpus 4` cluster: tested through
# `dvc repro` in tests/test_workflow.py (the same run_sweep, under the route that needs it most).


def test_a_job_that_keeps_failing_is_reported_while_the_others_finish(tmp_path):
    params = _study(tmp_path, max_steps=2)
    broken = tmp_path / layout.job_dir(params, "full", 0.01)
    broken.mkdir(parents=True)
    (broken / "last.pt").write_bytes(b"not a checkpoint")  # every attempt to resume fails
    proc = _sweep(tmp_path, "--no-track", "--report", "report.json")
    assert proc.returncode == 1
    assert "full λ=0.01" in proc.stdout and "failed" in proc.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert [(f["variant"], f["lmbda"]) for f in report["failed"]] == [("full", 0.01)]
    assert "truncated, corrupted" in report["failed"][0]["error"]
    done = {(j["variant"], j["lmbda"]) for j in report["jobs"]}
    assert done == {("full", 0.001), ("baseline", 0.001), ("baseline", 0.01)}
    for v, lm in done:
        assert (tmp_path / layout.job_dir(params, v, lm) / "final.pt").is_file()
    # after the fault is fixed, only the failed job runs; the others are kept
    (broken / "last.pt").unlink()
    again = _sweep(tmp_path, "--no-track", "--report", "report2.json")
    assert again.returncode == 0, again.stdout + again.stderr
    statuses = {(j["variant"], j["lmbda"]): j["status"] for j in json.loads((tmp_path / "report2.json").read_text())["jobs"]}
    assert statuses.pop(("full", 0.01)) == "trained" and set(statuses.values()) == {"cached"}


def test_concurrent_sweeps_share_one_local_ray_instance(tmp_path):
    _study(tmp_path, max_steps=2)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    procs = [subprocess.Popen([sys.executable, "-m", "csalic", "stage", "train", "--no-track", "--variants", v],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for v in ("full", "baseline")]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    addresses = {re.search(r"ray: (\S+),", o[0]).group(1) for o in outs}
    assert len(addresses) == 1, addresses
    # the keeper stops Ray once no sweep uses it
    registry = tmp_path / "results" / ".ray"
    deadline = time.time() + 90
    while (registry / "address.json").exists() and time.time() < deadline:
        time.sleep(1)
    assert not (registry / "address.json").exists()


def test_warmups_train_first_and_a_failed_warmup_stops_only_its_variant(tmp_path):
    params = _study(tmp_path, max_steps=2, init="warmup", finetune_steps=2, warmup_lambda=0.003)
    broken = tmp_path / layout.warmup_dir(params, "full")
    broken.mkdir(parents=True)
    (broken / "last.pt").write_bytes(b"not a checkpoint")
    proc = _sweep(tmp_path, "--no-track", "--report", "report.json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "3 of 6 job(s) failed" in proc.stdout and "full warm-up λ=0.003" in proc.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    failed = {(f["variant"], f["stage"], f["lmbda"]): f["error"] for f in report["failed"]}
    assert set(failed) == {("full", "warmup", 0.003), ("full", "train", 0.001), ("full", "train", 0.01)}
    assert "fine-tuned from" in failed[("full", "train", 0.01)] and "full/warmup" in failed[("full", "train", 0.01)]
    jobs = {(j["variant"], j["stage"], j["lmbda"]): j for j in report["jobs"]}
    assert set(jobs) == {("baseline", "warmup", 0.003), ("baseline", "train", 0.001), ("baseline", "train", 0.01)}
    warm = jobs[("baseline", "warmup", 0.003)]
    for lm in (0.001, 0.01):
        job = jobs[("baseline", "train", lm)]
        assert job["worker"]["start"] >= warm["worker"]["end"]
        assert job["summary"]["job_params"]["init"] == warm["summary"]["job_hash"]
    # --warmup trains the warm-ups alone; under train.init: scratch it leaves a note for dvc.yaml's stage
    shutil.rmtree(tmp_path / "results" / "micro" / "train")
    only = _sweep(tmp_path, "--no-track", "--variants", "baseline", "--warmup", "--report", "r.json")
    assert only.returncode == 0, only.stdout + only.stderr
    assert [j["stage"] for j in json.loads((tmp_path / "r.json").read_text())["jobs"]] == ["warmup"]
    assert not (tmp_path / layout.job_dir(params, "baseline", 0.001)).exists()
    _study(tmp_path, max_steps=2)
    none = _sweep(tmp_path, "--no-track", "--variants", "full", "--warmup")
    assert none.returncode == 0 and "no warm-up" in none.stdout
    assert json.loads((tmp_path / layout.warmup_dir(params, "full") / "none.json").read_text())["train.init"] == "scratch"


def test_the_local_instance_refuses_a_client_without_its_token(tmp_path):
    """Ray's ports listen on the machine's address (Ray maps localhost to it), so the shared local
    instance runs with Ray's token authentication: a client without the token cannot join."""
    registry = tmp_path / "results" / ".ray"
    probe = ("import ray, sys\n"
             "try:\n    ray.init(address=sys.argv[1], logging_level='ERROR')\n"
             "    ray.get(ray.remote(lambda: 1).remote(), timeout=30)\n    print('JOINED')\n"
             "except Exception as e:\n    print('REFUSED', type(e).__name__)\n")
    keeper = subprocess.Popen([sys.executable, "-c",
                               "import sys, time\nfrom csalic.study.raycluster import connect\n"
                               f"with connect(registry={str(registry)!r}, num_cpus=1) as a:\n"
                               "    print(a, flush=True); time.sleep(60)\n"],
                              stdout=subprocess.PIPE, text=True, env={k: v for k, v in os.environ.items()
                                                                      if k != "RAY_ADDRESS"})
    try:
        address = keeper.stdout.readline().strip()
        assert address, "the local instance did not start"
        # Ray retries a refused connection for ~20 s (one try a second) unless told otherwise: 3 tries
        stranger = dict(os.environ, HOME=str(tmp_path / "stranger"), RAY_AUTH_MODE="disabled",
                        RAY_gcs_server_port_wait_time_s="3")
        stranger.pop("RAY_ADDRESS", None)
        (tmp_path / "stranger").mkdir()
        out = subprocess.run([sys.executable, "-c", probe, address], env=stranger, capture_output=True,
                             text=True, timeout=120)
        assert "REFUSED" in out.stdout and "JOINED" not in out.stdout, out.stdout + out.stderr[-2000:]
        member = subprocess.run([sys.executable, "-c", "from csalic.study.raycluster import prepare_auth\n"
                                 "prepare_auth()\n" + probe, address], capture_output=True, text=True,
                                timeout=120, env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"})
        assert "JOINED" in member.stdout, member.stdout + member.stderr[-2000:]
    finally:
        keeper.kill()
        keeper.wait()


def test_a_first_sweep_on_a_fresh_machine_starts_and_joins_its_own_instance(tmp_path, gpu_cluster):
    """No ~/.ray/auth_token yet: the keeper's instance creates one, and the sweep that started it
    joins in token mode too (it used to be refused, failing the very first demo run).  A cluster
    that `ray start` left running on the machine is not joined without RAY_ADDRESS."""
    _study(tmp_path, max_steps=2)
    home = tmp_path / "fresh-home"
    home.mkdir()
    env = {k: v for k, v in gpu_cluster.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE")}
    env["HOME"] = str(home)
    proc = _sweep(tmp_path, "--no-track", "--variants", "baseline", "--lambdas", "0.001", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert "each asking for 1 CPU" in proc.stdout  # the local instance: the running one declares GPUs
    assert (home / ".ray" / "auth_token").stat().st_mode & 0o077 == 0  # the token is private
    assert (tmp_path / "results" / "micro" / "train" / "baseline" / "lambda_0.001" / "final.pt").is_file()
