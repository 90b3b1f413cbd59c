"""``csalic evaluate`` (one codec at one setting on one dataset) and ``csalic anchors`` (what is installed).

Torch, torchvision and pycocotools are imported inside the handlers so that
``csalic --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json

from ..names import CODEC_NAMES as CODECS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="code a dataset with one codec setting and measure bpp, PSNR and mAP@0.5",
        description="Encode and decode every image of a COCO-format dataset with one codec at one setting, "
                    "run the task network on the decoded images and write records.json, detections.json, "
                    "summary.json and compressai.json to --out. The rate is the real file size. "
                    "Suggested --out: results/<study>/eval/<dataset>/<method>/<setting>.")
    p.add_argument("--codec", required=True, choices=CODECS,
                   help="csalic (needs --checkpoint), vvc and hevc-qp (--qp; VVenC and x265 through the bundled "
                        "FFmpeg), hevc/jpeg/webp/avif (--quality), none (uncompressed: the task network's ceiling)")
    p.add_argument("--checkpoint", help="CSA-LIC codec checkpoint (.pt) for --codec csalic")
    p.add_argument("--quality", type=int, help="quality 1..100 for hevc, jpeg, webp, avif")
    p.add_argument("--qp", type=int, help="QP 0..63 for vvc (paper: 22 27 32 37 42 47), 0..51 for hevc-qp")
    p.add_argument("--vvc-encoder", help="vvencapp, VTM EncoderAppStatic or an FFmpeg with libvvenc (default: "
                                         "anchors.vvc_encoder from --params, else the FFmpeg imageio-ffmpeg bundles)")
    p.add_argument("--vvc-decoder", help="vvdecapp or VTM DecoderAppStatic (default: beside the encoder, then PATH)")
    p.add_argument("--vvc-config", help="VTM only: encoder cfg, e.g. cfg/encoder_intra_vtm.cfg")
    p.add_argument("--vvc-preset", default="medium", choices=("faster", "fast", "medium", "slow", "slower"),
                   help="VVenC preset, FFmpeg or vvencapp (default: %(default)s)")
    p.add_argument("--images", required=True, help="folder of the dataset's images")
    p.add_argument("--annotations", required=True, help="COCO instances JSON of the dataset")
    p.add_argument("--dataset-name", required=True,
                   help="name recorded with the results (demo_val, coco2017_val, openimages_det, openimages_seg)")
    p.add_argument("--task-net", required=True, help="task network name (see `csalic task-nets`)")
    p.add_argument("--task-weights", help="task network weights (demo_mask_rcnn: the file from train-task-net)")
    p.add_argument("--random-task-net", action="store_true",
                   help="testing only: a randomly initialised task network (its mAP means nothing)")
    p.add_argument("--out", required=True, help="output folder (files written atomically, summary.json last)")
    p.add_argument("--max-images", type=int, help="evaluate only the first N images")
    p.add_argument("--params", help="params.yaml: its hash goes into the provenance, its anchors.vvc_encoder "
                                    "is the default encoder")
    p.add_argument("--device", default="cpu", help="torch device for the codec and task network (default: cpu)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_evaluate)

    a = sub.add_parser("anchors", help="list the anchors usable here and the primary anchor",
                       description="Say which traditional codecs can run on this machine (VVC and HEVC at a QP "
                                   "through the FFmpeg bundled with imageio-ffmpeg, or vvencapp/VTM) and which one "
                                   "is the primary anchor (VVC-Intra, else HEVC-Intra).")
    a.add_argument("--params", help="params.yaml (anchors.primary, anchors.vvc_encoder)")
    a.add_argument("--vvc-encoder", help="vvencapp, VTM EncoderAppStatic or an FFmpeg with libvvenc")
    a.add_argument("--vvc-decoder", help="vvdecapp or VTM DecoderAppStatic")
    a.add_argument("--json", action="store_true", help="print one JSON object")
    a.set_defaults(func=_anchors)


def _params(path: str | None) -> dict | None:
    if not path:
        return None
    from ..study.params import load

    return load(path)


def _evaluate(args: argparse.Namespace) -> int:
    from ..evaluation.evaluate import run_evaluation

    from ..study.params import params_hash

    params = _params(args.params)
    phash = params_hash(params) if params is not None else None
    vvc = {"vvc_encoder": args.vvc_encoder or (params or {}).get("anchors", {}).get("vvc_encoder"),
           "vvc_decoder": args.vvc_decoder, "config": args.vvc_config, "preset": args.vvc_preset}
    run_evaluation(args.codec, args.images, args.annotations, dataset_name=args.dataset_name, task_net=args.task_net,
                   out=args.out, task_weights=args.task_weights, checkpoint=args.checkpoint, quality=args.quality,
                   qp=args.qp, vvc=vvc, max_images=args.max_images, params_hash=phash, device=args.device,
                   threads=args.threads, random_task_net=args.random_task_net, progress=not args.quiet)
    return 0


def _anchors(args: argparse.Namespace) -> int:
    from ..evaluation.anchors import available_anchors, primary_anchor

    params = _params(args.params)
    conf = (params or {}).get("anchors", {})
    encoder = args.vvc_encoder or conf.get("vvc_encoder")
    avail = available_anchors(encoder, args.vvc_decoder)
    primary, why = primary_anchor(conf.get("primary", "vvc"), encoder, args.vvc_decoder)
    if args.json:
        print(json.dumps({"primary": primary, "reason": why,
                          "anchors": {k: {"available": ok, "detail": d} for k, (ok, d) in avail.items()}},
                         sort_keys=True))
        return 0
    for name, (ok, detail) in avail.items():
        print(f"{name:<7} {'yes' if ok else 'no ':<4} {detail}")
    print(f"primary anchor: {primary} ({why})")
    return 0
