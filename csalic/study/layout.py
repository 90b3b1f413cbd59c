"""Where a study's files live: one function per artefact, shared by the CLI, Snakemake and DVC.

Everything of a study sits under ``results/<study>/``; the paths are plain
strings so the Snakefile can use them as rule outputs unchanged.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import CsalicError

WARMUP = "warmup"
LAMBDA_JOB = r"lambda_[0-9.eE+-]+?(?:-seed_[0-9]+)?"  # the study's seed has no suffix; another seed's job does
JOB_PATTERN = f"{WARMUP}|{LAMBDA_JOB}"  # a variant's job folders: Snakemake's {job} wildcard


def lambda_tag(lmbda: float) -> str:
    """0.0025 -> '0.0025': the short decimal form used in paths and run names."""
    return f"{float(lmbda):g}"


def root(params: dict) -> Path:
    return Path("results") / params["study"]


#: the report's folders, each under the study's own root: two studies never write each other's tables
REPORT_DIRS = ("tables", "figures", "curves", "metrics", "plots")


def report_dir(params: dict) -> Path:
    """Where the report writes Tables 1-3, the figures, the curves and DVC's metrics and plots files."""
    return root(params)


def report_files(params: dict) -> dict[str, list[str]]:
    """The report's outputs by kind (the Snakemake rule's outputs, dvc.yaml's outs, metrics and plots)."""
    out = report_dir(params)
    return {"tables": [str(out / "tables" / f"table{n}.{ext}") for n in (1, 2, 3) for ext in ("md", "tex", "csv")],
            "figures": [str(out / "figures" / f"{name}.{ext}") for name in ("rate_accuracy", "ablation")
                        for ext in ("png", "pdf")],
            "metrics": [str(out / "metrics" / "bd.json"), str(out / "metrics" / "points.json"),
                        str(out / "plots" / "rate_accuracy.csv")]}


def data_dir(params: dict) -> Path:
    """The data stage's output: the demo's sets, or the filtered COCO manifest."""
    return root(params) / "data"


def demo_data(params: dict) -> Path:
    return data_dir(params) / "demo"


def train_manifest(params: dict) -> Path:
    """Manifest of training images (paths relative to :func:`train_image_root`)."""
    if params["mode"] == "demo":
        return demo_data(params) / "manifest_train.csv"
    return data_dir(params) / "coco_train_manifest.csv"


def train_image_root(params: dict) -> Path:
    if params["mode"] == "demo":
        return demo_data(params)
    return Path(params["data"]["coco_root"]) / "train2017"


def task_net(params: dict) -> Path:
    """The task network's weights: the demo's own, or the configured file in paper mode."""
    if params["task"].get("weights"):
        return Path(params["task"]["weights"])
    return task_net_dir(params) / "demo_task_net.pt"


def task_net_dir(params: dict) -> Path:
    """The task_net stage's output: the demo network's weights and, always, its info.json."""
    return root(params) / "task_net"


def learned(params: dict) -> dict[str, dict]:
    """The study's learned codecs, name -> entry ({codec, args}): trained beside the variants."""
    return dict(params.get("learned") or {})


def trained(params: dict) -> list[str]:
    """Every method the study trains: its CSA-LIC variants, then its learned codecs."""
    return list(params["variants"]) + list(learned(params))


def method(name: str) -> str:
    """A trained method's name in tables and MLflow: ``csalic-<variant>``, or a learned codec's own name."""
    from ..names import trained_method

    return trained_method(name)


def variant_dir(params: dict, variant: str) -> Path:
    """A variant's training jobs, one folder each (:func:`job_name`)."""
    return root(params) / "train" / variant


def train_seeds(params: dict) -> list[int | None]:
    """The training seeds of each (variant, λ): None for the study's own seed (first), then the others."""
    seeds = params["train"].get("seeds") or [params["seed"]]
    return [None] + [int(s) for s in seeds if s != params["seed"]]


def check_seed(params: dict, seed: int | None, what: str, plain: str) -> None:
    """A seed named in a job's or point's name: one of ``train.seeds`` other than the study's own,
    whose names go without the suffix (``plain``); else a one-line error."""
    if seed is None:
        return
    if seed == params["seed"]:
        raise CsalicError(f"{what}: seed {seed} is the study's own seed, named without a seed suffix: {plain}")
    if seed not in train_seeds(params):
        others = ", ".join(str(s) for s in train_seeds(params)[1:]) or "none"
        raise CsalicError(f"{what}: seed {seed} is not one of train.seeds (other than the study's seed "
                          f"{params['seed']}: {others})")


def seed_of(params: dict, seed: int | None) -> int:
    """The seed a job trains with: the study's for None."""
    return int(params["seed"]) if seed is None else int(seed)


def job_name(lmbda: float | None, seed: int | None = None) -> str:
    """A job's folder under its variant: ``lambda_<λ>`` (``lambda_<λ>-seed_<s>`` under another seed than
    the study's), or ``warmup`` for the warm-up (None)."""
    if lmbda is None:
        return WARMUP
    return f"lambda_{lambda_tag(lmbda)}" + ("" if seed is None else f"-seed_{int(seed)}")


def parse_job(name: str) -> tuple[float | None, int | None]:
    """``lambda_0.001-seed_1`` -> (0.001, 1), ``lambda_0.001`` -> (0.001, None), ``warmup`` -> (None, None)."""
    m = re.fullmatch(r"lambda_([0-9.eE+-]+?)(?:-seed_([0-9]+))?", str(name))
    if name == WARMUP:
        return None, None
    if m:
        try:
            return float(m.group(1)), None if m.group(2) is None else int(m.group(2))
        except ValueError:
            pass
    raise CsalicError(f"job {name!r} is not warmup, lambda_<λ> or lambda_<λ>-seed_<s> (e.g. lambda_0.001)")


def parse_job_name(name: str) -> float | None:
    """``lambda_0.001`` -> 0.001, ``warmup`` -> None: the λ of :func:`job_name`."""
    return parse_job(name)[0]


def job_dir(params: dict, variant: str, lmbda: float, seed: int | None = None) -> Path:
    return variant_dir(params, variant) / job_name(lmbda, seed)


def uses_warmup(params: dict) -> bool:
    """``train.init: warmup``: each λ is fine-tuned from one warm-up job of its variant."""
    return params["train"].get("init", "scratch") == "warmup"


def uses_pretrained(params: dict) -> bool:
    """``train.init: pretrained``: each λ is fine-tuned from a committed warm-start checkpoint of its variant."""
    return params["train"].get("init", "scratch") == "pretrained"


def pretrained_checkpoint(params: dict, variant: str) -> Path:
    """``<train.pretrained>/<variant>.pt``, written by ``csalic pretrain``."""
    return Path(params["train"].get("pretrained") or "pretrained/demo") / f"{variant}.pt"


def warmup_source(params: dict, variant: str) -> Path | None:
    """``<train.warmup_from>/<variant>.pt``, what a warm-up continues; None: it starts from scratch."""
    src = params["train"].get("warmup_from")
    return Path(src) / f"{variant}.pt" if src else None


def warmup_dir(params: dict, variant: str) -> Path:
    return variant_dir(params, variant) / job_name(None)


def ray_registry(params: dict) -> Path:
    return Path("results") / ".ray"


def effective_params(params: dict) -> Path:
    """The study description the DAG's commands read (Snakemake writes its merged config here)."""
    return root(params) / "params.yaml"


def demo_openimages(params: dict) -> Path:
    """The demo's OpenImages-format set, as the data stage generates it (``csalic.data.demo_openimages``)."""
    return root(params) / "data" / "demo_oi"


def converted_openimages(params: dict) -> Path:
    """What the convert_openimages stage writes: one COCO JSON per OpenImages-format set."""
    return root(params) / "openimages"


def dataset(params: dict, name: str) -> tuple[Path, Path]:
    """(image folder, COCO-format annotation JSON) of an evaluation dataset."""
    if name == "demo_val":
        d = demo_data(params)
        return d / "val", d / "annotations" / "instances_val.json"
    if name == "demo_oi":
        return demo_openimages(params) / "validation", converted_openimages(params) / "demo_oi.json"
    if name == "coco2017_val":
        root_ = Path(params["data"]["coco_root"] or "COCO_ROOT_NOT_SET")
        return root_ / "val2017", root_ / "annotations" / "instances_val2017.json"
    if name in ("openimages_det", "openimages_seg"):
        sub = "detection" if name == "openimages_det" else "segmentation"
        root_ = Path(params["data"]["openimages_root"] or "OPENIMAGES_ROOT_NOT_SET")
        return root_ / sub / "images", root_ / sub / "annotations.json"
    raise ValueError(f"unknown dataset {name!r}")


OPENIMAGES_SETS = ("demo_oi", "openimages_det", "openimages_seg")


def protocol(params: dict, name: str) -> str:
    """The mAP protocol of a dataset: ``eval.protocol.<name>``, else oid for OpenImages sets, coco for COCO's."""
    chosen = (params["eval"].get("protocol") or {}).get(name)
    return chosen or ("oid" if name in OPENIMAGES_SETS else "coco")


def oid_files(params: dict, name: str):
    """The files the OID protocol reads for an OpenImages set, under the names OpenImages ships."""
    from ..evaluation.oid_scoring import OidFiles

    if name == "demo_oi":
        from ..data.demo_openimages import files

        f = files(demo_openimages(params))
        return OidFiles(f.boxes, f.image_labels, f.hierarchy, f.masks_csv, f.masks)
    if name not in OPENIMAGES_SETS:
        raise ValueError(f"{name!r} is not an OpenImages set")
    d = Path(params["data"]["openimages_root"] or "OPENIMAGES_ROOT_NOT_SET") / (
        "detection" if name == "openimages_det" else "segmentation")
    seg = name == "openimages_seg"
    return OidFiles(d / "validation-annotations-bbox.csv", d / "validation-annotations-human-imagelabels-boxable.csv",
                    d / "bbox_labels_600_hierarchy.json",
                    d / "validation-annotations-object-segmentation.csv" if seg else None,
                    d / "validation-masks" if seg else None)


def eval_dir(params: dict, dataset_name: str, point: str) -> Path:
    """One evaluated operating point: ``csalic-full-lambda_0.0025`` or an anchor point like ``hevc-q50``."""
    return root(params) / "eval" / dataset_name / point


def csalic_point(variant: str, lmbda: float, seed: int | None = None) -> str:
    """A trained point's folder: ``csalic-full-lambda_0.001``, or ``mbt2018-mean-lambda_0.001`` (learned);
    ``csalic-full-lambda_0.001-seed_1`` under another seed than the study's."""
    return f"{method(variant)}-{job_name(lmbda, seed)}"


def parse_csalic_point(point: str) -> tuple[str, float, int | None] | None:
    """``csalic-full-lambda_0.001`` -> ('full', 0.001, None), ``mbt-lambda_0.01-seed_2`` -> ('mbt', 0.01, 2);
    None for an anchor's point (no anchor point ends in ``-lambda_<λ>``)."""
    m = re.fullmatch(f"(.+?)-({LAMBDA_JOB})", point)
    if m is None:
        return None
    return (m.group(1).removeprefix("csalic-"), *parse_job(m.group(2)))


def complexity_json(params: dict) -> Path:
    return root(params) / "complexity" / f"{params['model']['size']}_full.json"


def task_warm_start_files(params: dict) -> list[Path]:
    """The committed demo task network ``task.warm_start`` names, when it is there (else the stage trains)."""
    from ..names import TASK_WARM_START_PROVENANCE, TASK_WARM_START_WEIGHTS

    warm = params["task"].get("warm_start")
    if params["mode"] != "demo" or not warm:
        return []
    return [p for p in (Path(warm) / TASK_WARM_START_PROVENANCE, Path(warm) / TASK_WARM_START_WEIGHTS) if p.is_file()]


def task_net_info(params: dict) -> Path:
    return task_net_dir(params) / "info.json"
