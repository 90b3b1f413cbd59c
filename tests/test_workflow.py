"""The whole DAG through real Snakemake and real DVC on a micro study, and the two DAGs kept in step."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from csalic import layout
from helpers import REPO, micro_params, write_params

BIN = Path(sys.executable).parent
ENV = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", RAY_AUTH_MODE=os.environ.get("RAY_AUTH_MODE", ""))
ENV.pop("RAY_ADDRESS", None)
if not ENV["RAY_AUTH_MODE"]:
    ENV.pop("RAY_AUTH_MODE")


def micro_study(path: Path, **train) -> dict:
    """A checkout-like folder with the workflow files and a micro params.yaml."""
    for name in ("Snakefile", "dvc.yaml", "workflow", "envs", "profiles"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, path / name)
    params = micro_params(**({"init": "warmup", "finetune_steps": 3} | train))  # the demo's warm-up
    params["task"]["demo_steps"] = 4
    params["anchors"]["points"] = ["none", "hevc-q10", "jpeg-q80"]
    params["complexity"].update(height=64, width=64, latency_runs=1)
    params["tracking"]["uri"] = f"sqlite:///{path}/mlflow.db"
    write_params(path / "params.yaml", params)
    return params


def run(cmd, cwd, timeout=900):
    return subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


def _norm(cmd: str) -> str:
    cmd = re.sub(r"\s*>\s*\S+\s+2>&1\s*$", "", cmd.strip())
    return re.sub(r"--params \S+", "--params P", cmd)


def snakemake_plan(cwd: Path) -> dict[str, list[str]]:
    """Shell command -> outputs of every job of a from-scratch dry run."""
    out = run([str(BIN / "snakemake"), "-n", "-p", "--cores", "2", "--forceall"], cwd)  # 2: the rules' threads
    assert out.returncode == 0, out.stderr + out.stdout
    plan, outputs = {}, []
    for line in (out.stdout + out.stderr).splitlines():
        line = line.strip()
        if line.startswith("output:"):
            outputs = [o.strip() for o in line[len("output:"):].split(",")]
        elif line.startswith("Shell command: csalic "):
            plan[_norm(line[len("Shell command: "):])] = sorted(outputs)
    return plan


def dvc_plan(cwd: Path, params: dict) -> dict[str, list[str]]:
    """Shell command -> outs of every stage of dvc.yaml, with DVC's templating expanded."""
    import itertools

    stages = yaml.safe_load((cwd / "dvc.yaml").read_text())["stages"]

    def lookup(expr: str, item: dict):
        if expr.startswith("item."):
            return item[expr[5:]]
        value = params
        for key in expr.split("."):
            value = value[key]
        return value

    def render(text: str, item: dict) -> str:
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(lookup(m.group(1), item)), text)

    plan = {}
    for stage in stages.values():
        matrix = stage.get("matrix") or {}
        keys = list(matrix)
        values = [lookup(v[2:-1], {}) if isinstance(v, str) else v for v in matrix.values()]
        for combo in itertools.product(*values) if keys else [()]:
            item = dict(zip(keys, combo))
            outs = [next(iter(o)) if isinstance(o, dict) else o for o in stage.get("outs", [])]
            plan[_norm(render(stage["cmd"], item))] = sorted(render(o, item) for o in outs)
    return plan


def test_snakemake_and_dvc_describe_the_same_dag(tmp_path):
    params = micro_study(tmp_path)
    smk, dvc = snakemake_plan(tmp_path), dvc_plan(tmp_path, params)
    assert set(smk) == set(dvc)
    # data, task net, 2 warm-ups, 4 trainings, 4 + 3 evaluations, complexity, report
    assert len(smk) == 1 + 1 + 2 + 4 + 4 + 3 + 1 + 1
    for cmd, outs in smk.items():
        # DVC tracks the training job's plots separately, and the report's folders rather than files
        dvc_outs = dvc[cmd]
        assert {o for o in outs if not o.endswith("metrics.csv")} <= set(dvc_outs) or all(
            any(o.startswith(d + "/") or o == d for d in dvc_outs) for o in outs), (cmd, outs, dvc_outs)


def test_lint(tmp_path):
    micro_study(tmp_path)
    out = run([str(BIN / "snakemake"), "--lint"], tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Congratulations" in out.stdout + out.stderr or "no issues" in (out.stdout + out.stderr).lower()


def kill_when(cmd, cwd, ready, timeout=900):
    """Start ``cmd`` in its own process group and SIGKILL the whole group once ``ready()`` holds."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + timeout
    while not ready() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def assert_outputs_complete(root: Path):
    """Every result file that exists is whole: JSON parses, checkpoints load, no temporary files."""
    for p in root.rglob("*"):
        if p.is_file():
            assert not (p.name.startswith(".") and p.name.endswith(".tmp")), f"temporary file left: {p}"
            if p.suffix == ".json":
                json.loads(p.read_text())
            elif p.suffix == ".pt":
                torch.load(p, weights_only=True)


@pytest.mark.slow
def test_snakemake_runs_the_micro_study_then_has_nothing_to_do(tmp_path):
    params = micro_study(tmp_path)
    # killed mid-run (all its processes at once), once Snakemake has seen a warm-up finish: a job
    # fine-tuned from it has started (a job killed before Snakemake saw it end is rerun)
    first_job = tmp_path / layout.warmup_dir(params, "full") / "summary.json"
    child_log = tmp_path / "results" / "micro" / "logs" / "train" / f"full_lambda_{layout.lambda_tag(0.001)}.log"
    kill_when([str(BIN / "snakemake"), "--cores", "2"], tmp_path, child_log.is_file)
    assert_outputs_complete(tmp_path / "results")
    kept = first_job.stat().st_mtime_ns
    # Snakemake keeps its lock after a kill and says to unlock (./run.sh demo does it when no snakemake runs)
    assert run([str(BIN / "snakemake"), "--unlock"], tmp_path).returncode == 0
    first = run([str(BIN / "snakemake"), "--cores", "2"], tmp_path, timeout=1500)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first_job.stat().st_mtime_ns == kept  # the finished job was not run again
    for n in (1, 2, 3):
        for ext in ("md", "tex", "csv"):
            assert (tmp_path / "results" / "tables" / f"table{n}.{ext}").stat().st_size > 0
    assert (tmp_path / "results" / "figures" / "rate_accuracy.png").stat().st_size > 0
    table1 = (tmp_path / "results" / "tables" / "table1.md").read_text()
    assert "demo" in table1.lower()
    # every job is in MLflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(params["tracking"]["uri"])
    exp = client.get_experiment_by_name("csalic-micro")
    assert len(client.search_runs([exp.experiment_id], "tags.`csalic.role` = 'job'")) == 4
    assert len(client.search_runs([exp.experiment_id], "tags.`csalic.role` = 'warmup'")) == 2

    again = run([str(BIN / "snakemake"), "--cores", "2"], tmp_path)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr

    # changing one λ reruns only what depends on it
    params["lambdas"] = [0.001, 0.02]
    write_params(tmp_path / "params.yaml", params)
    plan = run([str(BIN / "snakemake"), "-n", "--cores", "1"], tmp_path)
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", plan.stdout, re.M))
    assert jobs.get("train") == "2" and jobs.get("eval_codec") == "2", plan.stdout
    assert "data" not in jobs and "task_net" not in jobs and "eval_anchor" not in jobs and "warmup" not in jobs


@pytest.mark.slow
def test_dvc_repro_runs_the_micro_study_then_skips_everything(tmp_path):
    # the DAG's shape is compared with Snakemake's above: one variant and two anchor points suffice here
    params = micro_study(tmp_path)
    params["variants"] = ["full"]
    params["anchors"]["points"] = ["none", "jpeg-q80"]
    write_params(tmp_path / "params.yaml", params)
    for cmd in (["git", "init", "-q"], [str(BIN / "dvc"), "init", "-q"],
                [str(BIN / "dvc"), "config", "core.analytics", "false"]):
        assert run(cmd, tmp_path).returncode == 0
    # killed mid-run once a codec has written a checkpoint, then run again to the end
    ckpt = tmp_path / layout.job_dir(params, "full", 0.001) / "last.pt"
    kill_when([str(BIN / "dvc"), "repro"], tmp_path, ckpt.is_file)
    assert_outputs_complete(tmp_path / "results")
    first = run([str(BIN / "dvc"), "repro"], tmp_path, timeout=1500)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert (tmp_path / "results" / "tables" / "table2.md").is_file()
    assert_outputs_complete(tmp_path / "results")
    again = run([str(BIN / "dvc"), "repro"], tmp_path)
    assert again.returncode == 0
    ran = re.findall(r"Running stage '([^']+)'", again.stdout)
    assert ran == [], again.stdout
