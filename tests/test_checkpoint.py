import os
import pickle

import pytest
import torch

from csalic.codec.checkpoint import load_codec, save_codec
from csalic.errors import CheckpointError
from csalic.codec.model import build_model


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("ck")
    torch.manual_seed(0)
    model = build_model("demo", "full")
    save_codec(d / "full.pt", model, lmbda=0.01, meta={"note": "test"})
    return d / "full.pt", model


def test_round_trip_keeps_weights_tables_and_metadata(ckpt):
    path, model = ckpt
    loaded, info = load_codec(path)
    assert info["size"] == "demo" and info["variant"] == "full" and info["lmbda"] == 0.01
    assert info["entropy_updated"] is True and info["meta"] == {"note": "test"}
    assert loaded.fingerprint() == model.fingerprint()
    gc = loaded.entropy.gaussian_conditional
    assert gc._quantized_cdf.numel() > 0 and torch.equal(gc._quantized_cdf, model.entropy.gaussian_conditional._quantized_cdf)


def test_expected_kind_mismatch(ckpt):
    path, _ = ckpt
    with pytest.raises(CheckpointError, match="expected variant 'concat'"):
        load_codec(path, variant="concat")
    with pytest.raises(CheckpointError, match="expected size 'paper'"):
        load_codec(path, size="paper")


def test_truncated_and_garbage(ckpt, tmp_path):
    path, _ = ckpt
    data = path.read_bytes()
    (tmp_path / "t.pt").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="truncated|corrupted"):
        load_codec(tmp_path / "t.pt")
    (tmp_path / "g.pt").write_bytes(os.urandom(1000))
    with pytest.raises(CheckpointError):
        load_codec(tmp_path / "g.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_codec(tmp_path / "absent.pt")


def test_weights_of_another_variant_are_refused(ckpt, tmp_path):
    path, _ = ckpt
    record = torch.load(path, weights_only=True)
    record["variant"] = "baseline"  # a lying header: the weights are the full model's
    torch.save(record, tmp_path / "lie.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_codec(tmp_path / "lie.pt")


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_carrying_code_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    payload = _Payload()
    payload.marker = marker
    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump({"format": "csalic.codec", "x": payload}, fh)
    torch.save({"format": "csalic.codec", "format_version": 1, "x": payload}, tmp_path / "evil2.pt")
    for name in ("evil.pt", "evil2.pt"):
        with pytest.raises(CheckpointError):
            load_codec(tmp_path / name)
    assert not marker.exists()


def test_not_a_csalic_checkpoint(tmp_path):
    torch.save({"model": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a csalic codec checkpoint"):
        load_codec(tmp_path / "other.pt")
