"""Learned comparators: a compressai model or a user's own, coded into real ``.csa`` files, checkpointed,
and refused in one line when the study names something that cannot be one."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from csalic.codec.checkpoint import load_codec, save_codec
from csalic.codec.coding import decode_bytes, encode_tensor
from csalic.codec.learned import LearnedCodec, check_learned
from csalic.errors import CheckpointError, CsalicError
from csalic.study import layout
from csalic.study.params import validate
from helpers import REPO, micro_params, write_params

TINY = {"codec": "examples.tiny_codec:build", "args": {"N": 8, "M": 8}}


@pytest.fixture(scope="module")
def mbt():
    torch.manual_seed(0)
    m = LearnedCodec("mbt", "mbt2018-mean", {"N": 16, "M": 16}).eval()
    m.update(force=True)
    return m


def test_a_compressai_model_codes_real_files_that_decode_to_its_reconstruction(mbt):
    x = torch.rand(1, 3, 70, 90)  # not a multiple of the model's 64: padded, then cropped back
    enc = encode_tensor(mbt, x)
    assert enc.bpp == len(enc.data) * 8 / (70 * 90)
    y = decode_bytes(mbt, enc.data)
    assert y.shape == (1, 3, 70, 90)
    with torch.no_grad():
        ref = mbt(x)["x_hat"].clamp(0, 1)
    assert torch.allclose(y, ref, atol=1e-5)  # what was trained is what is decoded
    # y and z strings, and the latent shape compressai's decompress needs
    assert mbt.num_strings == 3
    # a file of other weights is refused: the fingerprint covers them
    other = LearnedCodec("mbt", "mbt2018-mean", {"N": 16, "M": 16}).eval()
    other.update(force=True)
    with pytest.raises(CsalicError, match="fingerprint|other"):
        decode_bytes(other, enc.data)


def test_a_user_codec_round_trips_through_its_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # examples/ importable from the study's folder
    torch.manual_seed(0)
    model = LearnedCodec("tiny", TINY["codec"], TINY["args"]).eval()
    assert model.pad_multiple == 8  # the model's own stride, not the hyperprior's 64
    save_codec(tmp_path / "tiny.pt", model, 0.01)
    # csalic never imports a module because a file names it
    with pytest.raises(CheckpointError, match="import path"):
        load_codec(tmp_path / "tiny.pt")
    loaded, info = load_codec(tmp_path / "tiny.pt", learned={"tiny": TINY})
    assert info["config"] == {"learned": TINY} and info["lmbda"] == 0.01
    assert loaded.fingerprint() == model.fingerprint()
    x = torch.rand(1, 3, 21, 34)
    data = encode_tensor(model, x).data
    assert torch.equal(decode_bytes(loaded, data), decode_bytes(model, data))


BAD = '''
from compressai.models import CompressionModel
from torch import nn


def not_a_codec(**_):
    return nn.Conv2d(3, 3, 1)


class NoBitstream(CompressionModel):
    def forward(self, x):
        return {"x_hat": x, "likelihoods": {}}


def no_bitstream(**_):
    return NoBitstream()
'''


@pytest.mark.parametrize("codec, message", [
    ("nowhere.codec:build", "module 'nowhere.codec' does not import (ModuleNotFoundError"),
    ("badcodecs:missing", "has no callable 'missing'"),
    ("badcodecs:not_a_codec", "the factory returned a Conv2d, not a compressai CompressionModel"),
    ("badcodecs:no_bitstream", "has no compress or decompress method"),
    ("mbt2019-mean", "is not in compressai's registry"),
])
def test_a_codec_that_cannot_be_one_is_refused_in_one_line(tmp_path, codec, message):
    (tmp_path / "badcodecs.py").write_text(BAD)
    params = micro_params()
    params["learned"] = {"mine": {"codec": codec}}
    with pytest.raises(CsalicError) as exc:
        check_learned(params, "params.yaml", import_root=tmp_path)
    text = str(exc.value)
    assert text.startswith("params.yaml: learned.mine: ") and message in text and "\n" not in text


def test_the_first_stage_refuses_a_bad_codec_before_any_job(tmp_path):
    (tmp_path / "badcodecs.py").write_text(BAD)
    params = micro_params()
    params["learned"] = {"mine": {"codec": "badcodecs:not_a_codec"}}
    write_params(tmp_path / "params.yaml", params)
    out = subprocess.run([sys.executable, "-m", "csalic", "stage", "data", "--params", "params.yaml"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].endswith("not a compressai CompressionModel"), out.stderr
    assert not (tmp_path / "results").exists()  # nothing written


@pytest.mark.parametrize("name", ["full", "jpeg", "jpeg-q80", "csalic-mine", "none"])
def test_a_learned_codec_may_not_take_a_name_the_study_already_reads(name):
    params = micro_params()
    params["learned"] = {name: {"codec": "mbt2018-mean"}}
    with pytest.raises(CsalicError, match="is taken|learned"):
        validate(params)


def test_learned_codecs_are_trained_methods_with_their_own_points():
    params = micro_params()
    params["learned"] = {"mbt2018-mean": {"codec": "mbt2018-mean", "args": {"N": 8, "M": 8}}}
    assert layout.trained(params) == ["full", "baseline", "mbt2018-mean"]
    point = layout.csalic_point("mbt2018-mean", 0.001)
    assert point == "mbt2018-mean-lambda_0.001" and layout.parse_csalic_point(point) == ("mbt2018-mean", 0.001, None)
    assert layout.parse_csalic_point("csalic-full-lambda_0.01") == ("full", 0.01, None)
    assert layout.parse_csalic_point("jpeg-q80") is None
    from csalic.study.jobs import spec_from_params

    spec = spec_from_params(params, "mbt2018-mean", 0.001)
    assert spec.learned == {"codec": "mbt2018-mean", "args": {"N": 8, "M": 8}}
    assert spec.job_params()["learned"] == spec.learned
    # a CSA-LIC job's identity is what it was before learned codecs existed
    assert "learned" not in spec_from_params(params, "full", 0.001).job_params()
    with pytest.raises(CsalicError, match="not one of the study's variants or learned codecs"):
        from csalic.study.sweep import plan

        plan(params, ["mbt2018"])
