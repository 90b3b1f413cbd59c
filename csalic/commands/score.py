"""``csalic score``: mAP@0.5 of a detections file under the Open Images challenge or the COCO protocol.

pandas and pycocotools are imported inside the handler so that ``csalic --help``
stays fast; nothing here imports torch.
"""

from __future__ import annotations

import argparse
import json

OID_ONLY = ("boxes", "image_labels", "hierarchy", "masks", "mask_dir")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score", help="mAP@0.5 of a detections file: Open Images challenge protocol or COCO",
        description="Score detections against ground truth at IoU 0.5. --protocol oid: the Open Images challenge "
                    "rules (verified image-level labels, group-of boxes, the class hierarchy, all-points AP) on "
                    "the OID CSVs and a submission CSV ImageID,LabelName,Score,XMin,XMax,YMin,YMax (normalised "
                    "boxes; for --iou-type segm: ImageID,LabelName,Score,Mask,ImageWidth,ImageHeight with the "
                    "challenge's mask encoding). --protocol coco: pycocotools' COCOeval at IoU 0.5 (101-point AP) "
                    "on an instances JSON and a COCO results JSON. A detections file with a header and no rows "
                    "(or the COCO results []) scores 0.0.")
    p.add_argument("--protocol", required=True, choices=("oid", "coco"), help="evaluation protocol")
    p.add_argument("--detections", required=True,
                   help="oid: submission CSV; coco: results JSON (a list of {image_id, category_id, score, bbox "
                        "or segmentation})")
    p.add_argument("--iou-type", default="bbox", choices=("bbox", "segm"), help="boxes or masks (default: %(default)s)")
    p.add_argument("--boxes", help="oid: validation-annotations-bbox.csv (needs ImageID, LabelName, XMin, XMax, YMin, "
                                   "YMax, IsGroupOf)")
    p.add_argument("--image-labels", help="oid: validation-annotations-human-imagelabels-boxable.csv (ImageID, "
                                          "LabelName, Confidence)")
    p.add_argument("--hierarchy", help="oid: bbox_labels_600_hierarchy.json (default: a flat label set)")
    p.add_argument("--masks", help="oid segm: the segmentation CSV (MaskPath, ImageID, LabelName, ...)")
    p.add_argument("--mask-dir", help="oid segm: folder of the segmentation CSV's mask PNGs")
    p.add_argument("--annotations", help="coco: instances JSON")
    p.add_argument("--json", action="store_true",
                   help='print one JSON object {"protocol", "iou_type", "map50", "per_class"}')
    p.set_defaults(func=_score)


def _check_options(args: argparse.Namespace) -> None:
    from ..errors import CsalicError

    def flag(name: str) -> str:
        return "--" + name.replace("_", "-")

    if args.protocol == "oid":
        needed = ["boxes", "image_labels"] + (["masks", "mask_dir"] if args.iou_type == "segm" else [])
        stray = ["annotations"] + ([] if args.iou_type == "segm" else ["masks", "mask_dir"])
    else:
        needed, stray = ["annotations"], list(OID_ONLY)
    for name in needed:
        if getattr(args, name) is None:
            raise CsalicError(f"--protocol {args.protocol} --iou-type {args.iou_type} needs {flag(name)}")
    for name in stray:
        if getattr(args, name) is not None:
            raise CsalicError(f"{flag(name)} does not apply to --protocol {args.protocol} --iou-type {args.iou_type}")


def _score_oid(args: argparse.Namespace) -> tuple[float | None, dict[str, float]]:
    from ..metrics import oid

    gt = oid.load_ground_truth(args.boxes, args.image_labels, args.hierarchy, masks_csv=args.masks,
                               mask_dir=args.mask_dir)
    result = oid.evaluate(gt, oid.read_detections(args.detections, args.iou_type), args.iou_type)
    return result["map50"], result["per_class"]


def _read_results(path: str, iou_type: str) -> list:
    from pathlib import Path

    from ..errors import CsalicError

    p = Path(path)
    if not p.is_file():
        raise CsalicError(f"COCO results {p} not found")
    try:
        text = p.read_text(encoding="utf-8")
        results = json.loads(text) if text.strip() else None
    except (OSError, ValueError) as exc:
        why = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise CsalicError(f"COCO results {p} is not readable JSON ({why})") from None
    if results is None:
        raise CsalicError(f"COCO results {p} is empty: write a JSON list of results ([] for no detections)")
    if not isinstance(results, list):
        raise CsalicError(f"COCO results {p} must hold a JSON list of results")
    shape = "bbox" if iou_type == "bbox" else "segmentation"
    for i, r in enumerate(results):
        missing = [k for k in ("image_id", "category_id", "score", shape) if not isinstance(r, dict) or k not in r]
        if missing:
            raise CsalicError(f"COCO results {p}: result {i} has no {missing[0]!r} (needed for --iou-type {iou_type})")
    return results


def _coco_gt(path: str):
    import contextlib
    import io

    from pycocotools.coco import COCO

    from ..errors import CsalicError
    from ..io import read_json_object

    data = read_json_object(path, "COCO annotations")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise CsalicError(f"COCO annotations {path} has no {key!r} list: give an instances JSON")
    api = COCO()
    api.dataset = data
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            api.createIndex()
    except (KeyError, TypeError) as exc:
        raise CsalicError(f"COCO annotations {path} is not an instances JSON (missing {exc})") from None
    return api


def _score_coco(args: argparse.Namespace) -> tuple[float | None, dict[str, float]]:
    from ..errors import CsalicError
    from ..metrics.detection import coco_ap50_per_class, coco_map50

    gt = _coco_gt(args.annotations)
    results = _read_results(args.detections, args.iou_type)
    try:
        map50 = coco_map50(gt, results, args.iou_type)
        per_id = coco_ap50_per_class(gt, results, args.iou_type)
    except (KeyError, TypeError, ValueError, IndexError, AssertionError) as exc:
        raise CsalicError(f"COCO results {args.detections} do not fit {args.annotations} "
                          f"({type(exc).__name__}: {(str(exc).splitlines() or [''])[0]})") from None
    names = [gt.cats[c]["name"] for c in per_id]
    per_class = {(n if names.count(n) == 1 else f"{n} ({c})"): ap for n, (c, ap) in zip(names, per_id.items())}
    return map50, per_class


def _score(args: argparse.Namespace) -> int:
    _check_options(args)
    map50, per_class = (_score_oid if args.protocol == "oid" else _score_coco)(args)
    if args.json:
        print(json.dumps({"protocol": args.protocol, "iou_type": args.iou_type, "map50": map50,
                          "per_class": per_class}))
        return 0
    width = max([len("class"), *(len(k) for k in per_class)])
    print(f"{'class':<{width}}  AP@0.5")
    for name, ap in per_class.items():
        print(f"{name:<{width}}  {ap:.4f}")
    shown = "undefined (no ground-truth instance)" if map50 is None else f"{map50:.4f}"
    n = len(per_class)
    print(f"mAP@0.5 ({args.protocol}, {args.iou_type}, {n} class{'' if n == 1 else 'es'}): {shown}")
    return 0
