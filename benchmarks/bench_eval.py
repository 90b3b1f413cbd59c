"""Evaluation throughput: images/s for decode + task network, against the task network alone.

    .venv/bin/python benchmarks/bench_eval.py [--study demo] [--variant full] [--device cpu] [--images 16]

Uses a finished study's files (``./run.sh demo`` first): its val images, its task
network and the variant's highest-λ codec.  Three columns per image, measured in
the same run: the task network on the original image (reference), the CSA-LIC
decode alone, and decode + task network (what ``csalic stage evaluate`` does per image
after encoding).  Pass ``--device cuda`` on a GPU machine.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from csalic.study import layout  # noqa: E402
from csalic.study.params import load  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--variant", default="full")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    from csalic.codec.checkpoint import load_codec
    from csalic.codec.coding import decode_bytes, encode_tensor
    from csalic.data.coco import CocoEvalSet
    from csalic.imageio import read_tensor
    from csalic.tasks import load_task_network

    params = load(a.params)
    lmbda = max(params["lambdas"])
    ckpt = layout.job_dir(params, a.variant, lmbda) / "final.pt"
    images, ann = layout.dataset(params, params["eval"]["datasets"][0])
    if not ckpt.is_file():
        sys.exit(f"{ckpt} not found: run the study first (./run.sh demo)")
    model, _ = load_codec(ckpt, a.device)
    net = load_task_network(params["task"]["name"], layout.task_net(params), device=a.device)
    ds = CocoEvalSet(images, ann)
    xs = [read_tensor(im.path) for im in list(ds.images)[: a.images]]
    fp = model.fingerprint()
    blobs = [encode_tensor(model, x, fp).data for x in xs]
    sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
    task_t, dec_t, both_t = [], [], []
    with torch.no_grad():
        net.predict(xs[0].to(a.device))  # warm-up
        decode_bytes(model, blobs[0], fp)
        for x, blob in zip(xs, blobs):
            sync(); t = time.perf_counter(); net.predict(x.to(a.device)); sync(); task_t.append(time.perf_counter() - t)
            t = time.perf_counter(); x_hat = decode_bytes(model, blob, fp); sync(); dec_t.append(time.perf_counter() - t)
            net.predict(x_hat); sync(); both_t.append(time.perf_counter() - t)
    h, w = xs[0].shape[-2:]
    print(f"machine: {platform.processor() or platform.machine()}, device {a.device}, torch threads "
          f"{torch.get_num_threads()}, {len(xs)} images of {w}x{h}, codec {a.variant} λ={lmbda:g}, "
          f"task network {params['task']['name']}; median per image")
    print("| step | s/image | images/s | vs task network alone |\n|---|---:|---:|---:|")
    ref = statistics.median(task_t)
    for name, ts in (("task network alone (reference)", task_t), ("CSA-LIC decode", dec_t),
                     ("decode + task network", both_t)):
        m = statistics.median(ts)
        print(f"| {name} | {m:.3f} | {1 / m:.1f} | {m / ref:.2f} |")


if __name__ == "__main__":
    main()
