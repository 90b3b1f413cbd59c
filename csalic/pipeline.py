"""The DAG's stages as functions of a study description.

Each stage resolves paths from ``params.yaml`` (through :mod:`csalic.layout`) and
runs an existing ``csalic`` subcommand in-process with explicit arguments, so the
Snakefile and dvc.yaml only ever say ``csalic <stage> --params FILE [ids]`` and
the logic lives here, tested once.  Paper mode checks that data, weights and
encoders exist before anything runs, naming what is missing and where it goes.
"""

from __future__ import annotations

import re
from pathlib import Path

from . import layout
from .errors import CsalicError
from .io import atomic_write_json
from .names import POINT_PATTERN, QP_CODECS



def _cli(argv: list[str]) -> None:
    from .cli import main

    code = main([str(a) for a in argv])
    if code:
        raise SystemExit(code)


def _require(path: Path, what: str, hint: str) -> None:
    if not path.exists():
        raise CsalicError(f"{what} not found at {path}: {hint}")


def check_paper_inputs(params: dict) -> None:
    """Fail at the start, in one line, when a paper-mode input is missing."""
    if params["mode"] != "paper":
        return
    coco = params["data"]["coco_root"]
    if not coco:
        raise CsalicError("paper mode needs data.coco_root: the folder holding train2017/, val2017/, annotations/")
    root = Path(coco)
    _require(root / "train2017", "COCO train2017 images", "download COCO2017 and set data.coco_root")
    _require(root / "annotations" / "instances_train2017.json", "COCO train annotations",
             "put instances_train2017.json in data.coco_root/annotations/")
    for name in params["eval"]["datasets"]:
        images, ann = layout.dataset(params, name)
        _require(images, f"{name} images", "see README, 'The paper study', for the expected layout")
        _require(ann, f"{name} annotations", "see README, 'The paper study' (csalic convert-openimages for OpenImages)")
    weights = params["task"]["weights"]
    if not weights or not Path(weights).is_file():
        raise CsalicError(f"paper mode needs task.weights: the {params['task']['name']} weights file "
                          f"({weights or 'not set'}) is missing; download it and set task.weights")
    if any(p.startswith("vvc") for p in params["anchors"]["points"]):
        from .anchors import vvc_status

        ok, why = vvc_status(params["anchors"].get("vvc_encoder"))
        if not ok:
            raise CsalicError(f"VVC anchor points are listed but no VVC encoder was found: {why}")


def prepare_data(params: dict) -> None:
    check_paper_inputs(params)
    if params["mode"] == "demo":
        d = params["data"]["demo"]
        _cli(["demo-data", "--out", layout.demo_data(params), "--train", d["train"], "--val", d["val"],
              "--size", f"{d['width']}x{d['height']}", "--seed", params["seed"]])
        # always (a second or two), so that listing demo_oi in eval.datasets never regenerates the data
        from .data.demo_openimages import generate_openimages_demo

        f = generate_openimages_demo(layout.demo_openimages(params), n=d.get("openimages_val", 16),
                                     seed=params["seed"])
        print(f"OpenImages-format demo set in {f.root}: {f.n_images} images, {f.n_objects} objects")
        return
    root = Path(params["data"]["coco_root"])
    _cli(["filter-coco", "--annotations", root / "annotations" / "instances_train2017.json",
          "--images", root / "train2017", "--out", layout.train_manifest(params),
          "--min-side", params["data"]["min_side"], "--rule", params["data"]["rule"]])


def prepare_openimages(params: dict) -> Path:
    """Convert the demo's OpenImages-format set to COCO JSON with ``convert-openimages``'s library call.

    ``demo_oi`` goes through the masks CSV (its boxes come with the masks, so one file serves
    detection and segmentation) and the category map onto the demo network's classes.  A paper
    study brings its converted sets (README, 'The paper study') and writes only ``none.json``
    here (DVC runs every stage it declares).
    """
    from .data.demo_openimages import files
    from .data.openimages import convert_openimages

    out = layout.converted_openimages(params)
    if params["mode"] != "demo":
        if "demo_oi" in params["eval"]["datasets"]:
            raise CsalicError("eval.datasets: demo_oi is the demo's generated set; a paper study evaluates "
                              "openimages_det and openimages_seg (README, 'The paper study')")
        atomic_write_json(out / "none.json", {"converted": [], "why": "paper mode: the OpenImages sets come "
                                              "converted (data.openimages_root)"})
        return out
    f = files(layout.demo_openimages(params))
    target = layout.dataset(params, "demo_oi")[1]
    _, s = convert_openimages(f.images, f.classes, masks_csv=f.masks_csv, mask_dir=f.masks,
                              image_list=f.image_list, category_map=f.category_map, out=target)
    print(f"{target}: {s['images']} images, {s['annotations']} annotations of {s['categories']} categories "
          f"({s['unmapped_annotations']} of unmapped labels left out)")
    return out


def prepare_task_net(params: dict) -> None:
    """Demo: train the demo's own task network.  Paper: check and describe the configured one.

    The demo network trains on ``task.demo_threads`` threads whatever the machine: a different
    thread count sums in another order and gives another network, so Snakemake and DVC, on any
    number of cores, must agree on it through the study file.
    """
    threads = int(params["task"].get("demo_threads", 1))
    info_path = layout.task_net_info(params)
    if params["mode"] == "demo" and not params["task"]["weights"]:
        if params["task"]["name"] != "demo_mask_rcnn":
            raise CsalicError("demo mode without task.weights trains the demo network: set task.name: demo_mask_rcnn")
        out = layout.task_net(params)
        _cli(["train-task-net", "--data", layout.demo_data(params), "--out", out,
              "--steps", params["task"]["demo_steps"], "--seed", params["seed"], "--threads", threads, "--quiet"])
        from .commands.tasks import metrics_path

        import json

        metrics = json.loads(metrics_path(out).read_text())
    else:
        check_paper_inputs(params)
        metrics = {}
    from .tasks import load_task_network

    net = load_task_network(params["task"]["name"], layout.task_net(params))
    atomic_write_json(info_path, {"task_network": net.describe(), "uncompressed_val": metrics})


def parse_point(point: str) -> tuple[str, int | None]:
    """``vvc-qp57`` -> (``vvc``, 57); ``hevc-qp45`` -> (``hevc-qp``, 45); ``jpeg-q10`` -> (``jpeg``, 10)."""
    if not re.fullmatch(POINT_PATTERN, point):
        raise CsalicError(f"anchor point {point!r} is not none, hevc-qN, jpeg-qN, webp-qN, avif-qN, vvc-qpN "
                          "or hevc-qpN")
    if point == "none":
        return "none", None
    codec, setting = point.split("-", 1)
    if setting.startswith("qp"):
        codec = "hevc-qp" if codec == "hevc" else codec
        value = int(setting[2:])
        if value > QP_CODECS[codec]:
            raise CsalicError(f"anchor point {point!r}: QP above {QP_CODECS[codec]}")
        return codec, value
    return codec, int(setting[1:])


def evaluate_point(params: dict, params_file: str, dataset: str, *, variant: str | None = None,
                   lmbda: float | None = None, anchor: str | None = None, track: bool = True,
                   inputs: dict | None = None) -> Path:
    """Evaluate one trained codec or one anchor point on one dataset; returns the output folder.

    The folder also gets ``inputs.json``, what the result depends on, so that ``eval-points``
    can tell a current result from a stale one.
    """
    if (anchor is None) == (variant is None or lmbda is None):
        raise CsalicError("give either --anchor POINT or both --variant and --lmbda")
    if dataset not in params["eval"]["datasets"]:
        raise CsalicError(f"dataset {dataset!r} is not in eval.datasets ({', '.join(params['eval']['datasets'])})")
    images, ann = layout.dataset(params, dataset)
    argv = ["evaluate", "--images", images, "--annotations", ann, "--dataset-name", dataset,
            "--task-net", params["task"]["name"], "--task-weights", layout.task_net(params),
            "--params", params_file, "--device", params["eval"]["device"], "--threads", 1, "--quiet"]
    if params["eval"]["max_images"]:
        argv += ["--max-images", params["eval"]["max_images"]]
    if anchor is not None:
        codec, value = parse_point(anchor)
        out = layout.eval_dir(params, dataset, anchor)
        argv += ["--codec", codec, "--out", out]
        if codec in ("vvc", "hevc-qp"):
            argv += ["--qp", value]
        elif value is not None:
            argv += ["--quality", value]
    else:
        checkpoint = layout.job_dir(params, variant, lmbda) / "final.pt"
        _require(checkpoint, f"trained codec {variant} λ={lmbda:g}", "run its training stage first")
        out = layout.eval_dir(params, dataset, layout.csalic_point(variant, lmbda))
        argv += ["--codec", "csalic", "--checkpoint", checkpoint, "--out", out]
    _cli(argv)
    from .eval_sweep import common_inputs, point_inputs, write_inputs

    if inputs is None:
        inputs = point_inputs(params, common_inputs(params, dataset), variant=variant, lmbda=lmbda, anchor=anchor)
    write_inputs(out, inputs)
    if not track:
        return out
    from .tracking_results import log_evaluation, warn

    try:  # from the driver side, as training is logged: a store that is down loses nothing
        log_evaluation(out / "summary.json", params)
    except CsalicError as exc:
        warn(f"{dataset} {out.name}", exc)
    return out


def measure_complexity(params: dict) -> Path:
    c = params["complexity"]
    out = layout.complexity_json(params)
    _cli(["complexity", "--size", params["model"]["size"], "--variant", "full", "--height", c["height"],
          "--width", c["width"], "--latency", "--runs", c["latency_runs"], "--warmup", 1, "--threads", 1,
          "--device", c["device"], "--json", "--out", out])
    return out


def anchor_method(params: dict) -> str:
    """VVC-Intra when its points are evaluated, else HEVC-Intra, else the first other anchor listed."""
    codecs = [parse_point(p)[0] for p in params["anchors"]["points"]]
    for preferred in ("vvc", "hevc-qp", "hevc"):
        if preferred in codecs:
            return preferred
    others = [c for c in codecs if c != "none"]
    if not others:
        raise CsalicError("anchors.points lists no codec to compare against (only 'none'): add hevc-qN or vvc-qpN")
    return others[0]


def study_summaries(params: dict) -> list[Path]:
    """The result of every point the study lists, and only those: a folder left by an earlier λ or
    QP list (DVC keeps its evaluation folders between runs) is not the study's."""
    from .eval_sweep import study_points

    files, missing = [], []
    for dataset in params["eval"]["datasets"]:
        for name, _ in study_points(params):
            f = layout.eval_dir(params, dataset, name) / "summary.json"
            (files if f.is_file() else missing).append(f)
    if missing:
        raise CsalicError(f"{len(missing)} point(s) not evaluated yet, e.g. {missing[0].parent}: "
                          "run their evaluation stage first")
    return sorted(files)


def report(params: dict) -> None:
    """Tables, figures, curves and the DVC metrics and plots files; then the same results to MLflow."""
    from .report import study_metrics, write_report
    from .tracking_results import log_report, warn

    study, written = write_report(study_summaries(params), "results",
                                  published=params["anchors"]["published"],
                                  complexity=[layout.complexity_json(params)], anchor=anchor_method(params))
    print(f"{len(written)} files under results/ (anchor: {study.label(study.anchor)})")
    try:
        log_report(params, study_metrics(study), "results", written)
    except CsalicError as exc:
        warn("the report", exc)


def write_effective_params(params: dict) -> Path:
    """Dump the merged config for the commands, rewriting only on change (keeps Snakemake's mtimes)."""
    import yaml

    path = layout.effective_params(params)
    text = yaml.safe_dump(params, sort_keys=False)
    if not path.is_file() or path.read_text() != text:
        from .io import atomic_write_text

        atomic_write_text(path, text)
    return path
