"""The CUDA path: run on a machine with a GPU (benchmarks/gpu_check.sh runs `pytest -m cuda`); skipped elsewhere.

What only a GPU can show: bf16 autocast and channels_last in a real training job with D_f through a
torchvision R-CNN, and exact encode/decode with the model on the GPU.
"""

import json

import pytest
import torch

from csalic.study import layout
from helpers import micro_params

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_compress_decompress_is_exact_on_the_gpu():
    from csalic.codec.coding import decode_bytes, encode_tensor
    from csalic.codec.model import build_model

    torch.manual_seed(0)
    model = build_model("demo", "full").cuda().eval()
    model.update(force=True)
    x = torch.rand(1, 3, 96, 130, device="cuda")
    with torch.no_grad():
        enc = encode_tensor(model, x, model.fingerprint())
        y_enc = model.entropy.compress(model.encode_latent(model._pad(x)))["y_hat"]
        y_dec = model.entropy.decompress(model.compress(x)["strings"], (-(-96 // 64), -(-130 // 64)))
        out = decode_bytes(model, enc.data, model.fingerprint())
    assert torch.equal(y_enc, y_dec)  # the decoder's latents are the encoder's, bit for bit
    assert out.shape == x.shape and out.device.type == "cuda"


def test_a_training_job_on_the_gpu_uses_bf16_channels_last_and_d_f(tmp_path, monkeypatch):
    from csalic.data.demo import generate_demo
    from csalic.tasks import load_task_network
    from csalic.study.train import spec_from_params, train_job

    monkeypatch.chdir(tmp_path)
    weights = tmp_path / "tv.pt"
    torch.manual_seed(0)
    torch.save(load_task_network("tv_mask_rcnn_r50_fpn", allow_random=True).model.state_dict(), weights)
    params = micro_params(max_steps=4, feature_weight=1.0, amp=True, channels_last=True)
    params["task"].update(name="tv_mask_rcnn_r50_fpn", weights=str(weights))
    generate_demo(layout.demo_data(params), n_train=8, n_val=2, size=(288, 288))
    spec = spec_from_params(params, "full", 0.01, out_dir=str(tmp_path / "job"), device="cuda")
    summary = train_job(spec, progress=False)
    assert summary["device"] == "cuda" and summary["steps"] == 4
    f = summary["final"]
    assert all(torch.isfinite(torch.tensor(f[k])) for k in ("loss", "bpp", "d_i", "d_f")) and f["d_f"] > 0
    rows = (tmp_path / "job" / "metrics.csv").read_text().splitlines()
    assert float(rows[-1].split(",")[rows[0].split(",").index("sys_gpu_mem_gb")]) > 0
    assert json.loads((tmp_path / "job" / "summary.json").read_text())["task_network"]["name"] == "tv_mask_rcnn_r50_fpn"
