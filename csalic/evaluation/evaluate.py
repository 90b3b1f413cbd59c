"""Codec x dataset -> per-image records (bytes, bpp, PSNR, times, predictions) -> mAP@0.5.

Every image is encoded and decoded for real; the rate is ``len(bytes) * 8`` over
the original image's pixels (never an entropy model's estimate), and the task
network sees the decoded image.  ``bpp`` in a summary is the mean of the
per-image bpp (CompressAI's convention); ``bpp_total`` (all bits over all pixels,
the MPEG VCM convention) is recorded beside it.  PSNR is computed on the 8-bit
images: RGB over all three channels, and Y (BT.601) alone; a lossless image has
no finite PSNR, is recorded as ``null`` and left out of the mean (counted in
``lossless_images``).

Outputs of :func:`write_outputs` in one folder (suggested:
``results/<study>/eval/<dataset>/<method>/<setting>/``): ``records.json`` (per
image), ``detections.json`` (COCO results format, loadable by pycocotools),
``summary.json`` (dataset means, mAP and provenance) and ``compressai.json``
(the same point in CompressAI's results-JSON layout; :func:`merge_compressai`
joins several settings into one curve).
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from PIL import Image

from .. import __version__
from .anchors import LABELS, ImageCodec, Uncompressed, get_anchor
from ..errors import CsalicError, UnreadableImageError
from ..io import atomic_write_json, read_json_object
from ..names import CODEC_NAMES, QP_CODECS, QUALITY_CODECS, trained_method
from ..provenance import git_commit

SUMMARY_FORMAT = "csalic.eval-summary"
SUMMARY_VERSION = 1
MATCHES_FILE = "matches.npz"  # beside summary.json: per-image matches and bpp, for the bootstrap
RATE_NOTE = "file bytes x 8 / original pixels (real bitstreams, never estimated bits)"
log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- CSA-LIC as an ImageCodec

class CsalicCodec(ImageCodec):
    """A trained checkpoint at its own λ, a CSA-LIC variant's or a learned codec's (``learned``: the
    study's entries); files are complete ``.csa`` bitstreams."""

    def __init__(self, checkpoint: str | Path, device: str = "cpu", learned: dict | None = None):
        from ..codec.checkpoint import load_codec
        from ..provenance import sha256_of

        self.checkpoint = Path(checkpoint)
        self.model, self.info = load_codec(self.checkpoint, device, learned=learned)
        self.device = device
        self.sha256 = sha256_of(self.checkpoint)
        self.fingerprint = self.model.fingerprint()  # hashes every weight: once, not per image
        self.variant = self.info.get("variant")
        self.lmbda = self.info.get("lmbda")
        self.name = trained_method(self.variant)
        self.learned = (self.info.get("config") or {}).get("learned")
        self.setting = f"lambda={self.lmbda:g}" if self.lmbda is not None else f"checkpoint={self.checkpoint.stem}"

    def encode(self, img: Image.Image) -> bytes:
        import torch

        from ..codec.coding import encode_tensor
        from ..imageio import pil_to_tensor

        with torch.no_grad():
            return encode_tensor(self.model, pil_to_tensor(img).to(self.device), self.fingerprint).data

    def decode(self, data: bytes) -> Image.Image:
        import torch

        from ..codec.coding import decode_bytes
        from ..imageio import tensor_to_pil

        with torch.no_grad():
            return tensor_to_pil(decode_bytes(self.model, data, self.fingerprint))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "checkpoint": str(self.checkpoint), "checkpoint_sha256": self.sha256,
                "variant": self.variant, "lmbda": self.lmbda, "size": self.info.get("size"),
                **({"learned": self.learned, "label": learned_label(self.name, self.learned["codec"])}
                   if self.learned else {}),
                "device": str(self.device), "meta": self.info.get("meta", {})}


def make_codec(name: str, *, checkpoint: str | Path | None = None, quality: int | None = None,
               qp: int | None = None, device: str = "cpu", learned: dict | None = None,
               **vvc_options: Any) -> ImageCodec:
    """Build the codec the CLI names: ``csalic`` needs a checkpoint (a CSA-LIC variant's or a learned
    codec's), ``vvc`` a QP, the others a quality."""
    if name == "csalic":
        if checkpoint is None:
            raise CsalicError("--codec csalic needs --checkpoint CK.pt")
        return CsalicCodec(checkpoint, device, learned)
    if name == "none":
        return Uncompressed()
    if name == "vvc":
        if qp is None:
            raise CsalicError("--codec vvc needs --qp (the paper uses 22, 27, 32, 37, 42, 47)")
        return get_anchor("vvc", qp, **vvc_options)
    if name == "hevc-qp":
        if qp is None:
            raise CsalicError("--codec hevc-qp needs --qp 0..51")
        return get_anchor("hevc-qp", qp)
    if name in ("hevc", "jpeg", "webp", "avif"):
        if quality is None:
            raise CsalicError(f"--codec {name} needs --quality 1..100")
        return get_anchor(name, quality)
    raise CsalicError(f"unknown codec {name!r}; choose one of {', '.join(CODEC_NAMES)}")


# ----------------------------------------------------------------------------- per-image measurements

def _mse_psnr(a: np.ndarray, b: np.ndarray) -> float | None:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return None if mse == 0.0 else 10.0 * math.log10(255.0 ** 2 / mse)


def psnr_rgb(original: Image.Image, decoded: Image.Image) -> float | None:
    """PSNR in dB over R, G and B of two 8-bit images; None when they are identical."""
    return _mse_psnr(np.asarray(original), np.asarray(decoded))


def psnr_y(original: Image.Image, decoded: Image.Image) -> float | None:
    """PSNR of BT.601 luma computed from the 8-bit RGB values (not rounded to integers)."""
    w = np.array([0.299, 0.587, 0.114])
    return _mse_psnr(np.asarray(original, dtype=np.float64) @ w, np.asarray(decoded, dtype=np.float64) @ w)


def load_as_annotated(path: Path, width: int, height: int) -> Image.Image:
    """The image in the orientation its annotations use.

    A few COCO images carry an EXIF rotation their boxes ignore (they were drawn on
    the stored pixels); when honouring the tag swaps the annotated size, the
    stored orientation is used instead.
    """
    from ..imageio import load_image, to_rgb

    img = load_image(path)
    if img.size == (width, height):
        return img
    if img.size == (height, width):
        with Image.open(path) as raw:
            raw.load()
            raw.info.pop("exif", None)
            raw.getexif().pop(0x0112, None)  # Orientation
            img = to_rgb(raw)
        if img.size == (width, height):
            return img
    raise CsalicError(f"{path} is {img.width}x{img.height} but the annotations say {width}x{height}: "
                      "wrong image folder?")


def _mean(values: Iterable[float | None]) -> float | None:
    v = [x for x in values if x is not None]
    return float(sum(v) / len(v)) if v else None


# ----------------------------------------------------------------------------- the evaluation

@dataclass
class EvalResult:
    records: list[dict[str, Any]]
    detections: list[dict[str, Any]]
    summary: dict[str, Any]
    matches: dict[str, Any] = field(default_factory=dict)  # IoU type -> csalic.metrics.matches.Matches


def evaluate_codec(codec: ImageCodec, dataset, task_net, *, dataset_name: str, max_images: int | None = None,
                   params_hash: str | None = None, progress: bool = True,
                   extra_provenance: dict[str, Any] | None = None, scorer=None) -> EvalResult:
    """Code every image of ``dataset`` (a :class:`~csalic.data.coco.CocoEvalSet`) with ``codec``
    and score ``task_net``'s predictions on the decoded images: by COCO's protocol (pycocotools), or
    by ``scorer.matches(detections, image_ids, segmentation)`` (:class:`~csalic.evaluation.oid_scoring.OidScorer`)."""
    from tqdm import tqdm

    from ..imageio import pil_to_tensor
    from ..metrics.detection import maps_of, matches_all, to_coco_results

    if max_images is not None and max_images < 1:
        raise CsalicError(f"--max-images must be >= 1, got {max_images}")
    images = list(dataset.images)[: max_images or None]
    if not images:
        raise CsalicError(f"dataset {dataset_name} has no images to evaluate")
    records: list[dict[str, Any]] = []
    detections: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    desc = f"{dataset_name} {codec.name} {codec.setting}"
    for im in tqdm(images, desc=desc, unit="img", disable=not progress):
        try:
            original = load_as_annotated(im.path, im.width, im.height)
        except UnreadableImageError as exc:  # the same images are skipped for every method: curves stay comparable
            skipped.append({"file_name": im.path.name, "reason": str(exc)})
            log.warning("skipped %s: %s", im.path.name, exc)
            continue
        t0 = time.perf_counter()
        data = codec.encode(original)
        t1 = time.perf_counter()
        decoded = codec.decode(data)
        t2 = time.perf_counter()
        if decoded.size != original.size:
            raise CsalicError(f"{codec.name} {codec.setting} decoded {im.path.name} to {decoded.width}x"
                              f"{decoded.height}, expected {original.width}x{original.height}")
        decoded = decoded if decoded.mode == "RGB" else decoded.convert("RGB")
        pred = task_net.predict(pil_to_tensor(decoded))[0]
        dets = to_coco_results(im.image_id, pred)
        detections.extend(dets)
        pixels = original.width * original.height
        records.append({
            "image_id": im.image_id, "file_name": im.path.name, "width": original.width,
            "height": original.height, "bytes": len(data), "bpp": len(data) * 8.0 / pixels,
            "psnr_rgb": psnr_rgb(original, decoded), "psnr_y": psnr_y(original, decoded),
            "encode_s": t1 - t0, "decode_s": t2 - t1, "predictions": len(dets),
        })
    if not records:
        raise CsalicError(f"dataset {dataset_name}: none of its {len(images)} image(s) could be read "
                          f"(first: {skipped[0]['reason']})")
    if skipped:
        log.warning("%s: skipped %d unreadable image(s) of %d: %s", dataset_name, len(skipped), len(images),
                    ", ".join(s["file_name"] for s in skipped[:10]) + (" ..." if len(skipped) > 10 else ""))
    ids = [r["image_id"] for r in records]
    segm = True if getattr(task_net, "kind", None) == "segmentation" else None  # None: decide from the masks
    if scorer is None:
        matches = matches_all(dataset.coco(), detections, ids, segmentation=segm)
    else:
        matches = scorer.matches(detections, ids, segmentation=segm)
    maps = maps_of(matches)
    summary = summarize(records, maps, codec=codec, dataset=dataset, dataset_name=dataset_name,
                        task_net=task_net, params_hash=params_hash, extra_provenance=extra_provenance)
    summary["protocol"] = getattr(scorer, "protocol", "coco")
    summary["skipped_images"] = skipped
    return EvalResult(records, detections, summary, matches)


def summarize(records: Sequence[dict[str, Any]], maps: dict[str, float | None], *, codec: ImageCodec, dataset,
              dataset_name: str, task_net, params_hash: str | None = None,
              extra_provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    bits = sum(r["bytes"] for r in records) * 8
    pixels = sum(r["width"] * r["height"] for r in records)
    desc = codec.describe()
    net = task_net.describe() if hasattr(task_net, "describe") else {"name": str(task_net)}
    return {
        "format": SUMMARY_FORMAT, "format_version": SUMMARY_VERSION,
        "method": codec.name, "codec": "csalic" if isinstance(codec, CsalicCodec) else codec.name.split("-")[0], "setting": codec.setting,
        "variant": getattr(codec, "variant", None), "lmbda": getattr(codec, "lmbda", None),
        "dataset": dataset_name, "task_net": net.get("name"), "task_kind": getattr(task_net, "kind", None),
        "n_images": len(records), "bytes_total": bits // 8,
        "bpp": _mean(r["bpp"] for r in records), "bpp_total": bits / pixels,
        "psnr_rgb": _mean(r["psnr_rgb"] for r in records), "psnr_y": _mean(r["psnr_y"] for r in records),
        "lossless_images": sum(r["psnr_rgb"] is None for r in records),
        "map50_bbox": maps.get("map50_bbox"), "map50_segm": maps.get("map50_segm"),
        "encode_s": _mean(r["encode_s"] for r in records), "decode_s": _mean(r["decode_s"] for r in records),
        "rate": RATE_NOTE,
        "provenance": {
            "codec": desc, "checkpoint_sha256": desc.get("checkpoint_sha256"), "task_net": net,
            "dataset": {"name": dataset_name, "images": str(dataset.image_dir),
                        "annotations": str(dataset.annotation_json)},
            "params_hash": params_hash, "git_commit": git_commit(), "csalic_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "host": platform.node(), "python": platform.python_version(), "threads": _torch_threads(),
            **(extra_provenance or {}),
        },
    }


def _torch_threads() -> int:
    """The threads torch computed with (the encode and decode times depend on them)."""
    import torch

    return torch.get_num_threads()


# ----------------------------------------------------------------------------- files

def write_outputs(result: EvalResult, out_dir: str | Path) -> dict[str, Path]:
    """Write the files atomically; summary.json last, so its presence means the folder is complete.

    ``matches.npz`` keeps the per-image matches and bpp, so that a report can bootstrap the images
    without matching again (:mod:`csalic.metrics.matches`)."""
    from ..metrics import matches as per_image

    out = Path(out_dir)
    paths = {k: out / f"{k}.json" for k in ("records", "detections", "compressai", "summary")}
    if result.matches:
        ids = next(iter(result.matches.values())).image_ids
        bpp = {r["image_id"]: r["bpp"] for r in result.records}
        paths["matches"] = per_image.save(out / MATCHES_FILE, result.matches, bpp=[bpp[int(i)] for i in ids])
    atomic_write_json(paths["records"], {"method": result.summary["method"], "setting": result.summary["setting"],
                                         "dataset": result.summary["dataset"], "images": result.records})
    atomic_write_json(paths["detections"], result.detections)
    atomic_write_json(paths["compressai"], merge_compressai([result.summary]))
    atomic_write_json(paths["summary"], result.summary)
    return paths


def run_evaluation(codec: str, images: str | Path, annotations: str | Path, *, dataset_name: str, task_net: str,
                   out: str | Path, task_weights: str | Path | None = None, checkpoint: str | Path | None = None,
                   quality: int | None = None, qp: int | None = None, vvc: dict | None = None,
                   max_images: int | None = None, params_hash: str | None = None, device: str = "cpu",
                   threads: int | None = None, random_task_net: bool = False, progress: bool = True,
                   oid_files=None, learned: dict | None = None, seed: int | None = None) -> EvalResult:
    """One codec at one setting on one COCO-format dataset, written to ``out``: ``csalic evaluate``'s work.

    ``params_hash`` names the study in the provenance; ``vvc`` holds the VVC tools' options
    (``vvc_encoder``: the study's ``anchors.vvc_encoder`` when it has one); ``oid_files``
    (:class:`~csalic.evaluation.oid_scoring.OidFiles`) scores an OpenImages set by the OID protocol;
    ``learned`` (a study's entries) allows a checkpoint of a codec named by import path; ``seed``:
    the training seed of a study's checkpoint when the study trains several (the summary's ``seed``).
    """
    if max_images is not None and max_images < 1:
        raise CsalicError(f"--max-images must be >= 1, got {max_images}")
    if checkpoint is not None and codec != "csalic":
        raise CsalicError("--checkpoint only applies to --codec csalic")
    if qp is not None and codec not in QP_CODECS:
        raise CsalicError("--qp only applies to --codec vvc or hevc-qp")
    if quality is not None and codec not in QUALITY_CODECS:
        raise CsalicError("--quality only applies to --codec hevc, jpeg, webp or avif")
    import torch

    from ..data.coco import CocoEvalSet
    from ..tasks import load_task_network

    if threads is not None:
        if threads < 1:
            raise CsalicError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CsalicError("--device cuda requested but torch sees no CUDA device; use --device cpu")
    options = dict(vvc or {})
    dataset = CocoEvalSet(images, annotations)
    scorer = None
    if oid_files is not None:
        from .oid_scoring import OidScorer

        scorer = OidScorer(oid_files, dataset.data)
    coder = make_codec(codec, checkpoint=checkpoint, quality=quality, qp=qp, device=device, learned=learned,
                       **(options if codec == "vvc" else {}))
    net = load_task_network(task_net, task_weights, device, allow_random=random_task_net)
    result = evaluate_codec(coder, dataset, net, dataset_name=dataset_name, max_images=max_images,
                            params_hash=params_hash, progress=progress, scorer=scorer)
    if seed is not None:
        result.summary["seed"] = int(seed)
    paths = write_outputs(result, out)
    s = result.summary

    def fmt(v, spec=".3f"):
        return "n/a" if v is None else format(v, spec)

    print(f"{s['dataset']} {s['method']} {s['setting']}: {s['n_images']} images, {fmt(s['bpp'], '.4f')} bpp, "
          f"PSNR {fmt(s['psnr_rgb'], '.2f')} dB, mAP@0.5 bbox {fmt(s['map50_bbox'])} segm {fmt(s['map50_segm'])}"
          f" -> {paths['summary']}")
    return result


def load_summary(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    s = read_json_object(p, "summary")
    if s.get("format") != SUMMARY_FORMAT:
        raise CsalicError(f"{p} is not a csalic evaluation summary (no '{SUMMARY_FORMAT}' format tag)")
    for key in ("method", "setting", "dataset", "bpp", "map50_bbox"):
        if key not in s:
            raise CsalicError(f"{p} lacks '{key}': rerun csalic evaluate")
    s["_path"] = str(p)
    return s


def method_label(method: str) -> str:
    """Display name: ``csalic-full`` -> ``CSA-LIC (full)``, ``vvc`` -> ``VVC-Intra``."""
    if method.startswith("csalic-"):
        return f"CSA-LIC ({method.split('-', 1)[1]})"
    return LABELS.get(method, method)


def learned_label(method: str, codec: str) -> str:
    """A learned codec the study trained: marked as measured here, beside the published rows."""
    return f"{method} (trained here)" if codec == method else f"{method} ({codec}, trained here)"


def merge_compressai(summaries: Sequence[dict[str, Any]], name: str | None = None,
                     description: str | None = None) -> dict[str, Any]:
    """Per-setting summaries of one method and dataset -> one CompressAI results-JSON curve, sorted by rate."""
    if not summaries:
        raise CsalicError("no summaries to merge")
    keys = {(s["method"], s["dataset"]) for s in summaries}
    if len(keys) != 1:
        raise CsalicError(f"cannot merge different methods/datasets into one curve: {sorted(keys)}")
    method, dataset = next(iter(keys))
    rows = sorted(summaries, key=lambda s: s["bpp"])
    results: dict[str, list] = {"bpp": [s["bpp"] for s in rows], "psnr-rgb": [s.get("psnr_rgb") for s in rows],
                                "psnr-y": [s.get("psnr_y") for s in rows],
                                "map50_bbox": [s.get("map50_bbox") for s in rows],
                                "map50_segm": [s.get("map50_segm") for s in rows],
                                "encoding_time": [s.get("encode_s") for s in rows],
                                "decoding_time": [s.get("decode_s") for s in rows],
                                "setting": [s["setting"] for s in rows]}
    return {"name": name or method_label(method),
            "description": description or f"{method_label(method)} on {dataset} "
                                          f"(task network {rows[0].get('task_net')}); rate: {RATE_NOTE}",
            "results": results}
