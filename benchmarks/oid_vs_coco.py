"""demo_oi's points rescored by COCO's protocol (pycocotools) from the same detections, then Tables 1-2 again.

    python benchmarks/oid_vs_coco.py <a checkout where ./run.sh demo ran>

Bounding boxes are scored on the boxes CSV converted with group-of boxes as ``iscrowd`` (the way the
study scored demo_oi before it used the Open Images protocol), masks on the study's converted JSON.
Prints each point's mAP@0.5 under both protocols and Table 1's rows under COCO's.
"""
import json, shutil, sys, tempfile
from pathlib import Path
from csalic.data.demo_openimages import files
from csalic.data.openimages import convert_openimages
from csalic.metrics.detection import map50_all
from pycocotools.coco import COCO
import contextlib, io

if len(sys.argv) != 2:
    sys.exit(__doc__)
root = Path(sys.argv[1])
f = files(root / "results/demo/data/demo_oi")
boxes_json, _ = convert_openimages(f.images, f.classes, boxes_csv=f.boxes, image_list=f.image_list, category_map=f.category_map)
masks_json = json.loads((root / "results/demo/openimages/demo_oi.json").read_text())
def coco(d):
    with contextlib.redirect_stdout(io.StringIO()):
        c = COCO(); c.dataset = d; c.createIndex(); return c
cb, cm = coco(boxes_json), coco(masks_json)
out = Path(tempfile.mkdtemp())
shutil.copytree(root / "results/demo/eval", out / "eval")
for d in sorted((out / "eval/demo_oi").iterdir()):
    s = json.loads((d / "summary.json").read_text())
    dets = json.loads((d / "detections.json").read_text())
    ids = [im["id"] for im in masks_json["images"]]
    b = map50_all(cb, dets, ids, segmentation=False)["map50_bbox"]
    m = map50_all(cm, dets, ids, segmentation=True)["map50_segm"]
    print(f"{d.name:32s} oid {s['map50_bbox']:.3f}/{s['map50_segm']:.3f}  coco {b:.3f}/{m:.3f}")
    s.update(map50_bbox=b, map50_segm=m, protocol="coco")
    (d / "summary.json").write_text(json.dumps(s))
from csalic.evaluation.report import write_report
write_report([out / "eval"], out / "report")
t = (out / "report/tables/table1.md").read_text()
print("\n".join(l[:260] for l in t.splitlines() if l.startswith(("| Method", "| Proposed", "| HEVC"))))
t2 = (out / "report/tables/table2.md").read_text()
print("\n".join(l for l in t2.splitlines() if l.startswith("| ")))
