"""Training: the loss of Eq. 4, the learning-rate schedule, and kill-and-resume equality."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from csalic.study import layout
from csalic.codec.losses import PIXEL_SCALE, RateDistortionLoss, feature_mse
from csalic.study.train import lr_at
from helpers import micro_params, write_params


class PoolingFeatures:
    """A stand-in task network with known features (2x and 4x average pools), for checking the arithmetic."""

    def features(self, x):
        return [torch.nn.functional.avg_pool2d(x, 2), torch.nn.functional.avg_pool2d(x, 4)]


def test_loss_terms_match_hand_computation():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16)
    x_hat = x + 0.1 * torch.randn_like(x)
    lik = {"y": torch.full((2, 4, 1, 1), 0.5), "z": torch.full((2, 2, 1, 1), 0.25)}
    crit = RateDistortionLoss(0.01, PoolingFeatures(), feature_weight=1.0)
    out = crit({"x_hat": x_hat, "likelihoods": lik}, x)
    bits = 2 * 4 * 1.0 + 2 * 2 * 2.0  # -log2(0.5) per y symbol, -log2(0.25) per z symbol
    assert out["bpp"].item() == pytest.approx(bits / (2 * 16 * 16))
    mse = ((x_hat - x) ** 2).mean().item()
    assert out["d_i"].item() == pytest.approx(PIXEL_SCALE * mse, rel=1e-5)
    f1 = ((torch.nn.functional.avg_pool2d(x_hat, 2) - torch.nn.functional.avg_pool2d(x, 2)) ** 2).mean()
    f2 = ((torch.nn.functional.avg_pool2d(x_hat, 4) - torch.nn.functional.avg_pool2d(x, 4)) ** 2).mean()
    d_f = PIXEL_SCALE * (f1 + f2).item() / 2
    assert out["d_f"].item() == pytest.approx(d_f, rel=1e-5)
    assert out["loss"].item() == pytest.approx(bits / 512 + 0.01 * (PIXEL_SCALE * mse + d_f), rel=1e-5)
    without = RateDistortionLoss(0.01)({"x_hat": x_hat, "likelihoods": lik}, x)
    assert without["d_f"].item() == 0.0


def test_feature_loss_flows_to_the_reconstruction_only():
    x = torch.rand(1, 3, 8, 8)
    x_hat = torch.rand(1, 3, 8, 8, requires_grad=True)
    out = RateDistortionLoss(0.01, PoolingFeatures())({"x_hat": x_hat, "likelihoods": {"y": torch.ones(1)}}, x)
    out["d_f"].backward()
    assert x_hat.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        feature_mse([], [])
    with pytest.raises(ValueError):
        RateDistortionLoss(0.0)


# ----------------------------------------------------------------------------- D_f with real task networks

def _random_task_net(name: str, path: Path) -> Path:
    """A real task network with random weights, saved where `csalic train` can load it (no download)."""
    from csalic.tasks import load_task_network

    torch.manual_seed(0)
    net = load_task_network(name, allow_random=True, num_classes=6 if name == "demo_mask_rcnn" else None)
    if name == "demo_mask_rcnn":
        from csalic.tasks.demo_net import save_demo_task_network

        save_demo_task_network(net, path)
    else:
        torch.save(net.model.state_dict(), path)
    return path


def test_bf16_autocast_codec_feeds_a_float32_task_network():
    """On CUDA the codec runs under bf16 autocast; x̂ must still reach the frozen fp32 task network, and the
    rate stays float32 (this failed with 'Input type (c10::BFloat16) and bias type (float)')."""
    from csalic.codec.model import build_model
    from csalic.tasks import load_task_network

    torch.manual_seed(0)
    model = build_model("demo", "full").train()
    task = load_task_network("demo_mask_rcnn", allow_random=True)
    crit = RateDistortionLoss(0.01, task, feature_weight=0.5)
    x = torch.rand(2, 3, 64, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out["x_hat"].dtype == torch.bfloat16  # the codec did run in bf16
    assert all(t.dtype == torch.float32 for t in out["likelihoods"].values())
    terms = crit(out, x)  # outside autocast, as train_job computes it
    assert all(t.dtype == torch.float32 for t in terms.values()) and float(terms["d_f"]) > 0
    with torch.autocast("cpu", dtype=torch.bfloat16):  # and inside it
        assert crit(model(x), x)["loss"].dtype == torch.float32
    terms["d_f"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.g_s.parameters())
    assert all(p.grad is None for p in task.model.parameters())
    # float32 rate: the same bits as the model computes without autocast, to float32 accuracy
    model.eval()
    with torch.no_grad():
        ref = RateDistortionLoss(0.01)(model(x), x)["bpp"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            amp = RateDistortionLoss(0.01)(model(x), x)["bpp"]
    assert abs(float(amp) - float(ref)) / float(ref) < 0.05


@pytest.mark.slow
@pytest.mark.parametrize("task_name", ["demo_mask_rcnn", "tv_faster_rcnn_r50_fpn"])
def test_training_with_d_f_through_the_cli(study, tmp_path, task_name):
    """`csalic train` with feature_weight > 0: D_f is logged, it trains the codec and not the task network,
    and a job extended from its resume point ends bit-identical to one run straight through."""
    from csalic.codec.losses import RateDistortionLoss as Loss
    from csalic.codec.model import build_model
    from csalic.tasks import load_task_network

    cwd, params = study
    weights = _random_task_net(task_name, tmp_path / "task.pt")
    p = dict(params, task=dict(params["task"], name=task_name, weights=str(weights)),
             train=dict(params["train"], feature_weight=0.5, max_steps=4))
    pfile = write_params(tmp_path / "df.yaml", p)
    common = ["train", "--params", pfile, "--variant", "baseline", "--lmbda", 0.01, "--no-track", "--quiet"]
    ref = _csalic(cwd, *common, "--out", tmp_path / "ref")
    assert ref.wait(600) == 0, ref.stderr.read()
    rows = (tmp_path / "ref" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    d_f = [float(r.split(",")[header.index("d_f")]) for r in rows[1:]]
    assert len(d_f) == 4 and all(v > 0 for v in d_f)
    summary = json.loads((tmp_path / "ref" / "summary.json").read_text())
    assert summary["task_network"]["name"] == task_name and summary["final"]["d_f"] > 0
    assert summary["job_params"]["task_name"] == task_name

    half = _csalic(cwd, *common, "--out", tmp_path / "resumed", "--max-steps", 2)
    assert half.wait(600) == 0, half.stderr.read()
    rest = _csalic(cwd, *common, "--out", tmp_path / "resumed")
    assert rest.wait(600) == 0, rest.stderr.read()
    a, b = _weights(tmp_path / "ref" / "final.pt"), _weights(tmp_path / "resumed" / "final.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)

    # the gradient of D_f alone reaches the codec and never the frozen task network
    torch.manual_seed(0)
    model = build_model("demo", "baseline").train()
    net = load_task_network(task_name, weights)
    out = model(torch.rand(2, 3, 64, 64))
    Loss(0.01, net, 0.5)(out, torch.rand(2, 3, 64, 64))["d_f"].backward()
    assert any(q.grad is not None and q.grad.abs().sum() > 0 for q in model.luma_head.parameters())
    assert all(q.grad is None and not q.requires_grad for q in net.model.parameters())


def test_paper_learning_rate_schedule():
    rates = [lr_at(e, 1e-4, 50, 30, 5e-6) for e in range(200)]
    assert rates[0] == rates[49] == 1e-4
    assert rates[50] == 5e-5 and rates[80] == 2.5e-5 and rates[110] == 1.25e-5 and rates[140] == 6.25e-6
    assert rates[170] == 3.125e-6 and rates[199] == 3.125e-6  # the first value below 5e-6, then held
    assert all(a >= b for a, b in zip(rates, rates[1:]))


def _csalic(cwd, *args, **kw):
    return subprocess.Popen([sys.executable, "-m", "csalic", *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("study")
    params = micro_params(max_steps=8, checkpoint_every=2)
    write_params(cwd / "params.yaml", params)
    proc = _csalic(cwd, "demo-data", "--out", layout.demo_data(params), "--train", 8, "--val", 2)
    assert proc.wait(120) == 0, proc.stderr.read()
    return cwd, params


def _weights(path):
    return torch.load(path, weights_only=True)["state_dict"]


@pytest.mark.slow
def test_killed_job_resumes_to_the_same_result(study):
    cwd, params = study
    common = ["train", "--variant", "full", "--lmbda", 0.01, "--no-track", "--quiet"]
    ref = _csalic(cwd, *common, "--out", "ref")
    assert ref.wait(300) == 0, ref.stderr.read()

    victim = _csalic(cwd, *common, "--out", "killed")
    last = cwd / "killed" / "last.pt"
    deadline = time.time() + 300
    while not last.exists() and time.time() < deadline and victim.poll() is None:
        time.sleep(0.05)
    assert victim.poll() is None, "job finished before it could be killed"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert not (cwd / "killed" / "final.pt").exists()
    step_at_kill = torch.load(last, weights_only=True)["step"]
    assert 2 <= step_at_kill < 8

    resumed = _csalic(cwd, *common, "--out", "killed")
    assert resumed.wait(300) == 0, resumed.stderr.read()
    a, b = _weights(cwd / "ref" / "final.pt"), _weights(cwd / "killed" / "final.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert (cwd / "ref" / "metrics.csv").read_text().split("\n")[0] == (cwd / "killed" / "metrics.csv").read_text().split("\n")[0]
    rows_a = [r.split(",")[:9] for r in (cwd / "ref" / "metrics.csv").read_text().splitlines()]
    rows_b = [r.split(",")[:9] for r in (cwd / "killed" / "metrics.csv").read_text().splitlines()]
    assert rows_a == rows_b  # same per-step losses, not just the same end point

    again = _csalic(cwd, *common, "--out", "killed")
    assert again.wait(120) == 0
    assert "8 steps" in again.stdout.read()  # a finished job is not trained again


def test_final_checkpoint_compresses_directly(study):
    cwd, params = study
    proc = _csalic(cwd, "train", "--variant", "baseline", "--lmbda", 0.001, "--no-track", "--quiet",
                   "--max-steps", 2, "--out", "short")
    assert proc.wait(300) == 0, proc.stderr.read()
    metrics = (cwd / "short" / "metrics.csv").read_text().splitlines()
    assert metrics[0].startswith("step,epoch,lr,loss,bpp") and len(metrics) == 3
    img = next((cwd / layout.demo_data(params) / "val").glob("*.png"))
    c = _csalic(cwd, "compress", img, "-c", "short/final.pt", "-o", "x.csa")
    assert c.wait(120) == 0, c.stderr.read()
    d = _csalic(cwd, "decompress", "x.csa", "-c", "short/final.pt", "-o", "x.png")
    assert d.wait(120) == 0, d.stderr.read()
    assert (cwd / "x.png").stat().st_size > 0


def test_bad_training_inputs_are_one_line_errors(study, tmp_path):
    cwd, params = study
    proc = _csalic(cwd, "train", "--variant", "full", "--lmbda", -1, "--no-track")
    assert proc.wait(60) == 2 and "λ must be positive" in proc.stderr.read()
    bad = dict(params)
    bad["train"] = dict(params["train"], batch_size=0)
    write_params(tmp_path / "bad.yaml", bad)
    proc = _csalic(cwd, "train", "--variant", "full", "--lmbda", 0.01, "--params", tmp_path / "bad.yaml", "--no-track")
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 2 and "train/batch_size" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- train.init: warmup

def test_warmup_plans_every_lambda_from_one_warmup_of_its_variant():
    from csalic.errors import CsalicError
    from csalic.study.jobs import warmup_spec
    from csalic.study.sweep import plan
    from csalic.study.train import spec_from_params

    params = micro_params(init="warmup", finetune_steps=3, warmup_lambda=0.003, feature_weight=0.5)
    params["lambdas"] = [0.01, 0.001, 0.004]
    warm = warmup_spec(params, "full")
    assert warm.out_dir == str(layout.warmup_dir(params, "full")) and warm.stage == "warmup"
    assert warm.lmbda == 0.003 and warm.train["max_steps"] == 6
    assert warm.train["feature_weight"] == 0.0 and warm.task_name is None  # R + λ_w·D_i: no task network
    jobs = [spec_from_params(params, "full", x) for x in params["lambdas"]]
    for job in jobs:
        assert job.init_from == str(Path(warm.out_dir) / "final.pt") and job.init_job_hash == warm.job_hash()
        assert job.train["max_steps"] == 3 and job.train["feature_weight"] == 0.5 and job.stage == "train"
    # the warm-up does not depend on the λ list, the fine-tuning length or D_f's weight ...
    for change in ({"lambdas": [0.002]}, {"train": dict(params["train"], finetune_steps=9, feature_weight=1.0)}):
        assert warmup_spec(dict(params, **change), "full").job_hash() == warm.job_hash()
    # adding seeds to the study keeps every job of its own seed (and the warm-up); another seed is another job
    seeded = dict(params, train=dict(params["train"], seeds=[params["seed"], 5]))
    assert warmup_spec(seeded, "full").job_hash() == warm.job_hash()
    assert [spec_from_params(seeded, "full", x).job_hash() for x in params["lambdas"]] == [j.job_hash() for j in jobs]
    assert spec_from_params(seeded, "full", 0.01, seed=5).job_hash() != jobs[0].job_hash()
    # ... but a changed warm-up invalidates every λ fine-tuned from it
    other = dict(params, train=dict(params["train"], warmup_lambda=0.005))
    assert all(spec_from_params(other, "full", x).job_hash() != j.job_hash() for x, j in zip(params["lambdas"], jobs))
    # the sweep plans each variant's warm-up before its λ, once
    planned = plan(params, ["full", "baseline"], [0.01, 0.001])
    assert [(s.variant, s.stage, s.lmbda) for s in planned] == [
        ("full", "warmup", 0.003), ("full", "train", 0.01), ("full", "train", 0.001),
        ("baseline", "warmup", 0.003), ("baseline", "train", 0.01), ("baseline", "train", 0.001)]
    assert [s.stage for s in plan(params, ["full"], warmup_only=True)] == ["warmup"]
    scratch = micro_params()
    assert all(spec_from_params(scratch, "full", x).init_from is None for x in scratch["lambdas"])
    with pytest.raises(CsalicError, match="no warm-up"):
        plan(scratch, ["full"], warmup_only=True)
    with pytest.raises(CsalicError, match="warmup_lambda"):
        warmup_spec(dict(params, train=dict(params["train"], warmup_lambda=None)), "full")


def test_fine_tuned_job_starts_from_its_warmup_and_refuses_without_it(study, tmp_path, monkeypatch):
    from csalic.errors import CsalicError
    from csalic.study.jobs import warmup_spec
    from csalic.study.train import spec_from_params, train_job

    cwd, params = study
    params = dict(params, train=dict(params["train"], init="warmup", finetune_steps=2, max_steps=2, lr=1e-20,
                                     warmup_lambda=0.003))
    monkeypatch.chdir(cwd)
    child = spec_from_params(params, "baseline", 0.01, out_dir=str(tmp_path / "child"))
    with pytest.raises(CsalicError, match="has not finished"):
        train_job(child, progress=False)
    parent = warmup_spec(params, "baseline")
    summary = train_job(parent, progress=False)
    assert summary["stage"] == "warmup" and summary["task_network"] is None
    train_job(child, progress=False)
    a, b = _weights(Path(parent.out_dir) / "final.pt"), _weights(tmp_path / "child" / "final.pt")
    moved = [k for k in a if a[k].is_floating_point() and not k.endswith("quantiles")  # (aux_lr moves those)
             and not torch.allclose(a[k], b[k], atol=1e-6)]
    assert moved == [] and len(a) > 50  # with a vanishing learning rate the child is its parent's weights
    # the warm-up retrained with other settings: the child refuses a start it was not planned from
    other = spec_from_params(dict(params, seed=1), "baseline", 0.01, out_dir=str(tmp_path / "child2"))
    with pytest.raises(CsalicError, match="other settings"):
        train_job(other, progress=False)


def test_a_resume_point_from_other_settings_is_set_aside_not_lost(study, tmp_path, monkeypatch):
    from csalic.study.train import spec_from_params, train_job

    cwd, params = study
    monkeypatch.chdir(cwd)
    first = spec_from_params(params, "baseline", 0.001, out_dir=str(tmp_path / "job"), max_steps=2)
    train_job(first, progress=False)
    (tmp_path / "job" / "summary.json").unlink()  # as if killed before the end
    before = (tmp_path / "job" / "last.pt").read_bytes()
    changed = spec_from_params(dict(params, train=dict(params["train"], lr=5e-4)), "baseline", 0.001,
                               out_dir=str(tmp_path / "job"), max_steps=2)
    summary = train_job(changed, progress=False)
    assert summary["job_hash"] == changed.job_hash() and summary["steps"] == 2
    assert (tmp_path / "job" / "last.stale.pt").read_bytes() == before


# ----------------------------------------------------------------------------- train.init: pretrained

def test_pretrain_exports_warm_starts_that_each_lambda_fine_tunes(study, tmp_path, monkeypatch):
    """csalic pretrain --export-only: float16 parameters, provenance, a README; λ jobs start from them."""
    from csalic.codec.checkpoint import load_codec, read_record
    from csalic.errors import CsalicError
    from csalic.study.jobs import warmup_spec
    from csalic.study.train import spec_from_params, train_job

    cwd, params = study
    monkeypatch.chdir(cwd)
    warm = dict(params, study="pre", variants=["baseline"],
                train=dict(params["train"], init="warmup", max_steps=3, warmup_lambda=0.003))
    pre_file = write_params(cwd / "pretrain.yaml", warm)
    out = cwd / "pretrained" / "mini"
    proc = _csalic(cwd, "pretrain", "--params", pre_file, "--out", out, "--export-only")
    assert proc.wait(120) == 2 and "has not finished" in proc.stderr.read()
    from csalic.data.demo import generate_demo

    generate_demo(layout.demo_data(warm), n_train=8, n_val=2, size=(288, 288))
    train_job(warmup_spec(warm, "baseline"), progress=False)
    proc = _csalic(cwd, "pretrain", "--params", pre_file, "--out", out, "--export-only")
    assert proc.wait(120) == 0, proc.stderr.read()

    record = read_record(out / "baseline.pt")
    source = _weights(layout.warmup_dir(warm, "baseline") / "final.pt")
    halves = [k for k, v in record["state_dict"].items() if v.dtype == torch.float16]
    assert len(halves) > 50 and record["entropy_updated"] is False
    for k in halves:  # parameters rounded to float16, nothing else changed
        assert torch.equal(record["state_dict"][k], source[k].half()), k
    assert record["meta"]["pretrained"]["steps"] == 3 and record["meta"]["pretrained"]["study"] == "pre"
    provenance = json.loads((out / "provenance.json").read_text())["variants"]["baseline"]
    assert provenance["params_hash"] and provenance["git_commit"] and provenance["sha256"]
    readme = (out / "README.md").read_text()
    assert f"csalic pretrain --params {pre_file}" in readme and "| baseline | 3 |" in readme
    model, _ = load_codec(out / "baseline.pt", size="demo", variant="baseline")  # usable as a codec
    assert model.entropy.gaussian_conditional._offset.numel() > 0

    study_params = dict(params, train=dict(params["train"], init="pretrained", pretrained=str(out),
                                           finetune_steps=2, lr=1e-20))
    job = spec_from_params(study_params, "baseline", 0.01, out_dir=str(tmp_path / "tuned"))
    assert job.init_from == str(out / "baseline.pt") and job.init_job_hash == f"sha256:{provenance['sha256']}"
    assert job.train["max_steps"] == 2
    train_job(job, progress=False)
    tuned = _weights(tmp_path / "tuned" / "final.pt")
    moved = [k for k in halves if not k.endswith("quantiles")
             and not torch.allclose(tuned[k], source[k].half().float(), atol=1e-6)]
    assert moved == []  # a vanishing learning rate keeps the warm start's weights

    # a rebuilt warm start is another job; one changed after planning is refused; a missing one is one line
    other = dict(params, variants=["full"], train=study_params["train"])
    with pytest.raises(CsalicError, match="warm-start checkpoint .*full.pt not found.*csalic pretrain"):
        spec_from_params(other, "full", 0.01)
    (out / "baseline.pt").write_bytes((out / "baseline.pt").read_bytes() + b"\0")
    assert spec_from_params(study_params, "baseline", 0.01).job_hash() != job.job_hash()
    stale = spec_from_params(study_params, "baseline", 0.01, out_dir=str(tmp_path / "stale"))
    (out / "baseline.pt").write_bytes((out / "baseline.pt").read_bytes()[:-1])
    with pytest.raises(CsalicError, match="changed after this job was planned"):
        train_job(stale, progress=False)
