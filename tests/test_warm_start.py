"""The demo task network's committed warm start: current for the demo, honest about when it is not."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from csalic.tasks import warm_start

from helpers import REPO, base_params

WARM = REPO / "pretrained" / "demo_task_net"


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    """The demo study's own training and validation sets, generated as its data stage does."""
    from csalic.data.demo import generate_demo

    d = base_params()["data"]["demo"]
    root = tmp_path_factory.mktemp("demo") / "data"
    generate_demo(root, n_train=d["train"], n_val=d["val"], size=(d["width"], d["height"]), seed=base_params()["seed"])
    return root


def test_the_demo_installs_the_committed_network(demo_data):
    """params.yaml points at the warm start and nothing it was trained at differs: the demo skips training."""
    params = base_params()
    assert Path(params["task"]["warm_start"]).resolve() == WARM
    assert warm_start.mismatch(params, WARM, demo_data) is None
    prov = warm_start.read_provenance(WARM)
    assert prov["settings"]["task.demo_steps"] == params["task"]["demo_steps"]
    assert prov["training"]["steps"] == params["task"]["demo_steps"]
    assert "csalic pretrain-task-net" in prov["command"] and "csalic pretrain-task-net" in (WARM / "README.md").read_text()


@pytest.mark.slow
def test_the_committed_weights_reproduce_their_recorded_map(demo_data):
    from csalic.tasks import load_task_network
    from csalic.tasks.demo_net import evaluate_map50

    recorded = warm_start.read_provenance(WARM)["uncompressed_val"]
    net = load_task_network("demo_mask_rcnn", WARM / warm_start.WEIGHTS)
    got = evaluate_map50(net, demo_data, split="val", progress=False)
    assert got["images"] == recorded["images"]
    # same machine: the same numbers; another machine's floats move a few detections at most
    assert got["map50_bbox"] == pytest.approx(recorded["map50_bbox"], abs=0.02)
    assert got["map50_segm"] == pytest.approx(recorded["map50_segm"], abs=0.02)
    assert recorded["map50_bbox"] > 0.2  # a detector worth measuring codecs with


@pytest.mark.parametrize("change, says", [
    (lambda p: p["task"].update(demo_steps=151), "task.demo_steps is 151 here, 150 in"),
    (lambda p: p["task"].update(demo_threads=1), "task.demo_threads is 1 here, 2 in"),
    (lambda p: p.update(seed=1), "seed is 1 here, 0 in"),
])
def test_a_changed_setting_is_named(demo_data, change, says):
    params = copy.deepcopy(base_params())
    change(params)
    assert says in warm_start.mismatch(params, WARM, demo_data)


def test_other_data_weights_or_folders_are_refused(demo_data, tmp_path):
    params = base_params()
    other = tmp_path / "data"
    shutil.copytree(demo_data, other)
    img = sorted((other / "train").rglob("*.png"))[0]
    img.write_bytes(img.read_bytes() + b"\0")
    assert "training data differ" in warm_start.mismatch(params, WARM, other)
    assert warm_start.mismatch(params, tmp_path / "absent", demo_data) == f"no warm start at {tmp_path / 'absent'}"
    bad = tmp_path / "warm"
    shutil.copytree(WARM, bad)
    with open(bad / warm_start.WEIGHTS, "r+b") as fh:
        fh.seek(1000)
        fh.write(b"\xff")
    assert "does not match the sha256" in warm_start.mismatch(params, bad, demo_data)
    (bad / warm_start.PROVENANCE).write_text(json.dumps({"format": "something else"}))
    with pytest.raises(Exception, match="not a task-network warm start"):
        warm_start.mismatch(params, bad, demo_data)


def test_install_copies_the_weights_and_their_numbers(tmp_path):
    from csalic.tasks.demo_net import metrics_path

    out = tmp_path / "task_net" / "task_net.pt"
    metrics = warm_start.install(WARM, out)
    assert out.read_bytes() == (WARM / warm_start.WEIGHTS).read_bytes()
    recorded = json.loads(metrics_path(out).read_text())
    prov = warm_start.read_provenance(WARM)
    assert recorded == metrics and recorded["map50_bbox"] == prov["uncompressed_val"]["map50_bbox"]
    assert recorded["warm_start"] == str(WARM)
