"""MLflow logging of finished jobs, read back with MlflowClient from an embedded sqlite store (no server)."""

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

from mlflow import MlflowClient  # noqa: E402

from csalic.study import tracking  # noqa: E402
from csalic.cli import main  # noqa: E402
from csalic.errors import CsalicError  # noqa: E402
from csalic.study.params import load  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ("step,epoch,lr,loss,bpp,mse,psnr,d_i,d_f,aux_loss,sec_per_step,"
           "sys_cpu_percent,sys_rss_gb,sys_gpu_mem_gb").split(",")


def make_job(d: Path, variant: str, lmbda: float, manifest: Path | None, rows: int = 6, seed: int = 0) -> Path:
    d.mkdir(parents=True)
    lines = [",".join(COLUMNS)]
    for i in range(rows):
        vals = [str(5 * (i + 1))] + [f"{seed + 0.01 * i + 0.001 * j:.6f}" for j in range(len(COLUMNS) - 2)] + [""]
        lines.append(",".join(vals))
    (d / "metrics.csv").write_text("\n".join(lines) + "\n")
    (d / "final.pt").write_bytes(f"{variant}-{lmbda}-{seed}".encode() * 50)
    summary = {
        "variant": variant, "lmbda": lmbda, "size": "demo", "steps": 5 * rows, "epochs": 1.5,
        "final": {"loss": 1.0 + seed, "bpp": 0.5, "psnr": 30.0, "d_f": 0.1}, "params_hash": "abc123",
        "git_commit": None, "task_network": {"name": "demo_mask_rcnn"}, "device": "cpu", "wall_s": 12.3,
        "manifest": str(manifest) if manifest else "results/none/manifest_train.csv", "checkpoint": "final.pt",
        "job_params": {"batch_size": 4, "lr": 1e-4, "crop": 128},
    }
    (d / "summary.json").write_text(json.dumps(summary))
    return d


@pytest.fixture(scope="module")
def params():
    return load(ROOT / "params.yaml")


@pytest.fixture(scope="module")
def study(tmp_path_factory, params):
    """Two variants x two λ logged once; the readback tests share it."""
    tmp = tmp_path_factory.mktemp("track")
    manifest = tmp / "manifest_train.csv"
    pd.DataFrame({"file_name": ["a.png", "b.png"], "width": [320, 320], "height": [320, 320]}).to_csv(
        manifest, index=False)
    uri = f"sqlite:///{tmp}/mlflow.db"
    jobs, ids = {}, {}
    for i, (variant, lmbda) in enumerate([("full", 0.0025), ("full", 0.01), ("baseline", 0.0025),
                                          ("baseline", 0.01)]):
        job = make_job(tmp / f"{variant}-{lmbda}", variant, lmbda, manifest, seed=i)
        jobs[(variant, lmbda)] = job
        ids[(variant, lmbda)] = tracking.log_training_job(job, params, uri=uri)
    return {"tmp": tmp, "uri": uri, "jobs": jobs, "ids": ids, "client": MlflowClient(uri)}


def _runs(client, exp_id):
    return client.search_runs([exp_id], max_results=1000)


def test_parent_per_variant_child_per_lambda(study, params):
    c = study["client"]
    exp = c.get_experiment_by_name("csalic-demo")
    assert exp is not None
    runs = _runs(c, exp.experiment_id)
    parents = {r.data.tags["csalic.variant"]: r for r in runs if r.data.tags.get("csalic.role") == "variant"}
    assert sorted(parents) == ["baseline", "full"] and len(runs) == 6
    for (variant, lmbda), rid in study["ids"].items():
        run = c.get_run(rid)
        t = run.data.tags
        assert run.info.status == "FINISHED"
        assert t["mlflow.parentRunId"] == parents[variant].info.run_id
        assert (t["csalic.role"], t["csalic.variant"], float(t["csalic.lambda"])) == ("job", variant, lmbda)
        assert t["csalic.params_hash"] == "abc123" and t["csalic.size"] == "demo"
        assert json.loads(t["csalic.task_network"]) == {"name": "demo_mask_rcnn"}
        assert "csalic.git_commit" in t
        p = run.data.params
        assert (p["variant"], float(p["lmbda"]), p["size"], p["batch_size"], p["crop"]) == (variant, lmbda, "demo", "4",
                                                                                          "128")


def test_metric_histories_match_csv(study):
    c = study["client"]
    rid = study["ids"][("full", 0.01)]
    df = pd.read_csv(study["jobs"][("full", 0.01)] / "metrics.csv")
    for col, key in [("loss", "loss"), ("psnr", "psnr"), ("lr", "lr"), ("sys_cpu_percent", "system/cpu_percent"),
                     ("sys_rss_gb", "system/rss_gb")]:
        hist = sorted(c.get_metric_history(rid, key), key=lambda m: m.step)
        assert len(hist) == len(df)
        assert [m.step for m in hist] == df["step"].tolist()
        assert [m.value for m in hist] == pytest.approx(df[col].tolist())
    metrics = c.get_run(rid).data.metrics
    assert "system/gpu_mem_gb" not in metrics  # empty on CPU: nothing logged, not zeros
    assert metrics["final/bpp"] == 0.5 and metrics["final/psnr"] == 30.0 and metrics["final/steps"] == 30


def test_dataset_input_and_artifacts(study):
    c = study["client"]
    run = c.get_run(study["ids"][("baseline", 0.01)])
    inputs = run.inputs.dataset_inputs
    assert len(inputs) == 1
    assert [(t.key, t.value) for t in inputs[0].tags] == [("mlflow.data.context", "training")]
    assert "manifest_train.csv" in inputs[0].dataset.source
    names = {a.path for a in c.list_artifacts(run.info.run_id)}
    assert "final.pt" in names
    local = c.download_artifacts(run.info.run_id, "final.pt", str(study["tmp"] / "dl"))
    assert Path(local).read_bytes() == (study["jobs"][("baseline", 0.01)] / "final.pt").read_bytes()
    # Artifacts live beside the database, not in the test's working folder.
    assert Path(c.get_experiment(run.info.experiment_id).artifact_location).parent.parent == study["tmp"]


def test_idempotent(study, params):
    c = study["client"]
    exp = c.get_experiment_by_name("csalic-demo")
    before = len(_runs(c, exp.experiment_id))
    job = study["jobs"][("full", 0.0025)]
    assert tracking.log_training_job(job, params, uri=study["uri"]) == study["ids"][("full", 0.0025)]
    assert len(_runs(c, exp.experiment_id)) == before


def test_runs_table_and_cli(study, params, capsys):
    df = tracking.runs_table(params, uri=study["uri"])
    assert list(zip(df["variant"], df["lmbda"])) == [("full", 0.0025), ("full", 0.01), ("baseline", 0.0025),
                                                     ("baseline", 0.01)]
    assert df["bpp"].tolist() == [0.5] * 4 and df["loss"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert main(["runs", "--params", str(ROOT / "params.yaml"), "--uri", study["uri"], "--csv"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("variant,lmbda") and len(out.splitlines()) == 5
    # csalic track on an already logged job: same run, printed
    job = study["jobs"][("full", 0.01)]
    assert main(["track", "--params", str(ROOT / "params.yaml"), "--uri", study["uri"], str(job)]) == 0
    assert study["ids"][("full", 0.01)] in capsys.readouterr().out


def test_track_eval_logs_a_point_as_the_stages_do(study, params, capsys):
    """`csalic track --eval` takes the stages' one logging path: a codec's numbers on its λ run, an
    anchor's on its run under 'anchors' (it used to log a separate 'eval' run of its own layout)."""
    from csalic.provenance import sha256_of

    c = study["client"]
    data = ROOT / "tests" / "data" / "report" / "eval" / "demo_val"
    job = study["jobs"][("full", 0.0025)]
    s = json.loads((data / "csalic-full" / "lambda_0.0025" / "summary.json").read_text())
    s["provenance"].update(checkpoint_sha256=sha256_of(job / "final.pt"))
    s["provenance"]["codec"] = {"checkpoint": str(job / "final.pt")}  # what the evaluation records
    path = study["tmp"] / "eval_full" / "summary.json"
    path.parent.mkdir()
    path.write_text(json.dumps(s))
    anchor = data / "jpeg" / "quality_10" / "summary.json"
    args = ["track", "--params", str(ROOT / "params.yaml"), "--uri", study["uri"], "--eval", str(path), str(anchor)]
    assert main(args) == 0
    out = capsys.readouterr().out
    rid = study["ids"][("full", 0.0025)]
    assert f"{path}: run {rid}" in out  # the λ run of the job that wrote its checkpoint
    assert c.get_run(rid).data.metrics["eval/demo_val/map50_bbox"] == pytest.approx(s["map50_bbox"])
    exp = c.get_experiment_by_name("csalic-demo")
    arun = next(r for r in _runs(c, exp.experiment_id) if r.info.run_name == "jpeg quality=10")
    assert arun.data.tags["csalic.role"] == "anchor" and f"{anchor}: run {arun.info.run_id}" in out
    before = len(_runs(c, exp.experiment_id))
    assert main(args) == 0 and len(_runs(c, exp.experiment_id)) == before  # logged once
    assert len(tracking.runs_table(params, uri=study["uri"])) == 4  # evaluations are not training runs


def test_one_line_errors(tmp_path, params, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with pytest.raises(CsalicError, match="does not exist"):
        tracking.log_training_job(tmp_path / "missing", params, uri=uri)
    job = make_job(tmp_path / "job", "full", 0.001, None)
    (job / "final.pt").unlink()
    with pytest.raises(CsalicError, match="final.pt not found"):
        tracking.log_training_job(job, params, uri=uri)
    (job / "metrics.csv").write_text("step,loss\n5,abc\n")
    with pytest.raises(CsalicError, match="non-numeric"):
        tracking.log_training_job(job, params, uri=uri, log_checkpoint=False)
    assert main(["track", "--params", str(ROOT / "params.yaml"), "--uri", uri, str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("csalic: error:") and "nope" in err and len(err.splitlines()) == 1


def test_missing_manifest_is_a_note(tmp_path, params):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    rid = tracking.log_training_job(make_job(tmp_path / "job", "concat", 0.005, None), params, uri=uri)
    run = MlflowClient(uri).get_run(rid)
    assert run.inputs.dataset_inputs == [] and "manifest" in run.data.tags["mlflow.note.content"]


def test_a_failing_or_vanished_server_is_a_one_line_error_not_a_crash(tmp_path, monkeypatch):
    """An MLflow server that answers 500, or one that has gone away, used to raise MLflow's and requests'
    own exceptions through _retry and _new_run, past the drivers' `except CsalicError`, ending the loop."""
    import http.server
    import socket
    import threading

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow's own retries would take minutes
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")

    class Broken(http.server.BaseHTTPRequestHandler):
        def _fail(self):
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error_code": "INTERNAL_ERROR", "message": "the database is down"}')

        do_GET = do_POST = _fail

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Broken)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.socket() as sock:  # a port nothing listens on: the server that went away
        sock.bind(("127.0.0.1", 0))
        gone = sock.getsockname()[1]
    try:
        for port, says in ((server.server_address[1], "500 error"), (gone, "Connection refused")):
            client = MlflowClient(f"http://127.0.0.1:{port}")
            with pytest.raises(CsalicError, match="tracking store failed while reading") as e:
                tracking._retry(client.get_experiment_by_name, "csalic-demo", what="reading")
            assert says in str(e.value) and "\n" not in str(e.value)
            with pytest.raises(CsalicError, match="filling in the job run"):  # an upload inside a run's block
                with tracking._new_run(MlflowClient(f"sqlite:///{tmp_path}/ok.db"), "0", name="x", start_ms=0,
                                       tags={}, what="job"):
                    client.log_artifact("0" * 32, __file__)
    finally:
        server.shutdown()
    assert tracking.store_failure(ValueError("a bug"), "x") is None  # csalic's own errors stay tracebacks


def test_retry_backs_off_while_locked():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise sqlite3.OperationalError("database is locked")
        return "ok"

    assert tracking._retry(flaky, base_s=0.001) == "ok" and len(calls) == 3
    with pytest.raises(CsalicError, match="locked"):
        tracking._retry(lambda: (_ for _ in ()).throw(RuntimeError("(sqlite3.OperationalError) database is locked")),
                        attempts=3, base_s=0.001)
    with pytest.raises(ValueError):  # anything else is not retried
        tracking._retry(lambda: (_ for _ in ()).throw(ValueError("bad")), base_s=0.001)


DRIVER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from csalic.study import tracking
    from csalic.study.params import load
    job, uri, ready, go = sys.argv[1:5]
    params = load("params.yaml")
    Path(ready).touch()
    while not Path(go).exists():
        time.sleep(0.01)
    print(tracking.log_training_job(job, params, uri=uri))
""")


def test_concurrent_drivers_lose_nothing(tmp_path, params):
    """Four driver processes log four jobs to one fresh sqlite file at the same moment."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    manifest = tmp_path / "m.csv"
    manifest.write_text("file_name\na.png\n")
    jobs = [make_job(tmp_path / f"j{i}", v, lm, manifest, rows=200, seed=i)
            for i, (v, lm) in enumerate([("full", 0.001), ("full", 0.0025), ("no_casc", 0.001), ("no_casc", 0.0025)])]
    env = dict(os.environ, PYTHONPATH=str(ROOT), MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", DRIVER, str(j), uri, str(tmp_path / f"ready{i}"), str(go)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, j in enumerate(jobs)]
    deadline = time.monotonic() + 40
    while not all((tmp_path / f"ready{i}").exists() for i in range(4)) and time.monotonic() < deadline:
        time.sleep(0.02)
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]  # a hang guard: a loaded CI machine took over 50 s
    assert all(p.returncode == 0 for p in procs), [o[1][-800:] for o in outs]
    ids = [o[0].strip().splitlines()[-1] for o in outs]
    c = MlflowClient(uri)
    exp = c.get_experiment_by_name("csalic-demo")
    runs = _runs(c, exp.experiment_id)
    assert sum(r.data.tags.get("csalic.role") == "variant" for r in runs) == 2  # no duplicate parents
    assert sorted(r.info.run_id for r in runs if r.data.tags.get("csalic.role") == "job") == sorted(ids)
    for rid in ids:
        assert c.get_run(rid).info.status == "FINISHED"
        for key in ("loss", "bpp", "system/rss_gb"):
            assert [m.step for m in sorted(c.get_metric_history(rid, key), key=lambda m: m.step)] == \
                list(range(5, 1001, 5))


def test_check_store_ok_and_fast_failures(tmp_path):
    tracking.check_store(f"sqlite:///{tmp_path}/ok/mlflow.db")
    # A "folder" that is a file: unwritable even for root.
    (tmp_path / "file").write_text("x")
    t0 = time.monotonic()
    with pytest.raises(CsalicError, match="not writable") as e:
        tracking.check_store(f"sqlite:///{tmp_path}/file/mlflow.db")
    assert "\n" not in str(e.value)
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(CsalicError, match="unreachable") as e:
        tracking.check_store(f"http://127.0.0.1:{port}")
    assert "\n" not in str(e.value) and time.monotonic() - t0 < 5


def test_check_store_read_only_folder(tmp_path):
    """Checked in a child that cannot override file permissions, so it runs as root too (CI is root)."""
    from helpers import run_unprivileged

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    code = ("import sys\nfrom csalic.study.tracking import check_store\nfrom csalic.errors import CsalicError\n"
            "try:\n    check_store(sys.argv[1])\nexcept CsalicError as exc:\n    print(exc)\n    sys.exit(3)\n")
    try:
        proc = run_unprivileged(code, f"sqlite:///{ro}/mlflow.db")
    finally:
        ro.chmod(0o700)
    assert proc.returncode == 3, proc.stderr[-500:]
    assert "not writable" in proc.stdout and "\n" not in proc.stdout.strip()
    assert not (ro / "mlflow.db").exists()


def test_check_store_locked_database(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracking.check_store(uri)  # creates the tables
    holder = sqlite3.connect(tmp_path / "mlflow.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        t0 = time.monotonic()
        with pytest.raises(CsalicError, match="locked|did not answer") as e:
            tracking.check_store(uri, timeout_s=1)
        assert "\n" not in str(e.value) and time.monotonic() - t0 < 3
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_check_store_from_several_processes_on_a_fresh_database(tmp_path):
    """Parallel training rules each check the store before training: on a fresh sqlite file the first
    creates MLflow's tables while the others wait, instead of creating them again and failing."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    code = "import sys\nfrom csalic.study.tracking import check_store\ncheck_store(sys.argv[1])\n"
    procs = [subprocess.Popen([sys.executable, "-c", code, uri], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [o[1][-500:] for o in outs]
    assert MlflowClient(uri).search_experiments()  # the tables exist, with the default experiment


def test_track_results_logs_the_points_the_tables_use_and_no_stale_one(tmp_path, monkeypatch, capsys):
    """`csalic track --results` used to log every summary under eval/, also the folders of an earlier
    QP or λ list that the tables leave out on purpose, so MLflow's numbers could differ from the tables."""
    import shutil

    from helpers import micro_params, write_params

    from csalic.study import layout

    monkeypatch.chdir(tmp_path)
    params = micro_params()
    params["eval"]["datasets"] = ["demo_val"]
    params["anchors"]["points"] = ["none", "jpeg-q10", "jpeg-q30"]  # jpeg-q50 and -q70: an earlier list's
    params["tracking"]["uri"] = f"sqlite:///{tmp_path}/mlflow.db"
    write_params(tmp_path / "params.yaml", params)
    src = ROOT / "tests" / "data" / "report" / "eval" / "demo_val"
    for folder, point in [("none/uncompressed", "none")] + [(f"jpeg/quality_{q}", f"jpeg-q{q}") for q in (10, 30, 50, 70)]:
        shutil.copytree(src / folder, layout.eval_dir(params, "demo_val", point))
    # a corrupt summary of one of the study's points costs itself only: the others are logged, one line says which
    good = layout.eval_dir(params, "demo_val", "jpeg-q30") / "summary.json"
    kept = good.read_text()
    good.write_text(kept[: len(kept) // 2])
    assert main(["track", "--params", "params.yaml", "--results"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "mlflow.store.db" not in line]  # MLflow's own INFO
    assert len(err) == 1 and "1 result file(s) could not be logged" in err[0] and "jpeg-q30" in err[0], err
    client = MlflowClient(params["tracking"]["uri"])
    exp = client.get_experiment_by_name("csalic-micro")

    def anchors():
        return sorted(r.info.run_name for r in _runs(client, exp.experiment_id) if r.data.tags.get("csalic.role") == "anchor")

    assert anchors() == ["jpeg quality=10", "none uncompressed"]
    good.write_text(kept)  # repaired: the next run logs it, and only the study's points
    assert main(["track", "--params", "params.yaml", "--results"]) == 0
    assert anchors() == ["jpeg quality=10", "jpeg quality=30", "none uncompressed"]


def test_a_study_run_left_half_logged_is_redone_by_the_next_report(tmp_path, monkeypatch):
    """A report that died after creating the study run, before its artifacts, left a RUNNING run with
    the study's identity, which every later report took as done."""
    from csalic.evaluation.report import study_metrics, write_report
    from csalic.study import tracking_results as tr
    from csalic.study.params import params_hash

    monkeypatch.chdir(tmp_path)
    data = ROOT / "tests" / "data" / "report"
    study, written = write_report([data / "eval"], "results", published=data / "published.csv",
                                  complexity=[data / "complexity_demo_full.json"])
    params = load(ROOT / "params.yaml")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    exp_id = client.create_experiment(tracking.experiment_name(params))
    identity = {tracking.ROLE: "study", tracking.HASH: params_hash(params),
                "csalic.report_sha256": tr._sha([p for p in written if p.is_file()])}
    crashed = client.create_run(exp_id, run_name="study", tags=identity).info.run_id  # what the crash left
    rid = tr.log_report(params, study_metrics(study), "results", written, uri=uri)
    assert rid != crashed and client.get_run(crashed).info.lifecycle_stage == "deleted"
    assert client.get_run(rid).info.status == "FINISHED"
    assert {"tables/table1.md", "tables/table1.json"} <= {f.path for f in client.list_artifacts(rid, "tables")}
    assert tr.log_report(params, study_metrics(study), "results", written, uri=uri) == rid  # done once


def test_a_server_stopped_mid_evaluation_loses_no_result(tmp_path, monkeypatch, capsys):
    """A real `mlflow server` stopped between two evaluations of a study: the second point is evaluated
    and written all the same, one line says its logging failed, and `csalic track --results` on the
    server's store logs it beside the first (the driver used to end on MLflow's error)."""
    from helpers import MlflowServer, micro_params, write_params

    from csalic.study import layout, pipeline
    from csalic.study.eval_sweep import evaluate_point

    monkeypatch.chdir(tmp_path)
    params = micro_params()
    params["eval"]["datasets"] = ["demo_val"]
    params["anchors"]["points"] = ["none", "jpeg-q80"]
    params["task"]["demo_steps"] = 1
    pipeline.data(params)
    pipeline.task_net(params)
    store = f"sqlite:///{tmp_path}/mlflow.db"
    # artifacts go from the clients to a folder (not served by it), so the store works without the server
    server = MlflowServer(store, tmp_path, args=("--no-serve-artifacts", "--default-artifact-root",
                                                 (tmp_path / "artifacts").as_uri()))
    served = dict(params, tracking=dict(params["tracking"], uri=f"http://127.0.0.1:{server.port}"))
    try:  # MLflow's own timeout and retries here: the server builds its store on the first request (seconds)
        evaluate_point(served, "demo_val", anchor="none")
    finally:
        server.close()
    first = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning")]
    assert first == [], first  # the first point was logged while the server was up
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # retrying a closed port would take minutes
    out = evaluate_point(served, "demo_val", anchor="jpeg-q80")  # no exception: the server is gone
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning")]
    assert len(said) == 1 and "MLflow logging of demo_val jpeg-q80 failed" in said[0], said
    assert "csalic track --results" in said[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bpp"] > 0 and 0 <= summary["map50_bbox"] <= 1 and (out / "inputs.json").is_file()
    assert (layout.eval_dir(params, "demo_val", "none") / "summary.json").is_file()  # the first is untouched
    client = MlflowClient(store)
    exp = client.get_experiment_by_name("csalic-micro")

    def anchors():
        return sorted(r.info.run_name for r in _runs(client, exp.experiment_id)
                      if r.data.tags.get("csalic.role") == "anchor")

    assert anchors() == ["none uncompressed"]
    write_params(tmp_path / "params.yaml", dict(params, tracking=dict(params["tracking"], uri=store)))
    assert main(["track", "--params", "params.yaml", "--results"]) == 0
    assert anchors() == ["jpeg quality=80", "none uncompressed"]
    jpeg = next(r for r in _runs(client, exp.experiment_id) if r.info.run_name == "jpeg quality=80")
    assert jpeg.data.metrics["eval/demo_val/bpp"] == pytest.approx(summary["bpp"])
