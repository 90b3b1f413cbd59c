"""csalic stage evaluate over every point (the DVC route's evaluation stage): which points are current, and which results the report reads.

The stage itself runs end to end, on Ray, in tests/test_workflow.py's DVC tests."""

import json

import pytest
from helpers import micro_params

from csalic.study import layout
from csalic.errors import CsalicError
from csalic.study.eval_sweep import evaluate_point, evaluate_points
from csalic.study.points import common_inputs, is_current, point_inputs, study_points, write_inputs
from csalic.study.pipeline import study_summaries


@pytest.fixture
def study(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = micro_params()
    params["anchors"]["points"] = ["none", "jpeg-q80"]
    params["eval"]["datasets"] = ["demo_val"]
    images, ann = layout.dataset(params, "demo_val")
    ann.parent.mkdir(parents=True)
    ann.write_text('{"images": []}')
    net = layout.task_net(params)
    net.parent.mkdir(parents=True)
    net.write_bytes(b"weights")
    for v in params["variants"]:
        for lm in params["lambdas"]:
            d = layout.job_dir(params, v, lm)
            d.mkdir(parents=True)
            (d / "final.pt").write_bytes(f"{v}{lm}".encode())
    return params


def _finish(params, name, inputs):
    out = layout.eval_dir(params, "demo_val", name)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text("{}")
    write_inputs(out, inputs)
    return out


def test_points_are_every_codec_then_every_anchor(study):
    names = [n for n, _ in study_points(study)]
    assert names == ["csalic-full-lambda_0.001", "csalic-full-lambda_0.01", "csalic-baseline-lambda_0.001",
                     "csalic-baseline-lambda_0.01", "none", "jpeg-q80"]


def test_a_point_is_current_only_with_the_same_inputs_and_a_summary(study):
    common = common_inputs(study, "demo_val")
    kw = {"variant": "full", "lmbda": 0.001}
    inputs = point_inputs(study, common, **kw)
    out = _finish(study, "csalic-full-lambda_0.001", inputs)
    assert is_current(out, inputs)
    # the checkpoint retrained: stale
    (layout.job_dir(study, "full", 0.001) / "final.pt").write_bytes(b"retrained")
    assert not is_current(out, point_inputs(study, common, **kw))
    # evaluation settings changed: stale
    none = _finish(study, "none", point_inputs(study, common, anchor="none"))
    assert is_current(none, point_inputs(study, common_inputs(study, "demo_val"), anchor="none"))
    study["eval"]["max_images"] = 1
    assert not is_current(none, point_inputs(study, common_inputs(study, "demo_val"), anchor="none"))
    # killed between summary.json and inputs.json, or the summary lost: stale
    (out / "inputs.json").unlink()
    assert not is_current(out, inputs)
    write_inputs(out, inputs)
    (out / "summary.json").unlink()
    assert not is_current(out, inputs)
    # the task network's weights are part of every point's inputs
    other = common_inputs(study, "demo_val")
    layout.task_net(study).write_bytes(b"other weights")
    assert common_inputs(study, "demo_val")["task_weights_sha256"] != other["task_weights_sha256"]


def test_vvc_points_depend_on_the_encoder_and_others_do_not(study):
    common = common_inputs(study, "demo_val")
    assert "vvc_encoder" in point_inputs(study, common, anchor="vvc-qp42")
    assert "vvc_encoder" not in point_inputs(study, common, anchor="jpeg-q80")


def test_the_report_reads_the_studys_points_only(study):
    common = common_inputs(study, "demo_val")
    for name, kw in study_points(study):
        _finish(study, name, point_inputs(study, common, **kw))
    stale = _finish(study, "csalic-full-lambda_0.5", {})  # left by an earlier λ list
    files = study_summaries(study)
    assert len(files) == 6 and stale / "summary.json" not in files and files == sorted(files)
    (layout.eval_dir(study, "demo_val", "jpeg-q80") / "summary.json").unlink()
    with pytest.raises(CsalicError, match="1 point.s. not evaluated yet, e.g. .*jpeg-q80"):
        study_summaries(study)


def test_eval_points_names_what_it_cannot_evaluate(study):
    with pytest.raises(CsalicError, match="dataset 'coco2017_val' is not in eval.datasets"):
        evaluate_points(study, ["coco2017_val"], track=False)
    (layout.job_dir(study, "baseline", 0.01) / "final.pt").unlink()
    with pytest.raises(CsalicError, match=r"trained codec\(s\) not found: csalic-baseline-lambda_0.01: run their training"):
        evaluate_points(study, ["demo_val"], track=False)


def test_every_point_already_current_needs_no_ray(study, capsys):
    common = common_inputs(study, "demo_val")
    for name, kw in study_points(study):
        _finish(study, name, point_inputs(study, common, **kw))
    outs = evaluate_points(study, ["demo_val"], track=False)
    assert len(outs) == 6
    assert capsys.readouterr().out.count("evaluated already, with the same inputs") == 6
    assert json.loads((outs[0] / "inputs.json").read_text())["variant"] == "full"


def test_an_evaluation_computes_on_the_threads_its_task_reserved(tmp_path, monkeypatch):
    """The evaluation task sets torch's threads to the CPUs Ray gave it; evaluate_point keeps them
    (it used to reset them to 1) and the summary records them beside the coding times."""
    import torch

    from csalic.study import pipeline

    monkeypatch.chdir(tmp_path)
    params = micro_params()
    params["eval"]["datasets"] = ["demo_val"]
    params["task"]["demo_steps"] = 1
    pipeline.data(params)
    pipeline.task_net(params)
    before = torch.get_num_threads()
    try:
        for threads in (2, 1):
            torch.set_num_threads(threads)
            out = evaluate_point(params, "demo_val", anchor="jpeg-q80", track=False)
            assert torch.get_num_threads() == threads
            assert json.loads((out / "summary.json").read_text())["provenance"]["threads"] == threads
        out = evaluate_point(params, "demo_val", anchor="jpeg-q80", track=False, threads=2)
        assert json.loads((out / "summary.json").read_text())["provenance"]["threads"] == 2
    finally:
        torch.set_num_threads(before)
