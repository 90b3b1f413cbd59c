"""Data stages: ``demo-data``, ``filter-coco``, ``convert-openimages``.

Imports of the library happen inside the handlers so that ``csalic --help``
stays fast.
"""

from __future__ import annotations

import argparse
import re

from ..errors import CsalicError


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", text)
    if not m:
        raise argparse.ArgumentTypeError(f"expected N or WxH (e.g. 320 or 384x320), got {text!r}")
    w = int(m.group(1))
    return w, int(m.group(2) or w)


def _demo(args: argparse.Namespace) -> int:
    from ..data.demo import generate_demo

    d = generate_demo(args.out, n_train=args.train, n_val=args.val, size=args.size, seed=args.seed)
    print(f"demo data in {d.root}: {d.n_train} train + {d.n_val} val images, {d.n_objects} objects, "
          f"manifest {d.manifest}")
    return 0


def _filter(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..data.coco import filter_coco, write_manifest

    names = None
    if args.image_list is not None:
        p = Path(args.image_list)
        if not p.is_file():
            raise CsalicError(f"image list {p} does not exist: pass a text file with one file name per line")
        names = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
    res = filter_coco(annotations=args.annotations, images=args.images, image_root=args.image_root,
                      min_side=args.min_side, rule=args.rule, image_list=names)
    write_manifest(args.out, res.rows, res.summary)
    print(f"{args.out}: {res.summary_line()}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from ..data.openimages import convert_openimages

    _, s = convert_openimages(args.images, args.classes, boxes_csv=args.boxes, masks_csv=args.masks,
                              mask_dir=args.mask_dir, image_list=args.image_list, out=args.out,
                              category_map=args.category_map)
    print(f"{args.out}: {s['images']} images, {s['annotations']} annotations, {s['categories']} categories "
          f"({s['missing_images']} listed images missing, {s['unreadable_images']} unreadable, "
          f"{s['missing_masks']} masks missing, {s['unmapped_annotations']} annotations of unmapped labels)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo-data", help="generate the small COCO-format demo dataset",
        description="Write a deterministic generated dataset (coloured discs, squares and triangles on textured "
                    "backgrounds) in COCO format: DIR/train, DIR/val, DIR/annotations/instances_{train,val}.json "
                    "and DIR/manifest_train.csv.  Same seed -> byte-identical files.")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--train", type=int, default=64, metavar="N", help="training images (default 64)")
    p.add_argument("--val", type=int, default=16, metavar="N", help="validation images (default 16)")
    p.add_argument("--size", type=_size, default=(320, 320), metavar="WxH",
                   help="image size, N or WxH, both sides > 256 (default 320x320)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=_demo)

    p = sub.add_parser(
        "filter-coco", help="select COCO2017 training images by size and write a manifest",
        description="Keep the training images whose both sides exceed --min-side (the paper keeps 117,465 of "
                    "118,287 'with resolutions exceeding 256x256').  Sizes come from --annotations (no image is "
                    "decoded) or, without it, from the headers of the files in --images.  Writes a CSV "
                    "(path,width,height; paths relative to --image-root) and a .summary.json with the counts.  "
                    "Missing and unreadable images are counted, not fatal.")
    p.add_argument("--annotations", metavar="JSON", help="instances_train2017.json (sizes from its images list)")
    p.add_argument("--images", metavar="DIR",
                   help="folder holding the images; with --annotations it is only checked for missing files")
    p.add_argument("--image-root", metavar="DIR",
                   help="manifest paths are relative to this folder (default: --images)")
    p.add_argument("--image-list", metavar="FILE",
                   help="header mode only: file names (relative to --images) expected, one per line")
    p.add_argument("--out", required=True, metavar="CSV", help="manifest to write")
    p.add_argument("--min-side", type=int, default=256, metavar="PX", help="size threshold (default 256)")
    p.add_argument("--rule", choices=("both_sides_gt", "both_sides_ge"), default="both_sides_gt",
                   help="both_sides_gt: width > PX and height > PX (default); both_sides_ge: >=")
    p.set_defaults(func=_filter)

    p = sub.add_parser(
        "convert-openimages", help="convert OpenImagesV6 CSVs (+ mask PNGs) to COCO JSON",
        description="Build a COCO instances JSON for the MPEG VCM OpenImagesV6 subsets from the official CSVs: "
                    "--boxes for detection, --masks with --mask-dir for segmentation.  Images are those in "
                    "--images, restricted to --image-list when given; sizes are read from image headers.")
    p.add_argument("--images", required=True, metavar="DIR", help="folder of OpenImages JPEGs")
    p.add_argument("--classes", required=True, metavar="CSV", help="class descriptions (LabelName,DisplayName)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--boxes", metavar="CSV", help="*-annotations-bbox.csv (detection)")
    g.add_argument("--masks", metavar="CSV", help="*-annotations-object-segmentation.csv (segmentation)")
    p.add_argument("--mask-dir", metavar="DIR", help="folder of mask PNGs (with --masks)")
    p.add_argument("--image-list", metavar="FILE", help="ImageIDs to keep, one per line (the VCM subset)")
    p.add_argument("--category-map", metavar="CSV",
                   help="LabelName,category_id,name: map labels onto the task network's categories (as the VCM "
                        "subsets map onto COCO's); labels left out are not evaluated")
    p.add_argument("--out", required=True, metavar="JSON", help="COCO JSON to write")
    p.set_defaults(func=_convert)
