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

from csalic.study import layout
from helpers import REPO, MlflowServer, micro_params, write_params

BIN = Path(sys.executable).parent
ENV = dict(os.environ, PATH=f"{BIN}:{os.environ['PATH']}", RAY_AUTH_MODE=os.environ.get("RAY_AUTH_MODE", ""))
ENV.pop("RAY_ADDRESS", None)
if not ENV["RAY_AUTH_MODE"]:
    ENV.pop("RAY_AUTH_MODE")


# the README's worked example of a user's own codec, by import path from the study's folder
TINY = {"codec": "examples.tiny_codec:build", "args": {"N": 8, "M": 8}}


def micro_study(path: Path, **train) -> dict:
    """A checkout-like folder with the workflow files and a micro params.yaml."""
    for name in ("Snakefile", "dvc.yaml", "workflow", "envs", "profiles", "pretrained", "examples"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, path / name)
    # the demo's warm-up, continuing the committed warm starts (copied above), or those warm starts themselves
    init = train.get("init", "warmup")
    source = {"warmup": {"warmup_from": "pretrained/demo", "warmup_lambda": 0.001},
              "pretrained": {"pretrained": "pretrained/demo"}}.get(init, {})
    params = micro_params(**({"init": init, "finetune_steps": 3} | source | train))
    params["task"]["demo_steps"] = 4
    params["anchors"]["points"] = ["none", "vvc-qp50", "vvc-qp62", "jpeg-q80"]  # VVC: the bundled FFmpeg's
    params["complexity"].update(height=64, width=64, latency_runs=1)
    params["tracking"]["uri"] = f"sqlite:///{path}/mlflow.db"
    write_params(path / "params.yaml", params)
    return params


def run(cmd, cwd, timeout=900):
    return subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


def dvc_project(path: Path) -> None:
    """Make a micro study's folder a git and DVC project, with the rate-accuracy plot template."""
    for cmd in (["git", "init", "-q"], [str(BIN / "dvc"), "init", "-q"],
                [str(BIN / "dvc"), "config", "core.analytics", "false"]):
        assert run(cmd, path).returncode == 0
    shutil.copytree(REPO / ".dvc" / "plots", path / ".dvc" / "plots")


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
    """Shell command -> outs of every stage of dvc.yaml, with DVC's templating (foreach, matrix) expanded."""
    import itertools

    stages = yaml.safe_load((cwd / "dvc.yaml").read_text())["stages"]

    def lookup(expr: str, item):
        if expr == "key":  # a foreach over a mapping: ${key} and ${item}
            return item[0]
        if expr == "item":
            return item[1] if isinstance(item, tuple) else item
        if expr.startswith("item."):
            return item[expr[5:]]
        value = params
        for key in expr.split("."):
            value = value[key]
        return value

    def render(text: str, item) -> str:
        return re.sub(r"\$\{([^}]+)\}", lambda m: str(lookup(m.group(1), item)), text)

    plan = {}
    for stage in stages.values():
        if "foreach" in stage:
            items, stage = lookup(stage["foreach"][2:-1], None), stage["do"]
            items = list(items.items()) if isinstance(items, dict) else items
        else:
            matrix = stage.get("matrix") or {}
            values = [lookup(v[2:-1], {}) if isinstance(v, str) else v for v in matrix.values()]
            items = [dict(zip(matrix, combo)) for combo in itertools.product(*values)] if matrix else [{}]
        for item in items:
            declared = stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", [])
            outs = [next(iter(o)) if isinstance(o, dict) else o for o in declared]
            plan[_norm(render(stage["cmd"], item))] = sorted(render(o, item) for o in outs)
    return plan


def dvc_stage_of(smk_cmd: str) -> str:
    """The DVC command that does a Snakemake job: a variant's stage trains its warm-up and every λ,
    the evaluation stage evaluates every point (DVC runs stages one at a time, Ray runs their jobs side by side)."""
    return re.sub(r" --job \S+| --point \S+", "", smk_cmd)


def test_snakemake_and_dvc_describe_the_same_dag(tmp_path):
    params = micro_study(tmp_path)
    params["learned"] = {"tiny": dict(TINY)}  # a learned codec: its own jobs in both DAGs
    write_params(tmp_path / "params.yaml", params)
    smk, dvc = snakemake_plan(tmp_path), dvc_plan(tmp_path, params)
    assert not (tmp_path / "results").exists()  # a dry run writes nothing, the merged config included
    # the rules' outputs are where csalic.study.layout says the stages write
    outs = {o for files in smk.values() for o in files}
    for v in params["variants"] + ["tiny"]:
        for lm in params["lambdas"]:
            assert str(layout.job_dir(params, v, lm) / "final.pt") in outs
            assert {str(layout.eval_dir(params, d, layout.csalic_point(v, lm))) for d in params["eval"]["datasets"]} <= outs
        assert str(layout.warmup_dir(params, v) / "final.pt") in outs
    assert {str(layout.data_dir(params)), str(layout.task_net_dir(params)), str(layout.complexity_json(params))} <= outs
    dvc = {re.sub(r" --report \S+", "", cmd): outs for cmd, outs in dvc.items()}  # the sweep's own log
    # data, its OpenImages-format set converted, task net, 3 warm-ups (2 variants, 1 learned codec),
    # 6 trainings, 6 + 4 evaluations (each on both datasets), complexity, report
    assert len(smk) == 1 + 1 + 1 + 3 + 6 + 6 + 4 + 1 + 1
    assert str(layout.eval_dir(params, "demo_val", "tiny-lambda_0.001")) in outs
    # the same, with a training stage per variant and per learned codec, and one evaluation stage
    assert len(dvc) == 1 + 1 + 1 + 3 + 1 + 1 + 1
    jobs: dict[str, list[str]] = {cmd: [] for cmd in dvc}
    for cmd in smk:
        assert dvc_stage_of(cmd) in dvc, (cmd, sorted(dvc))
        jobs[dvc_stage_of(cmd)].append(cmd)
    assert all(jobs.values()), jobs  # no DVC stage without its Snakemake jobs
    for stage, cmds in jobs.items():
        smk_outs = [o for c in cmds for o in smk[c]]
        # every Snakemake output lies in the stage's outs (DVC tracks folders where Snakemake names files) ...
        for o in smk_outs:
            assert any(o == d or o.startswith(d + "/") for d in dvc[stage]), (stage, o, dvc[stage])
        # ... and every out of the stage holds some Snakemake output (but the curves folder, whose
        # file names come from the results, which only DVC declares)
        for d in set(dvc[stage]) - {"results/micro/curves"}:
            assert any(o == d or o.startswith(d + "/") or d.startswith(o + "/") for o in smk_outs), (stage, d)


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
    # the run's Ray tasks live in the keeper's workers: the keeper interrupts them once their stage
    # processes are gone (a second or so); what they leave behind is checked after that
    deadline = time.time() + 60
    while _study_task_running(Path(cwd)) and time.time() < deadline:
        time.sleep(0.2)
    assert not _study_task_running(Path(cwd)), "a killed run's task is still running"


def _study_task_running(root: Path) -> bool:
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                name = (d / "cmdline").read_bytes().split(b"\0")[0]
                if name.startswith((b"ray::_run_job", b"ray::_eval_task")) and \
                        Path(os.readlink(d / "cwd")).resolve().is_relative_to(root.resolve()):
                    return True
            except OSError:
                continue
    return False


def assert_outputs_complete(root: Path):
    """Every result file that exists is whole: JSON parses, checkpoints load, no temporary files."""
    for p in root.rglob("*"):
        if p.is_file():
            assert not (p.name.startswith(".") and p.name.endswith(".tmp")), f"temporary file left: {p}"
            if p.suffix == ".json":
                json.loads(p.read_text())
            elif p.suffix == ".pt":
                torch.load(p, weights_only=True)


def check_mlflow_results(cwd: Path, params: dict) -> None:
    """Through a real server's REST API: the experiment opens on runs, every codec run has its coded
    results, every variant its BD result (a value, or the reason it has none), anchors and the study run."""
    server = MlflowServer(params["tracking"]["uri"], cwd, ENV)
    try:
        exp = server.get("/experiments/get-by-name", experiment_name="csalic-micro")["experiment"]
        tags = {t["key"]: t["value"] for t in exp.get("tags", [])}
        assert tags["mlflow.experimentKind"] == "custom_model_development"
        eid = exp["experiment_id"]
        coded = server.runs(eid, "metrics.`eval/demo_val/map50_bbox` >= 0 and tags.`csalic.role` = 'job'")
        learned = sorted(params.get("learned") or {})
        assert len(coded) == 2 * (len(params["variants"]) + len(learned))
        for r in coded:
            m = {x["key"]: x["value"] for x in r["data"]["metrics"]}
            assert m["eval/demo_val/bpp"] > 0 and "eval/demo_val/psnr_rgb" in m and "eval/demo_val/map50_segm" in m
            t = {x["key"]: x["value"] for x in r["data"]["tags"]}
            assert t["csalic.eval.demo_val.protocol"] == "coco" and t["csalic.eval.demo_oi.protocol"] == "oid"
        parents = server.runs(eid, "tags.`csalic.role` = 'variant'")
        assert sorted(r["info"]["run_name"] for r in parents) == sorted(list(params["variants"]) + learned)
        kinds = {r["info"]["run_name"]: {x["key"]: x["value"] for x in r["data"]["tags"]}["csalic.method_kind"]
                 for r in parents}
        assert kinds == {**{v: "variant" for v in params["variants"]}, **{n: "learned" for n in learned}}
        for r in parents:
            m = {x["key"] for x in r["data"].get("metrics", [])}
            t = {x["key"] for x in r["data"].get("tags", [])}
            for task in ("detection", "segmentation", "average"):
                assert {f"bd_rate/demo_val/{task}", f"csalic.bd_notes.demo_val.{task}"} & (m | t), (task, m, t)
        anchors = server.runs(eid, "tags.`csalic.role` = 'anchor'")
        assert sorted(r["info"]["run_name"] for r in anchors) == ["jpeg quality=80", "none uncompressed",
                                                                  "vvc qp=50", "vvc qp=62"]
        vvc = next(r for r in anchors if r["info"]["run_name"] == "vvc qp=50")
        assert any(x["key"] == "csalic.tool" and "VVenC" in x["value"] for x in vvc["data"]["tags"])
        study = server.runs(eid, "tags.`csalic.role` = 'study'")
        assert len(study) == 1
        arts = server.get("/artifacts/list", run_id=study[0]["info"]["run_id"], path="tables")
        assert {"tables/table1.json", "tables/table1.md"} <= {f["path"] for f in arts["files"]}
        # logging it all again from the files adds nothing
        before = server.post("/runs/search", {"experiment_ids": [eid], "max_results": 1000})["runs"]
        again = run([str(BIN / "csalic"), "track", "--results"], cwd)
        assert again.returncode == 0, again.stderr[-2000:]
        after = server.post("/runs/search", {"experiment_ids": [eid], "max_results": 1000})["runs"]
        assert len(after) == len(before)
        history = server.get("/metrics/get-history", run_id=coded[0]["info"]["run_id"], metric_key="eval/demo_val/bpp")
        assert len(history["metrics"]) == 1
    finally:
        server.close()


@pytest.mark.slow
def test_snakemake_runs_the_micro_study_then_has_nothing_to_do(tmp_path):
    params = micro_study(tmp_path, feature_weight=0.01)  # trains with D_f through the demo's task network
    # one variant (the DAG of several is compared with DVC's above) and a learned comparator by compressai
    # registry name, trained beside it (its warm-up from scratch: pretrained/demo has no mbt2018-mean.pt)
    params["variants"] = ["full"]
    params["learned"] = {"mbt2018-mean": {"codec": "mbt2018-mean", "args": {"N": 8, "M": 8}}}
    write_params(tmp_path / "params.yaml", params)
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
            assert (tmp_path / "results" / "micro" / "tables" / f"table{n}.{ext}").stat().st_size > 0
    assert (tmp_path / "results" / "micro" / "figures" / "rate_accuracy.png").stat().st_size > 0
    table1 = (tmp_path / "results" / "micro" / "tables" / "table1.md").read_text()
    # both column groups: demo_val for COCO2017, demo_oi (OpenImages' files, converted) for OpenImagesV6
    header = table1.splitlines()[next(i for i, line in enumerate(table1.splitlines()) if line.startswith("| Method"))]
    assert "demo_val Det." in header and "demo_oi Det." in header and "demo_oi Seg." in header, header
    assert "demo_oi (generated in OpenImages V6's files, converted by csalic convert-openimages" in table1
    converted = json.loads((tmp_path / "results" / "micro" / "openimages" / "demo_oi.json").read_text())
    assert converted["categories"][0]["label_names"] == ["/m/0csl01"] and converted["annotations"]
    # every job is in MLflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(params["tracking"]["uri"])
    exp = client.get_experiment_by_name("csalic-micro")
    assert len(client.search_runs([exp.experiment_id], "tags.`csalic.role` = 'job'")) == 4
    assert len(client.search_runs([exp.experiment_id], "tags.`csalic.role` = 'warmup'")) == 2
    # the learned codec: a measured row of Table 1, a curve of the figure, its BD against VVC on both sets
    assert "| mbt2018-mean (trained here) |" in table1
    bd = json.loads((tmp_path / "results" / "micro" / "metrics" / "bd.json").read_text())["bd"]["mbt2018-mean"]
    for ds in ("demo_val", "demo_oi"):
        cell = bd[ds]["detection"]
        assert (cell.get("bd_rate") is not None) or cell.get("notes"), (ds, cell)
    for job in (tmp_path / "results" / "micro" / "train").glob("*/lambda_*"):  # fine-tuned with D_f
        summary = json.loads((job / "summary.json").read_text())
        assert summary["final"]["d_f"] > 0 and summary["task_network"]["name"] == "demo_mask_rcnn"
    assert (tmp_path / "results" / "micro" / "figures" / "ablation.png").stat().st_size > 0
    assert json.loads((tmp_path / "results" / "micro" / "metrics" / "bd.json").read_text())["anchor"] == "vvc"
    check_mlflow_results(tmp_path, params)

    again = run([str(BIN / "snakemake"), "--cores", "2"], tmp_path)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr

    study_text = (tmp_path / "params.yaml").read_text()  # restored for the DVC route at the end
    # changing one λ reruns only what depends on it
    params["lambdas"] = [0.001, 0.02]
    write_params(tmp_path / "params.yaml", params)
    plan = run([str(BIN / "snakemake"), "-n", "--cores", "1"], tmp_path)
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", plan.stdout, re.M))
    # the new λ's jobs of the variant and the learned codec (no warm-up) and their points (no anchor
    # point), each on both datasets
    assert (jobs.get("train"), jobs.get("train_learned"), jobs.get("evaluate")) == ("1", "1", "2"), plan.stdout
    assert not {"data", "convert_openimages", "task_net"} & set(jobs), plan.stdout

    # the stages that code no image start without torch or compressai (each seconds to import); a
    # study that trains learned codecs pays compressai's in its data stage, which checks them first
    for stage, learned in (("report", params["learned"]), ("data", {})):
        write_params(tmp_path / "params.yaml", dict(params, lambdas=[0.001, 0.01], learned=learned))
        probe = run([sys.executable, "-c", IMPORT_PROBE, stage], tmp_path)
        assert probe.returncode == 0, probe.stderr[-2000:]
        got = json.loads(probe.stdout.strip().splitlines()[-1])
        assert got == {"rc": 0, "heavy": []}, (stage, got)

    # the same study through DVC in the same folder: DVC has no record of Snakemake's run, so every
    # stage runs; they reuse the finished jobs and points and write Tables 1-2 byte for byte
    (tmp_path / "params.yaml").write_text(study_text)
    tables = tmp_path / "results" / "micro" / "tables"
    written = {p.name: p.read_bytes() for p in sorted(tables.glob("table[12].*"))}
    assert len(written) == 6
    final = tmp_path / layout.job_dir(params, "full", 0.001) / "final.pt"
    trained = final.stat().st_mtime_ns
    dvc_project(tmp_path)
    dvc = run([str(BIN / "dvc"), "repro"], tmp_path, timeout=1500)
    assert dvc.returncode == 0, dvc.stdout[-3000:] + dvc.stderr[-3000:]
    assert "Running stage 'report'" in dvc.stdout
    assert final.stat().st_mtime_ns == trained  # the job was reused, not trained again
    assert {p.name: p.read_bytes() for p in sorted(tables.glob("table[12].*"))} == written


# run in a fresh interpreter: a stage through the CLI, then which heavy modules it imported
IMPORT_PROBE = """
import json, sys
from csalic.cli import main
rc = main(["stage", sys.argv[1], "--params", "params.yaml"])
heavy = sorted(m for m in ("torch", "torchvision", "compressai", "torch_geometric") if m in sys.modules)
print(json.dumps({"rc": rc, "heavy": heavy}))
"""


@pytest.mark.slow
def test_dvc_repro_runs_the_micro_study_then_skips_everything(tmp_path):
    # the DAG's shape is compared with Snakemake's above: one variant suffices here
    params = micro_study(tmp_path)
    params["variants"] = ["full"]
    params["learned"] = {"tiny": dict(TINY)}  # a user's own codec, by import path (examples/tiny_codec.py)
    write_params(tmp_path / "params.yaml", params)
    dvc_project(tmp_path)
    # killed mid-run once a codec has written a checkpoint, then run again to the end
    ckpt = tmp_path / layout.job_dir(params, "full", 0.001) / "last.pt"
    kill_when([str(BIN / "dvc"), "repro"], tmp_path, ckpt.is_file)
    assert_outputs_complete(tmp_path / "results")
    first = run([str(BIN / "dvc"), "repro"], tmp_path, timeout=1500)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert (tmp_path / "results" / "micro" / "tables" / "table2.md").is_file()
    assert_outputs_complete(tmp_path / "results")
    again = run([str(BIN / "dvc"), "repro"], tmp_path)
    assert again.returncode == 0
    ran = re.findall(r"Running stage '([^']+)'", again.stdout)
    assert ran == [], again.stdout
    check_dvc_metrics_and_plots(tmp_path)  # ends with an experiment: a new λ and a second training seed
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert params["lambdas"] == [0.0005, 0.001] and params["train"]["seeds"] == [0, 1]
    check_both_seeds(tmp_path, params)


@pytest.mark.slow
def test_dvc_trains_a_variants_lambdas_side_by_side_each_on_its_own_gpu(tmp_path, gpu_cluster):
    """Under `dvc repro`, on a `ray start --head --num-gpus 4` cluster, a variant's four λ run at once."""
    # fine-tuned from the committed warm start: the four λ are ready at once (no warm-up first)
    params = micro_study(tmp_path, init="pretrained", finetune_steps=8, checkpoint_every=8, log_every=4)
    params["variants"] = ["full"]
    params["lambdas"] = [0.001, 0.002, 0.005, 0.01]
    write_params(tmp_path / "params.yaml", params)
    dvc_project(tmp_path)
    env = dict(ENV, **{k: gpu_cluster[k] for k in ("RAY_ADDRESS", "RAY_AUTH_MODE")})
    out = subprocess.run([str(BIN / "dvc"), "repro", "train"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "4 job(s), each asking for 1 GPU" in out.stdout, out.stdout[-3000:]
    report = json.loads((tmp_path / "results" / "micro" / "logs" / "train" / "full_sweep.json").read_text())
    workers = [j["worker"] for j in report["jobs"]]
    assert len(workers) == 4 and not report["failed"]
    assert sorted(w["cuda_visible_devices"] for w in workers) == ["0", "1", "2", "3"]
    assert all(w["start"] <= w["train_start"] <= w["end"] for w in workers)  # a task's span: imports, then training
    latest_start = max(w["start"] for w in workers)
    assert all(w["end"] > latest_start for w in workers), "the four λ did not overlap in time"
    # the driver logged a run per λ, each with its training curve
    from mlflow.tracking import MlflowClient

    client = MlflowClient(params["tracking"]["uri"])
    exp = client.get_experiment_by_name("csalic-micro")
    runs = client.search_runs([exp.experiment_id], "tags.`csalic.role` = 'job'")
    assert sorted(float(r.data.tags["csalic.lambda"]) for r in runs) == [0.001, 0.002, 0.005, 0.01]
    assert all(len(client.get_metric_history(r.info.run_id, "bpp")) == 2 for r in runs)  # steps 4, 8


def check_both_seeds(cwd: Path, params: dict) -> None:
    """train.seeds [0, 1]: a job, an MLflow run and a point per seed; the tables average the two seeds,
    with their spread, and every BD value has its image interval (tables, bd.json, MLflow)."""
    from mlflow.tracking import MlflowClient

    root = cwd / "results" / "micro"
    for name in ("full", "tiny"):
        for lm in params["lambdas"]:
            for seed in (None, 1):
                job = cwd / layout.job_dir(params, name, lm, seed)
                assert json.loads((job / "summary.json").read_text())["job_params"]["seed"] == (seed or 0)
                point = layout.eval_dir(params, "demo_val", layout.csalic_point(name, lm, seed))
                assert json.loads((cwd / point / "summary.json").read_text())["seed"] == (seed or 0)
                assert (cwd / point / "matches.npz").is_file()
    a = (cwd / layout.job_dir(params, "full", 0.001) / "final.pt").read_bytes()
    assert a != (cwd / layout.job_dir(params, "full", 0.001, 1) / "final.pt").read_bytes()  # another network
    bd = json.loads((root / "metrics" / "bd.json").read_text())["bd"]
    for method in ("csalic-full", "tiny"):
        cell = bd[method]["demo_val"]["detection"]
        assert set(cell["seeds"]) == {"0", "1"}, cell
        rates = [s["bd_rate"] for s in cell["seeds"].values()]
        if None not in rates:
            assert cell["bd_rate"] == pytest.approx(sum(rates) / 2)
            assert cell["bd_rate_seed_sd"] == pytest.approx(abs(rates[0] - rates[1]) / 2 ** 0.5)
        else:
            assert cell["bd_rate"] is None and cell["notes"]
        if cell["bd_rate"] is not None or cell["bd_map"] is not None:  # each value has its interval
            assert cell["ci_resamples"] == params["report"]["resamples"], cell
        for kind in ("bd_rate", "bd_map"):
            if cell[kind] is not None:
                low, high = cell[f"{kind}_ci"]
                assert low is None or low <= high
    table2 = (root / "tables" / "table2.md").read_text()
    assert "Trained under 2 seeds (0, 1)" in table2 and "paired bootstrap resamples" in table2
    client = MlflowClient(params["tracking"]["uri"])
    exp = client.get_experiment_by_name("csalic-micro")
    jobs = [r for r in client.search_runs([exp.experiment_id], "tags.`csalic.role` = 'job'")
            if float(r.data.tags["csalic.lambda"]) in params["lambdas"]]  # not an earlier λ list's
    names = sorted(r.info.run_name for r in jobs)
    assert len(jobs) == 8 and "full λ=0.001 seed=1" in names and "full λ=0.001" in names, names
    assert {r.data.tags["csalic.seed"] for r in jobs} == {"0", "1"}
    parent = client.search_runs([exp.experiment_id], "tags.`csalic.role` = 'variant' and tags.`mlflow.runName` = 'full'")
    metrics = parent[0].data.metrics
    if "bd_rate/demo_val/detection" in metrics:
        assert metrics["bd_rate_low/demo_val/detection"] <= metrics["bd_rate_high/demo_val/detection"]


def check_dvc_metrics_and_plots(cwd: Path) -> None:
    """Real `dvc metrics show`, `dvc plots show` and `dvc exp run -S` / `dvc exp show` on the micro study."""
    shown = run([str(BIN / "dvc"), "metrics", "show", "--json"], cwd)
    assert shown.returncode == 0, shown.stderr
    metrics = json.loads(shown.stdout)
    files = next(iter(metrics.values()))["data"]
    bd = files["results/micro/metrics/bd.json"]["data"]
    assert bd["anchor"] == "vvc" and set(bd["bd"]) == {"csalic-full", "jpeg", "tiny"}
    assert files["results/micro/metrics/points.json"]["data"]["points"]["demo_val"]["vvc"]["qp=50"]["bpp"] > 0
    table = run([str(BIN / "dvc"), "metrics", "show"], cwd)
    assert "results/micro/metrics/bd.json" in table.stdout and "bd.csalic-full.demo_val.detection" in table.stdout
    plots = run([str(BIN / "dvc"), "plots", "show", "--json"], cwd)
    assert plots.returncode == 0, plots.stderr
    shown = json.loads(plots.stdout)["data"]
    det = shown["Rate-accuracy (detection)"][0]
    assert det["type"] == "vega"
    rows = det["content"]["data"]["values"]
    assert {r["method"] for r in rows} == {"csalic-full", "jpeg", "vvc", "tiny"}  # no uncompressed ceiling
    assert all(float(r["bpp"]) < 24 for r in rows)
    assert det["content"]["spec"]["encoding"]["color"]["field"] == "method"
    # a variation of the study as a DVC experiment, listed beside the baseline
    git = ["git", "-c", "user.email=t@example.org", "-c", "user.name=t"]
    assert run([*git, "add", "-A"], cwd).returncode == 0
    assert run(["git", "ls-files", "results/.ray"], cwd).stdout == ""  # the Ray registry is never committed
    assert run([*git, "commit", "-q", "-m", "baseline"], cwd).returncode == 0
    # a new λ, and a second training seed added to the finished study
    exp = run([str(BIN / "dvc"), "exp", "run", "-n", "lower-lambda", "-S", "lambdas=[0.0005,0.001]",
               "-S", "train.seeds=[0,1]"], cwd, timeout=1500)
    assert exp.returncode == 0, exp.stdout[-3000:] + exp.stderr[-3000:]
    ran = set(re.findall(r"Running stage '([^']+)'", exp.stdout))
    assert {"train@full", "evaluate", "report"} <= ran and "data" not in ran, ran
    # the variant's stage reran, but only the new jobs trained (the new λ under both seeds, the old λ
    # under the new seed: the first seed's job is kept), and only their points were evaluated
    sweep = json.loads((cwd / "results" / "micro" / "logs" / "train" / "full_sweep.json").read_text())
    status = {(j["stage"], Path(j["out_dir"]).name): j["status"] for j in sweep["jobs"]}
    warmup = [v for (stage, _), v in status.items() if stage == "warmup"]
    assert warmup == ["cached"], status
    assert {name: v for (stage, name), v in status.items() if stage == "train"} == {
        "lambda_0.0005": "trained", "lambda_0.001": "cached", "lambda_0.0005-seed_1": "trained",
        "lambda_0.001-seed_1": "trained"}, status
    assert "csalic-full-lambda_0.001: evaluated already" in exp.stdout
    assert "done demo_val csalic-full-lambda_0.0005" in exp.stdout
    assert "done demo_val csalic-full-lambda_0.001-seed_1" in exp.stdout
    listed = run([str(BIN / "dvc"), "exp", "show", "--json"], cwd)
    assert listed.returncode == 0 and "lower-lambda" in listed.stdout
