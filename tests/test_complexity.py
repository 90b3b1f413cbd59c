"""csalic.evaluation.complexity and ``csalic complexity``: counts that are exact where they can be, latency with rANS."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torchvision.ops import DeformConv2d

import csalic.codec.coding
from csalic.cli import main
from csalic.evaluation.complexity import count_macs, count_params, measure_latency
from csalic.errors import CsalicError


@pytest.fixture(autouse=True)
def one_thread():
    """On a shared 2-core machine two spinning OpenMP threads make small convs ~50x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class OneConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class OneDeform(nn.Module):
    def __init__(self):
        super().__init__()
        self.deform = DeformConv2d(3, 6, 3, padding=1)

    def forward(self, x):
        return self.deform(x, torch.zeros(x.shape[0], 18, *x.shape[-2:]))


def test_params_total_is_the_sum_of_numel(demo_models):
    m = demo_models["full"]
    p = count_params(m)
    assert p["total"] == sum(t.numel() for t in m.parameters())
    assert sum(p["by_module"].values()) == p["total"]
    assert p["by_module"]["scsm"] == 0 and p["by_module"]["cgm"] > 0


def test_conv_macs_are_exact():
    r = count_macs(OneConv(), 16, 20)
    assert r["macs"] == 5 * 3 * 3 * 3 * 8 * 10
    assert r["flops"] == 2 * r["macs"]
    assert r["by_module"] == {"conv": r["macs"]}


def test_deform_conv_is_counted_analytically():
    r = count_macs(OneDeform(), 8, 8)
    gemm = 6 * 3 * 9 * 64
    sampling = 3 * 9 * 64 * 4  # 4 MACs per bilinearly sampled value
    assert r["macs"] == gemm + sampling
    assert r["analytic"] == {"torchvision.deform_conv2d": gemm + sampling}


def test_demo_macs_scale_with_area(demo_models):
    m = demo_models["full"]
    small, large = count_macs(m, 128, 128), count_macs(m, 256, 256)
    assert small["macs"] > 0
    assert large["macs"] / small["macs"] == pytest.approx(4.0, rel=0.10)
    assert not m.training  # the fixture's mode is left alone


def test_cgm_and_attention_are_in_the_count(demo_models):
    full = count_macs(demo_models["full"], 128, 128)
    no_casc = count_macs(demo_models["no_casc"], 128, 128)
    assert full["by_module"]["cgm"] > 0 and no_casc["by_module"].get("cgm", 0) == 0
    assert full["by_op"].get("torchvision.deform_conv2d", 0) > 0
    # window attention (g_a, g_s) runs SDPA; on CPU torch has no formula of its own for it
    assert any("attention" in op and n > 0 for op, n in full["by_op"].items())
    # the CGM costs more than the full-resolution chroma head it replaces
    assert full["macs"] > no_casc["macs"]


def test_count_macs_rejects_empty_images(demo_models):
    with pytest.raises(CsalicError):
        count_macs(demo_models["full"], 0, 64)


def test_latency_includes_entropy_coding(demo_models, monkeypatch):
    calls = {"encode": 0, "decode": 0}
    enc, dec = csalic.codec.coding.encode_tensor, csalic.codec.coding.decode_bytes

    def spy_enc(*a, **k):
        calls["encode"] += 1
        return enc(*a, **k)

    def spy_dec(*a, **k):
        calls["decode"] += 1
        return dec(*a, **k)

    monkeypatch.setattr(csalic.codec.coding, "encode_tensor", spy_enc)
    monkeypatch.setattr(csalic.codec.coding, "decode_bytes", spy_dec)
    r = measure_latency(demo_models["full"], 64, 128, "cpu", runs=2, warmup=1)
    assert calls == {"encode": 3, "decode": 3}
    assert r["encode_s"] > 0 and r["decode_s"] > 0
    assert len(r["encode_runs_s"]) == len(r["decode_runs_s"]) == 2
    assert r["bytes"] > 0 and r["device"] == "cpu" and r["device_name"] and r["threads"] >= 1


def test_cli_json(capsys):
    assert main(["complexity", "--size", "demo", "--height", "64", "--width", "128", "--json",
                 "--latency", "--runs", "1", "--warmup", "0", "--threads", "1"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    r = json.loads(out[0])
    for key in ("params", "params_m", "macs", "macs_g", "flops", "flops_g", "macs_by_module", "encode_s", "decode_s",
                        "device_name", "threads"):
        assert key in r
    assert r["flops"] == 2 * r["macs"] and r["encode_s"] > 0 and r["threads"] == 1
    from csalic.codec.model import build_model

    assert r["modules"] == [name for name, _ in build_model("demo", "full").named_children()]
    assert sorted(r["modules"]) == sorted(r["macs_by_module"]) == sorted(r["params_by_module"])


def test_cli_table(capsys):
    assert main(["complexity", "--size", "demo", "--height", "64", "--width", "64"]) == 0
    out = capsys.readouterr().out
    assert "MACs (G)" in out and "cgm" in out and "total" in out


@pytest.mark.parametrize("argv", [
    ["--size", "huge"],
    ["--size", "demo", "--variant", "nope"],
    ["--size", "demo", "--height", "0"],
    ["--size", "demo", "--width", "-64"],
    ["--size", "demo", "--latency", "--runs", "0"],
    ["--size", "demo", "--latency", "--device", "tpu"],
    ["--size", "demo", "--threads", "0"],
])
def test_cli_bad_arguments_are_one_line(argv, capsys):
    assert main(["complexity", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("csalic: error:")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cli_cuda_unavailable_is_one_line(capsys):
    assert main(["complexity", "--size", "demo", "--latency", "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cuda" in err[0].lower()
