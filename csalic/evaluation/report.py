"""The paper's Tables 1-3 and Figure 5, rebuilt from result files (never from MLflow).

Input: the ``summary.json`` files that ``csalic evaluate`` writes, found by walking
the folders given (any depth; the suggested layout is
``results/<study>/eval/<dataset>/<method>/<setting>/summary.json``).  Each
summary names its own dataset, method and setting, so the folder names are only
a convention.  Methods: ``vvc``, ``hevc-qp``, ``hevc``, ``jpeg``, ``webp``, ``avif``, ``none``
(uncompressed ceiling), ``csalic-<variant>``; published methods come from a
file (:mod:`csalic.evaluation.anchors.published`); Table 3 reads ``csalic complexity --json``
output files.

Output (``write_report``): ``<out>/tables/table{1,2,3}.{md,tex,csv}``,
``<out>/figures/rate_accuracy.{png,pdf}`` and ``<out>/curves/<dataset>/<method>.json``
(CompressAI results-JSON curves).

BD numbers use :mod:`csalic.metrics.bd` with pchip, BD-mAP in percentage points,
and the Pareto rule for non-monotonic curves; every cell computed from a flagged
curve (dominated points dropped, partial overlap) carries a numbered note, and a
cell that cannot be computed shows ``n/a`` with the reason -- never a silent number.
Datasets map to the paper's columns: ``coco2017_val`` -> COCO2017,
``openimages_det``/``openimages_seg`` -> OpenImagesV6 detection/segmentation; any
other dataset is its own column group: the demo's ``demo_val`` stands in for
COCO2017 (for both of the paper's datasets when it is alone) and ``demo_oi``, its
OpenImages-format set, for OpenImagesV6.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from . import paper_numbers as paper
from ..errors import CsalicError
from .evaluate import load_summary, merge_compressai, method_label
from .intervals import ImageBootstrap, NoInterval
from ..metrics.bootstrap import Interval
from ..io import atomic_path, atomic_write_json, atomic_write_text, read_json_object

TASKS = ("detection", "segmentation")
METRIC = {"detection": "map50_bbox", "segmentation": "map50_segm"}
TASK_SHORT = {"detection": "Det.", "segmentation": "Seg.", "average": "Avg."}
DATASET_GROUPS = {"coco2017_val": ("COCO2017", TASKS), "openimages_det": ("OpenImagesV6", ("detection",)),
                  "openimages_seg": ("OpenImagesV6", ("segmentation",))}
GROUP_ORDER = ("COCO2017", "OpenImagesV6", "demo_val", "demo_oi")
# the paper's dataset whose numbers are shown beside a reproduced column group
PAPER_DATASET = {"COCO2017": "COCO2017", "OpenImagesV6": "OpenImagesV6", "demo_val": "COCO2017",
                 "demo_oi": "OpenImagesV6"}
DEMO_SETS = ("demo_val", "demo_oi")
ABLATION_ORDER = ("baseline", "no_casc", "concat", "full")
ANCHOR_ORDER = ("vvc", "hevc-qp", "hevc", "jpeg", "webp", "avif")
PUBLISHED_ORDER = ("LALIC", "SMIC-Net", "UG-ICM")
BD_METHOD = "pchip"
POINT_FIELDS = ("bpp", "psnr_rgb", "map50_bbox", "map50_segm")
SEED_SUFFIX = re.compile(r"-seed_\d+$")  # a point trained under another seed than the study's
DEMO_NOTE = ("Demo study: the generated demo val set stands in for both COCO2017 and OpenImagesV6 and the task "
             "network is the demo's own (trained on generated data), so these numbers are not comparable with "
             "the paper's.")
DEMO_NOTE_TWO_SETS = (
    "Demo study: the generated demo_val (COCO format) stands in for COCO2017, and demo_oi (generated in OpenImages "
    "V6's files, converted by csalic convert-openimages, its labels mapped onto the task network's classes) for "
    "OpenImagesV6; the task network is the demo's own (trained on generated data), so these numbers are not "
    "comparable with the paper's.")


# ----------------------------------------------------------------------------- collecting results

@dataclass
class RateCurve:
    bpp: list[float]
    quality: list[float]  # mAP@0.5 in [0, 1]
    settings: list[str]
    published: bool = False
    sources: list[str] = field(default_factory=list)  # each point's summary.json (its matches.npz beside it)


@dataclass
class Study:
    curves: dict[tuple[str, str, str], RateCurve]  # (dataset, method, task)
    ceilings: dict[tuple[str, str], float]  # (dataset, task) -> uncompressed mAP
    groups: dict[str, dict[str, str]]  # column group -> task -> dataset
    anchor: str
    anchor_note: str
    methods: list[str]  # evaluated methods
    published_methods: list[str]
    task_nets: dict[tuple[str, str], str]
    demo: bool = False
    sources: list[str] = field(default_factory=list)
    tools: dict[str, str] = field(default_factory=dict)  # method -> label naming its tool and version
    points: list[dict[str, Any]] = field(default_factory=list)  # one row per evaluated point (DVC plots, metrics)
    protocols: dict[str, str] = field(default_factory=dict)  # evaluated dataset -> mAP protocol (coco, oid)
    bootstrap: ImageBootstrap | None = None  # None or 0 resamples: no intervals
    seed_curves: dict[tuple[str, str, str], dict[int | None, RateCurve]] = field(default_factory=dict)  # >1 seed
    _cells: dict[tuple, "Cell"] = field(default_factory=dict, repr=False)

    def curve(self, dataset: str, method: str, task: str) -> RateCurve | None:
        return self.curves.get((dataset, method, task))

    def label(self, method: str) -> str:
        """Row and legend label: the tool and its version where the results name them."""
        return self.tools.get(method) or _label(method)


def find_summaries(paths: Sequence[str | Path]) -> list[Path]:
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            found.extend(sorted(p.rglob("summary.json")))
        else:
            raise CsalicError(f"results folder {p} does not exist")
    if not found:
        raise CsalicError(f"no summary.json under {', '.join(map(str, paths))}: run csalic evaluate first")
    return found


def _choose_nets(summaries: list[dict], wanted: dict[str, str]) -> dict[tuple[str, str], str]:
    nets: dict[tuple[str, str], set[str]] = defaultdict(set)
    for s in summaries:
        for task in TASKS:
            if s.get(METRIC[task]) is not None:
                nets[(s["dataset"], task)].add(str(s.get("task_net")))
    chosen = {}
    for (ds, task), names in sorted(nets.items()):
        want = wanted.get(task)
        if want:
            if want not in names:
                raise CsalicError(f"no {task} results from task network {want} on {ds} "
                                  f"(found: {', '.join(sorted(names))})")
            chosen[(ds, task)] = want
        elif len(names) == 1:
            chosen[(ds, task)] = next(iter(names))
        else:
            raise CsalicError(f"{ds} has {task} results from several task networks ({', '.join(sorted(names))}): "
                              f"choose one with --{task}-task-net")
    return chosen


def _with_study_seed(summaries: list[dict]) -> list[dict]:
    """Give a trained point evaluated before summaries recorded the training seed the seed of its
    method's other points in folders without a ``-seed_`` suffix (the study's own seed), so that old and
    new points of one method stay one curve instead of two "seeds"."""
    own: dict[tuple[str, str], set[int]] = defaultdict(set)
    for s in summaries:
        if s.get("seed") is not None and not SEED_SUFFIX.search(Path(s["_path"]).parent.name):
            own[(s["dataset"], s["method"])].add(int(s["seed"]))
    for s in summaries:
        seeds = own.get((s["dataset"], s["method"]), set())
        if s.get("seed") is None and len(seeds) == 1:
            s["seed"] = next(iter(seeds))
    return summaries


def collect(paths: Sequence[str | Path], published: str | Path | None = None, anchor: str = "auto",
            task_nets: dict[str, str] | None = None, bootstrap: ImageBootstrap | None = None) -> Study:
    """Load every summary under ``paths`` (+ published points) into rate-accuracy curves."""
    from .anchors.published import load_published, published_curves

    files = find_summaries(paths)
    summaries = _with_study_seed([load_summary(p) for p in files])
    chosen = _choose_nets(summaries, task_nets or {})
    pts: dict[tuple[str, str, str, int | None], list[tuple[float, float, str, str]]] = defaultdict(list)
    ceilings: dict[tuple[str, str], float] = {}
    seen: dict[tuple, str] = {}
    for s in summaries:
        key = (s["dataset"], s["method"], s.get("task_net"), s["setting"], s.get("seed"))
        if key in seen:
            raise CsalicError(f"two results for {s['dataset']} {s['method']} {s['setting']}: {seen[key]} and "
                              f"{s['_path']}: remove one")
        seen[key] = s["_path"]
        for task in TASKS:
            q = s.get(METRIC[task])
            if q is None or chosen.get((s["dataset"], task)) != s.get("task_net"):
                continue
            if s["method"] == "none":
                ceilings[(s["dataset"], task)] = float(q)
            else:
                pts[(s["dataset"], s["method"], task, s.get("seed"))].append(
                    (float(s["bpp"]), float(q), s["setting"], s["_path"]))
    seed_curves: dict[tuple[str, str, str], dict[int | None, RateCurve]] = defaultdict(dict)
    for (ds, m, task, seed), v in sorted(pts.items(), key=lambda kv: (kv[0][:3], -1 if kv[0][3] is None else kv[0][3])):
        b, q, st, src = (list(col) for col in zip(*sorted(v)))
        seed_curves[(ds, m, task)][seed] = RateCurve(b, q, st, sources=src)
    # a method's curve in the figures: the study's own seed's (its points' folders carry no -seed_
    # suffix), else its lowest seed's; the tables average over its seeds
    curves = {k: next((c for c in by_seed.values() if not any(SEED_SUFFIX.search(Path(p).parent.name)
                                                                for p in c.sources)), next(iter(by_seed.values())))
              for k, by_seed in seed_curves.items()}
    methods = sorted({m for _, m, _ in curves})
    pub_methods: list[str] = []
    if published:
        for (m, ds, task), (b, q) in published_curves(load_published(published)).items():
            if m in methods:
                raise CsalicError(f"published method {m!r} has the same name as an evaluated method: rename it")
            curves[(ds, m, task)] = RateCurve(b, q, ["published"] * len(b), published=True)
            if m not in pub_methods:
                pub_methods.append(m)
    datasets = sorted({s["dataset"] for s in summaries})
    groups: dict[str, dict[str, str]] = {}
    for ds in datasets:
        name, tasks = DATASET_GROUPS.get(ds, (ds, TASKS))
        for task in tasks:
            if task in groups.setdefault(name, {}):
                raise CsalicError(f"datasets {groups[name][task]} and {ds} both fill {name} {task}")
            groups[name][task] = ds
    order = [g for g in GROUP_ORDER if g in groups] + sorted(g for g in groups if g not in GROUP_ORDER)
    groups = {g: groups[g] for g in order}
    found: dict[str, set[str]] = defaultdict(set)
    for s in summaries:
        if label := ((s.get("provenance") or {}).get("codec") or {}).get("label"):
            found[s["method"]].add(str(label))
    tools = {m: " / ".join(sorted(labels)) for m, labels in found.items()}
    points = sorted(({"dataset": s["dataset"], "method": s["method"], "setting": s["setting"], "seed": s.get("seed"),
                      **{k: s.get(k) for k in POINT_FIELDS}} for s in summaries),
                    key=lambda r: (r["dataset"], r["method"], r["bpp"]))
    protocols: dict[str, set[str]] = defaultdict(set)
    for s in summaries:
        protocols[s["dataset"]].add(s.get("protocol", "coco"))
    for ds, found_protocols in protocols.items():
        if len(found_protocols) > 1:
            raise CsalicError(f"{ds} has results scored by several mAP protocols ({', '.join(sorted(found_protocols))})"
                              ": evaluate its points again (csalic stage evaluate)")
    anchor, note = _pick_anchor(anchor, curves, datasets, tools)
    demo = any(s["dataset"] in DEMO_SETS or (s.get("provenance", {}).get("task_net") or {}).get("demo_task_network")
               for s in summaries)
    return Study(curves, ceilings, groups, anchor, note, methods, sorted(pub_methods, key=_published_key), chosen,
                 demo, [str(f) for f in files], tools, points, {d: next(iter(p)) for d, p in sorted(protocols.items())},
                 bootstrap, {k: v for k, v in seed_curves.items() if len(v) > 1})


def _published_key(m: str) -> tuple[int, str]:
    return (PUBLISHED_ORDER.index(m) if m in PUBLISHED_ORDER else len(PUBLISHED_ORDER), m)


def _pick_anchor(anchor: str, curves: dict, datasets: list[str], tools: dict[str, str]) -> tuple[str, str]:
    def covers(m: str) -> bool:
        return all(any((ds, m, t) in curves for t in TASKS) for ds in datasets)

    if anchor == "auto":
        anchor = next((m for m in ("vvc", "hevc-qp", "hevc") if covers(m)), "")
        if not anchor:
            raise CsalicError("no anchor results: evaluate VVC-Intra (--codec vvc) or HEVC-Intra (--codec hevc-qp "
                              f"or hevc) on every dataset ({', '.join(datasets)}), or name another method with "
                              "--anchor")
    elif not covers(anchor):
        raise CsalicError(f"anchor {anchor!r} has no results on every dataset ({', '.join(datasets)})")
    label = tools.get(anchor) or method_label(anchor)
    if anchor == "vvc":
        return anchor, f"Anchor: {label}, the paper's anchor."
    if anchor in ("hevc", "hevc-qp"):
        return anchor, f"Anchor: {label}, standing in for the paper's VVC-Intra (no VVC-Intra results)."
    return anchor, f"Anchor: {label} (not the paper's anchor, which is VVC-Intra)."


# ----------------------------------------------------------------------------- BD cells

@dataclass
class Cell:
    rate: float | None = None
    quality: float | None = None
    notes: list[str] = field(default_factory=list)
    present: bool = True
    # the BD values on each image resample (NaN where not computable) and their intervals
    rate_samples: np.ndarray | None = None
    quality_samples: np.ndarray | None = None
    rate_ci: Interval | None = None
    quality_ci: Interval | None = None
    # several training seeds: the values above are their mean; each seed's (rate, quality) and the spread
    per_seed: dict[int, tuple[float | None, float | None]] = field(default_factory=dict)

    def seed_sd(self, kind: str) -> float | None:
        """The standard deviation over seeds (n - 1) of the rate or quality, where every seed has one."""
        vals = [v[0 if kind == "rate" else 1] for v in self.per_seed.values()]
        if len(vals) < 2 or any(v is None for v in vals):
            return None
        return float(np.std(vals, ddof=1))

    def with_intervals(self, boot: ImageBootstrap | None) -> "Cell":
        if boot is not None:
            self.rate_ci, self.quality_ci = boot.interval(self.rate_samples), boot.interval(self.quality_samples)
            for ci in (self.rate_ci, self.quality_ci):
                if ci is not None and (n := ci.note()) and n not in self.notes:
                    self.notes.append(n)
        return self


def _bd_fns():
    from ..metrics.bd import MAP_SCALE, bd_quality_result, bd_rate_result

    def fn(kind):
        f = bd_rate_result if kind == "rate" else bd_quality_result
        return lambda ar, aq, tr, tq: f(ar, aq, tr, tq, BD_METHOD, monotonic="pareto", quality_scale=MAP_SCALE)
    return {"rate": fn("rate"), "quality": fn("quality")}


def bd_cell(study: Study, dataset: str | None, method: str, task: str) -> Cell:
    """BD-rate (%) and BD-mAP (pp) of ``method`` against the study's anchor on one dataset and task,
    with their image-bootstrap intervals when the study has a bootstrap (computed once per study)."""
    key = (dataset, method, task)
    if key not in study._cells:
        study._cells[key] = _bd_cell(study, dataset, method, task)
    return study._cells[key]


def _bd_cell(study: Study, dataset: str | None, method: str, task: str) -> Cell:
    by_seed = study.seed_curves.get((dataset, method, task)) if dataset else None
    if not by_seed or study.curve(dataset, study.anchor, task) is None:
        return _seed_cell(study, dataset, method, task, None)
    cells = {seed: _seed_cell(study, dataset, method, task, curve) for seed, curve in by_seed.items()}
    return _mean_over_seeds(cells, study.bootstrap)


def _mean_over_seeds(cells: dict[int | None, Cell], boot: ImageBootstrap | None) -> Cell:
    """One cell from a method's seeds: the mean value, each seed's, and the mean per image resample."""
    def mean(values):
        return None if any(v is None for v in values) else float(np.mean(values))

    parts = list(cells.values())
    out = Cell(mean([c.rate for c in parts]), mean([c.quality for c in parts]),
               list(dict.fromkeys(n for c in parts for n in c.notes)),
               rate_samples=None if any(c.rate_samples is None for c in parts)
               else np.mean([c.rate_samples for c in parts], axis=0),
               quality_samples=None if any(c.quality_samples is None for c in parts)
               else np.mean([c.quality_samples for c in parts], axis=0),
               per_seed={int(s if s is not None else -1): (c.rate, c.quality) for s, c in cells.items()})
    out.notes = [n for n in out.notes if "image resamples" not in n]  # restated for the mean below
    return out.with_intervals(boot)


def _seed_cell(study: Study, dataset: str | None, method: str, task: str, curve: RateCurve | None) -> Cell:
    from ..metrics.bd import BDError

    a = study.curve(dataset, study.anchor, task) if dataset else None
    t = (curve or study.curve(dataset, method, task)) if dataset else None
    if a is None or t is None:
        return Cell(present=False)
    cell = Cell()
    fns = _bd_fns()
    for kind, fn in fns.items():
        try:
            res = fn(a.bpp, a.quality, t.bpp, t.quality)
        except BDError as exc:
            cell.notes.append(f"{'BD-rate' if kind == 'rate' else 'BD-mAP'} not computed: {exc}")
            continue
        setattr(cell, kind, res.value)
        for n in res.notes:
            n = n.replace("anchor:", f"{method_label(study.anchor)}:").replace("test:", f"{_label(method)}:")
            if n not in cell.notes:
                cell.notes.append(n)
    boot = study.bootstrap
    if boot is None or not boot.enabled:
        return cell
    if t.published or a.published:
        cell.notes.append("no interval: published points carry no per-image results")
        return cell
    try:
        anchor = boot.curve(dataset, study.anchor, task, a.sources)
        test = boot.curve(dataset, method, task, t.sources)  # cached by its sources: one per seed
    except NoInterval as exc:
        cell.notes.append(f"no interval: {exc}")
        return cell
    for kind, fn in fns.items():
        if getattr(cell, kind) is not None:
            setattr(cell, f"{kind}_samples", boot.values(fn, anchor, test))
    return cell.with_intervals(boot)


def _combine(op, x: np.ndarray | None, y: np.ndarray | None) -> np.ndarray | None:
    return None if x is None or y is None else op(x, y)


def average_cell(a: Cell, b: Cell, boot: ImageBootstrap | None = None) -> Cell:
    if not (a.present and b.present):
        return Cell(present=False)

    def mean(x, y):
        return None if x is None or y is None else (x + y) / 2.0

    notes = a.notes + [n for n in b.notes if n not in a.notes]
    return Cell(mean(a.rate, b.rate), mean(a.quality, b.quality), notes,
                rate_samples=_combine(mean, a.rate_samples, b.rate_samples),
                quality_samples=_combine(mean, a.quality_samples, b.quality_samples),
                per_seed=_per_seed(mean, a, b)).with_intervals(boot)


def _per_seed(op, a: Cell, b: Cell) -> dict[int, tuple[float | None, float | None]]:
    """``op`` seed by seed where both cells have the same seeds (else nothing)."""
    if not a.per_seed or set(a.per_seed) != set(b.per_seed):
        return {}
    return {s: (op(a.per_seed[s][0], b.per_seed[s][0]), op(a.per_seed[s][1], b.per_seed[s][1])) for s in a.per_seed}


def difference_cell(a: Cell, b: Cell, boot: ImageBootstrap | None = None) -> Cell:
    """``a`` minus ``b`` (both against the same anchor on the same images), paired resample by resample."""
    if not (a.present and b.present):
        return Cell(present=False)

    def minus(x, y):
        return None if x is None or y is None else x - y

    return Cell(minus(a.rate, b.rate), minus(a.quality, b.quality), [],
                rate_samples=_combine(minus, a.rate_samples, b.rate_samples),
                quality_samples=_combine(minus, a.quality_samples, b.quality_samples),
                per_seed=_per_seed(minus, a, b)).with_intervals(boot)


class Notes:
    """Numbered footnotes shared by the cells of one table."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def mark(self, notes: Iterable[str]) -> str:
        nums = []
        for n in notes:
            if n not in self.items:
                self.items.append(n)
            nums.append(self.items.index(n) + 1)
        return f" [{','.join(map(str, sorted(set(nums))))}]" if nums else ""


def _num(v: float | None, spec: str = ".3f") -> str:
    return "n/a" if v is None else format(v, spec)


def _ci(ci: Interval | None, spec: str) -> str:
    """`` [low, high]`` after a number that has an interval; nothing when the study has no bootstrap."""
    if ci is None:
        return ""
    if ci.low is None:
        return " [n/a]"
    return f" [{format(ci.low, spec)}, {format(ci.high, spec)}]"


def _sd(cell: Cell, kind: str, spec: str) -> str:
    """``±sd`` over training seeds after a mean of several; nothing for one seed."""
    sd = cell.seed_sd(kind)
    return "" if sd is None else f"±{format(sd, spec)}"


def _pair(cell: Cell, notes: Notes) -> str:
    if not cell.present:
        return "—"
    return (f"{_num(cell.rate)}{_sd(cell, 'rate', '.1f')}{_ci(cell.rate_ci, '.1f')}/"
            f"{_num(cell.quality)}{_sd(cell, 'quality', '.2f')}{_ci(cell.quality_ci, '.2f')}{notes.mark(cell.notes)}")


def _ci_fields(cell: Cell) -> dict[str, Any]:
    """The interval columns of a CSV record."""
    out: dict[str, Any] = {}
    for kind, name in (("rate", "bd_rate"), ("quality", "bd_map")):
        ci = getattr(cell, f"{kind}_ci")
        out[f"{name}_low"], out[f"{name}_high"] = (ci.low, ci.high) if ci else (None, None)
        out[f"{name}_ci_used"] = ci.used if ci else None
    ci = cell.rate_ci or cell.quality_ci
    out["ci_level"], out["ci_resamples"] = (ci.level, ci.resamples) if ci else (None, None)
    out["seeds"] = len(cell.per_seed) or None
    out["bd_rate_seed_sd"], out["bd_map_seed_sd"] = cell.seed_sd("rate"), cell.seed_sd("quality")
    return out


DIFF_FIELDS = ["vs_full_bd_rate", "vs_full_bd_map", "vs_full_bd_rate_low", "vs_full_bd_rate_high",
               "vs_full_bd_map_low", "vs_full_bd_map_high"]
CI_FIELDS = ["bd_rate_low", "bd_rate_high", "bd_map_low", "bd_map_high", "ci_level", "ci_resamples",
             "bd_rate_ci_used", "bd_map_ci_used", "seeds", "bd_rate_seed_sd", "bd_map_seed_sd"]


def _paper_pair(v: tuple[float, float] | None) -> str:
    return "—" if v is None else f"{v[0]:.3f}/{v[1]:.3f}"


def _label(method: str) -> str:
    if method == "csalic-full":
        return "Proposed (CSA-LIC)"
    return method_label(method)


# ----------------------------------------------------------------------------- tables

@dataclass
class Table:
    name: str
    caption: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str]
    records: list[dict[str, Any]]
    record_fields: list[str]


def _csv_value(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6f}"
    return "" if v is None else v


PROTOCOLS = {"coco": "COCO's (pycocotools, AP interpolated at 101 recall points)",
             "oid": "the Open Images challenge's (verified image-level labels, group-of boxes, the class hierarchy; "
                    "all-points AP)"}


def bootstrap_share() -> float:
    from ..metrics.bootstrap import MIN_SHARE

    return MIN_SHARE


def _study_notes(study: Study) -> list[str]:
    out = [study.anchor_note]
    if study.demo:
        out.append(DEMO_NOTE_TWO_SETS if "demo_oi" in study.groups else DEMO_NOTE)
    boot = study.bootstrap
    if boot is not None and boot.enabled:
        out.append(f"[low, high]: the {boot.level:.0%} percentile interval of the value over {boot.resamples} paired "
                   f"bootstrap resamples of the evaluation images (seed {boot.seed}): each resample draws the same "
                   "images for every method and the anchor and recomputes every point's bpp and mAP@0.5 on them. "
                   "It covers image sampling only, not training noise or another machine's floats. It rests on the "
                   "resamples where the value could be computed (counted in the CSV and bd.json); a note flags one "
                   f"resting on fewer than {bootstrap_share():.0%} of them.")
    if study.seed_curves:
        seeds = sorted({s for by_seed in study.seed_curves.values() for s in by_seed if s is not None})
        out.append(f"Trained under {len(seeds)} seeds ({', '.join(map(str, seeds))}): a value is the mean of its "
                   "seeds' BD values, ±their standard deviation, and its interval the mean's on each image resample; "
                   "the figures draw the first seed.")
    if study.protocols:
        out.append("mAP@0.5 protocol: " + "; ".join(f"{d} by {PROTOCOLS.get(p, p)}"
                                                     for d, p in study.protocols.items()) + ".")
    return out


def table1(study: Study, show_paper: bool = True) -> Table:
    """BD-rate / BD-mAP of every method against the anchor, per dataset group and task (paper Table 1)."""
    skip = {study.anchor, "none"}
    evaluated = [m for m in ANCHOR_ORDER if m in study.methods and m not in skip]
    evaluated += [m for m in study.methods if m not in skip and m not in ANCHOR_ORDER
                  and not m.startswith("csalic-")]
    published = list(study.published_methods)
    if show_paper:
        published += [m for m in PUBLISHED_ORDER if m not in published]
        published.sort(key=_published_key)
    rows_methods = published + evaluated
    if "csalic-full" in study.methods or show_paper:
        rows_methods.append("csalic-full")
    notes = Notes()
    columns = ["Method"]
    for g in study.groups:
        columns += [f"{g} {TASK_SHORT[t]} η1/η2" for t in (*TASKS, "average")]
        if show_paper and g in PAPER_DATASET:
            columns += [f"Paper {PAPER_DATASET[g]} {TASK_SHORT[t]} η1/η2" for t in (*TASKS, "average")]
    rows, records = [], []
    for m in rows_methods:
        pname = paper.PAPER_NAME.get(m, m)
        row = [study.label(m)]
        for g, tasks in study.groups.items():
            cells = {t: bd_cell(study, tasks.get(t), m, t) for t in TASKS}
            cells["average"] = average_cell(cells["detection"], cells["segmentation"], study.bootstrap)
            pvals = paper.TABLE1.get((pname, PAPER_DATASET.get(g, ""))) if show_paper else None
            row += [_pair(cells[t], notes) for t in (*TASKS, "average")]
            if show_paper and g in PAPER_DATASET:
                row += [_paper_pair((pvals or {}).get(t)) for t in (*TASKS, "average")]
            for t in (*TASKS, "average"):
                c, pv = cells[t], (pvals or {}).get(t)
                if not c.present and pv is None:
                    continue
                records.append({"table": "table1", "dataset": g, "eval_dataset": tasks.get(t, "") if t != "average"
                                else "+".join(sorted(set(tasks.values()))), "task": t, "method": m,
                                "label": study.label(m), "anchor": study.anchor,
                                "bd_rate": c.rate, "bd_map": c.quality, **_ci_fields(c), "notes": "; ".join(c.notes),
                                "paper_dataset": PAPER_DATASET.get(g, "") if pv else "",
                                "paper_bd_rate": pv[0] if pv else None, "paper_bd_map": pv[1] if pv else None})
        rows.append(row)
    caption = (f"Table 1: BD-rate (η1, %) and BD-mAP@0.5 (η2, percentage points) against "
               f"{study.label(study.anchor)}; negative η1 and positive η2 favour the method.")
    general = _study_notes(study) + [
        f"Reproduced columns: {BD_METHOD} Bjøntegaard deltas over this study's (bpp, mAP@0.5) curves; "
        "published methods from their published points. '—': no results; 'n/a': not computable (see note)."]
    if show_paper:
        general.append("'Paper' columns: the values printed in the CSA-LIC paper (anchor VVC-Intra).")
    return Table("table1", caption, columns, rows, general + [f"[{i}] {n}" for i, n in enumerate(notes.items, 1)],
                 records, ["table", "dataset", "eval_dataset", "task", "method", "label", "anchor", "bd_rate",
                           "bd_map", *CI_FIELDS, "notes", "paper_dataset", "paper_bd_rate", "paper_bd_map"])


def table2(study: Study, show_paper: bool = True, group: str | None = None) -> Table:
    """The ablation variants against the anchor on one dataset group (paper Table 2, COCO2017)."""
    from ..names import VARIANT_COMPONENTS as VARIANTS

    if group is None:
        group = "COCO2017" if "COCO2017" in study.groups else next(iter(study.groups))
    if group not in study.groups:
        raise CsalicError(f"no results for dataset {group!r} (have: {', '.join(study.groups)})")
    tasks = study.groups[group]
    notes = Notes()
    columns = ["Variant", "SCSM", "CFTM", "CGM"] + [f"{TASK_SHORT[t]} η1/η2" for t in TASKS]
    columns += [f"{TASK_SHORT[t]} Δη1/Δη2 vs full" for t in TASKS]
    if show_paper:
        columns += [f"Paper {paper.TABLE2_DATASET} {TASK_SHORT[t]} η1/η2" for t in TASKS]
    full = {t: bd_cell(study, tasks.get(t), "csalic-full", t) for t in TASKS}
    rows, records = [], []
    for v in ABLATION_ORDER:
        m = f"csalic-{v}"
        if m not in study.methods and not show_paper:
            continue
        flags = VARIANTS[v]
        row = [v] + ["✓" if flags[k] else "✗" for k in ("scsm", "cftm", "cgm")]
        cells = {t: bd_cell(study, tasks.get(t), m, t) for t in TASKS}
        diffs = {t: difference_cell(cells[t], full[t], study.bootstrap) if v != "full" else Cell(present=False)
                 for t in TASKS}
        row += [_pair(cells[t], notes) for t in TASKS]
        row += [_pair(diffs[t], notes) for t in TASKS]
        pv = paper.TABLE2.get(v, {}) if show_paper else {}
        if show_paper:
            row += [_paper_pair(pv.get(t)) for t in TASKS]
        for t in TASKS:
            c, p, d = cells[t], pv.get(t), diffs[t]
            if c.present or p:
                records.append({"table": "table2", "dataset": group, "task": t, "variant": v,
                                "scsm": flags["scsm"], "cftm": flags["cftm"], "cgm": flags["cgm"],
                                "anchor": study.anchor, "bd_rate": c.rate, "bd_map": c.quality, **_ci_fields(c),
                                **{f"vs_full_{k}": x for k, x in
                                   {"bd_rate": d.rate, "bd_map": d.quality, **_ci_fields(d)}.items()
                                   if f"vs_full_{k}" in DIFF_FIELDS},
                                "notes": "; ".join(c.notes), "paper_bd_rate": p[0] if p else None,
                                "paper_bd_map": p[1] if p else None})
        rows.append(row)
    caption = (f"Table 2: Ablation of CSA-LIC components on {group}: BD-rate (η1, %) and BD-mAP@0.5 (η2, "
               f"percentage points) against {study.label(study.anchor)}.")
    general = _study_notes(study) + ["Variants: baseline (no SCSM/CFTM/CGM), no_casc (CFTM only), concat "
                                     "(SCSM+CGM, channel concatenation instead of CFTM), full.",
                                     "Δη1/Δη2 vs full: the variant's η1 and η2 minus full's, taken on each image "
                                     "resample (paired); an interval that excludes 0 says the order holds on "
                                     "these images (csalic compare names any two methods)."]
    if show_paper:
        general.append(f"'Paper' columns: the paper's Table 2 ({paper.TABLE2_DATASET}, anchor VVC-Intra).")
    return Table("table2", caption, columns, rows, general + [f"[{i}] {n}" for i, n in enumerate(notes.items, 1)],
                 records, ["table", "dataset", "task", "variant", "scsm", "cftm", "cgm", "anchor", "bd_rate",
                           "bd_map", *CI_FIELDS, *DIFF_FIELDS, "notes", "paper_bd_rate", "paper_bd_map"])


def load_complexity(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    d = read_json_object(p, "complexity file", "write it with `csalic complexity --json`")
    if "params" not in d or not ("macs" in d or "flops" in d):
        raise CsalicError(f"{p} lacks params/macs: write it with `csalic complexity --json`")
    return d


def table3(complexity: Sequence[dict[str, Any]], show_paper: bool = True) -> Table:
    """FLOPs/MACs, parameters and coding times (paper Table 3), with the device named."""
    columns = ["Method", "Resolution", "MACs (G)", "FLOPs (G)", "Params (M)", "Encode (s)", "Decode (s)", "Device"]
    if show_paper:
        columns += ["Paper FLOPs (G)", "Paper params (M)", "Paper encode (s)", "Paper decode (s)"]
    rows, records = [], []

    def paper_cols(name: str | None) -> list[str]:
        pv = paper.TABLE3.get(name or "", {})
        return [_num(pv.get(k), ".2f") if pv else "—" for k in ("flops_g", "params_m", "encode_s", "decode_s")]

    if show_paper:
        for name in PUBLISHED_ORDER:
            rows.append([name, "—", "—", "—", "—", "—", "—", "—"] + paper_cols(name))
            records.append({"table": "table3", "method": name,
                            **{f"paper_{k}": v for k, v in paper.TABLE3[name].items()}})
    has_paper_size = False
    for d in complexity:
        variant, size = d.get("variant", "full"), d.get("size", "?")
        has_paper_size |= size == "paper"
        method = f"csalic-{variant}"
        label = f"{_label(method)}, {size} size" if method == "csalic-full" else f"CSA-LIC ({variant}, {size} size)"
        macs = d.get("macs", (d.get("flops") or 0) / 2)
        flops = d.get("flops", macs * 2)
        device = d.get("device_name") or d.get("device") or "—"
        if d.get("threads") and d.get("device", "cpu") == "cpu" and "encode_s" in d:
            device = f"{device}, {d['threads']} thread{'s' if d['threads'] != 1 else ''}"
        pname = paper.PAPER_NAME.get(method) if size == "paper" else None
        row = [label, f"{d.get('width', '?')}x{d.get('height', '?')}", _num(macs / 1e9, ".2f"),
               _num(flops / 1e9, ".2f"), _num(d["params"] / 1e6, ".2f"), _num(d.get("encode_s"), ".3f"), _num(d.get("decode_s"), ".3f"),
               device if "encode_s" in d else "—"]
        if "encode_s" not in d:
            row[5] = row[6] = "—"
        if show_paper:
            row += paper_cols(pname)
        rows.append(row)
        rec = {"table": "table3", "method": method, "size": size, "width": d.get("width"), "height": d.get("height"),
               "macs_g": macs / 1e9, "flops_g": flops / 1e9, "params_m": d["params"] / 1e6,
               "encode_s": d.get("encode_s"), "decode_s": d.get("decode_s"),
               "device": device if "encode_s" in d else None}
        if pname:
            rec.update({f"paper_{k}": v for k, v in paper.TABLE3[pname].items()})
        records.append(rec)
    if show_paper and not any(r.get("method") == "csalic-full" and r.get("size") == "paper" for r in records):
        rows.append([f"{_label('csalic-full')}, paper size"] + ["—"] * 7 + paper_cols("Proposed"))
        records.append({"table": "table3", "method": "csalic-full", "size": "paper",
                        **{f"paper_{k}": v for k, v in paper.TABLE3["Proposed"].items()}})
    notes = ["MACs and FLOPs (= 2 x MACs) counted by `csalic complexity` (torch FlopCounterMode) at the stated "
             "resolution; the paper's 'FLOPs' column matches MACs (see csalic/evaluation/complexity.py).",
             "Times: median per image, entropy coding included, on the device named; the paper's times come from "
             "its own hardware."]
    for d in complexity:
        by_params, by_macs = d.get("params_by_module") or {}, d.get("macs_by_module") or {}
        if by_params:
            order = [m for m in d.get("modules") or [] if m in by_params] or list(by_params)
            parts = [f"{name} {by_params[name] / 1e6:.2f}/{by_macs.get(name, 0) / 1e9:.2f}" for name in order]
            notes.append(f"CSA-LIC {d.get('variant', 'full')}, {d.get('size', '?')} size, by module (params M / MACs G "
                         f"at {d.get('width', '?')}x{d.get('height', '?')}): {', '.join(parts)}.")
    if not complexity:
        notes.append("No complexity results were given (csalic complexity --json): only the paper's values are shown.")
    elif not has_paper_size:
        notes.append("Only demo-size models were measured: not comparable with the paper's model.")
    return Table("table3", "Table 3: Computational complexity.", columns, rows, notes, records,
                 ["table", "method", "size", "width", "height", "macs_g", "flops_g", "params_m", "encode_s",
                  "decode_s", "device", "paper_flops_g", "paper_params_m", "paper_encode_s", "paper_decode_s"])


# ----------------------------------------------------------------------------- rendering

def to_markdown(t: Table) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    lines = [f"**{t.caption}**", "", "| " + " | ".join(map(esc, t.columns)) + " |",
             "|" + "|".join("---" if i == 0 else ":---:" for i in range(len(t.columns))) + "|"]
    lines += ["| " + " | ".join(map(esc, r)) + " |" for r in t.rows]
    if t.notes:
        lines += [""] + [f"{n}  " if i < len(t.notes) - 1 else n for i, n in enumerate(t.notes)]
    return "\n".join(lines) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "✓": r"$\checkmark$", "✗": r"$\times$",
        "—": "---", "ø": r"{\o}", "η": r"$\eta$", "Δ": r"$\Delta$", "−": "-"}


def tex_escape(s: str) -> str:
    out = "".join(_TEX.get(ch, ch) for ch in s)
    out = out.replace(r"$\eta$1", r"$\eta_1$").replace(r"$\eta$2", r"$\eta_2$")
    return out.replace(r"$\Delta$$\eta_1$", r"$\Delta\eta_1$").replace(r"$\Delta$$\eta_2$", r"$\Delta\eta_2$")


def to_latex(t: Table) -> str:
    """A booktabs table (needs \\usepackage{booktabs,amssymb})."""
    spec = "l" + "c" * (len(t.columns) - 1)
    lines = ["% generated by csalic tables; needs \\usepackage{booktabs,amssymb}", "\\begin{table}[t]",
             "\\centering", "\\scriptsize", f"\\caption{{{tex_escape(t.caption)}}}", f"\\label{{tab:{t.name}}}",
             f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
             " & ".join(tex_escape(c) for c in t.columns) + " \\\\", "\\midrule"]
    lines += [" & ".join(tex_escape(c) for c in r) + " \\\\" for r in t.rows]
    lines += ["\\bottomrule", "\\end{tabular}"]
    if t.notes:
        lines += ["\\par\\smallskip\\raggedright\\tiny"] + [tex_escape(n) + ("\\\\" if i < len(t.notes) - 1 else "")
                                                          for i, n in enumerate(t.notes)]
    lines.append("\\end{table}")
    return "\n".join(lines) + "\n"


def to_csv(t: Table) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=t.record_fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in t.records:
        w.writerow({k: _csv_value(r.get(k)) for k in t.record_fields})
    return buf.getvalue()


def write_table(t: Table, out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    written = []
    for ext, fn in (("md", to_markdown), ("tex", to_latex), ("csv", to_csv)):
        p = out / f"{t.name}.{ext}"
        atomic_write_text(p, fn(t))
        written.append(p)
    return written


# ----------------------------------------------------------------------------- figure and curves

def rate_accuracy_figure(study: Study, out_dir: str | Path, name: str = "rate_accuracy") -> list[Path]:
    """mAP@0.5 against bpp per method, one panel per dataset group and task (paper Figure 5)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(g, t, ds) for g, tasks in study.groups.items() for t in TASKS if (ds := tasks.get(t))]
    methods = ([study.anchor] + [m for m in ANCHOR_ORDER if m in study.methods and m != study.anchor]
               + [m for m in study.methods if m not in ANCHOR_ORDER and not m.startswith("csalic-")]
               + list(study.published_methods) + (["csalic-full"] if "csalic-full" in study.methods else []))
    ncols = 2 if len(panels) > 1 else 1
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.8 * nrows), squeeze=False)
    tab10 = plt.get_cmap("tab10")
    colours = [tab10(i) for i in (0, 1, 2, 4, 5, 6, 8, 9)]  # black and red are kept for the anchor and CSA-LIC
    for k, (g, task, ds) in enumerate(panels):
        ax = axes[k // ncols][k % ncols]
        for i, m in enumerate(methods):
            c = study.curve(ds, m, task)
            if c is None:
                continue
            style: dict[str, Any] = {"marker": "o", "lw": 1.2, "ms": 4, "color": colours[i % len(colours)]}
            if m == study.anchor:
                style.update(color="black", marker="s", lw=1.8)
            elif m == "csalic-full":
                style.update(color="tab:red", lw=2.0)
            elif c.published:
                style.update(ls="--", marker="^")
            ax.plot(c.bpp, [q * 100 for q in c.quality], label=study.label(m), **style)
        if (ds, task) in study.ceilings:
            top = study.ceilings[(ds, task)] * 100
            ax.axhline(top, color="grey", ls=":", lw=1, label="Uncompressed")
            ax.set_ylim(top=max(ax.get_ylim()[1], top + 2))
        ax.set_title(f"{g}: {task}", fontsize=10)
        ax.set_xlabel("bpp")
        ax.set_ylabel("mAP@0.5 (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for k in range(len(panels), nrows * ncols):
        axes[k // ncols][k % ncols].axis("off")
    title = f"Rate-accuracy (anchor: {method_label(study.anchor)})"
    fig.suptitle(title + (" - demo study" if study.demo else ""), fontsize=11)
    fig.tight_layout()
    out = Path(out_dir)
    written = []
    for ext in ("png", "pdf"):
        p = out / f"{name}.{ext}"
        with atomic_path(p, suffix=f".{ext}") as tmp:
            fig.savefig(tmp, format=ext, dpi=150, metadata={"CreationDate": None} if ext == "pdf" else None)
        written.append(p)
    plt.close(fig)
    return written


def _ci_json(cell: Cell) -> dict[str, Any]:
    """``bd_rate_ci``/``bd_map_ci`` as [low, high] and the resamples they rest on (absent without a bootstrap)."""
    out: dict[str, Any] = {}
    for kind, name in (("rate", "bd_rate"), ("quality", "bd_map")):
        ci = getattr(cell, f"{kind}_ci")
        if ci is not None:
            out[f"{name}_ci"] = [ci.low, ci.high]
            out[f"{name}_ci_used"] = ci.used
    ci = cell.rate_ci or cell.quality_ci
    if ci is not None:
        out["ci_level"], out["ci_resamples"] = ci.level, ci.resamples
    if cell.per_seed:  # several training seeds: the value is their mean
        out["seeds"] = {("study" if s < 0 else str(s)): {"bd_rate": r, "bd_map": q}  # -1: the study's, seed unrecorded
                        for s, (r, q) in sorted(cell.per_seed.items())}
        out["bd_rate_seed_sd"], out["bd_map_seed_sd"] = cell.seed_sd("rate"), cell.seed_sd("quality")
    return out


def compare(study: Study, a: str, b: str) -> list[dict[str, Any]]:
    """``a`` against ``b`` on every dataset group and task both have: each one's BD values against the
    study's anchor and their paired difference ``a - b``, each with its interval."""
    for m in (a, b):
        if m not in study.methods:
            raise CsalicError(f"no results for method {m!r} (have: {', '.join(x for x in study.methods if x != 'none')})")
    if a == b:  # `compare full csalic-full`: a typo, not a question (the difference is 0 on every resample)
        raise CsalicError(f"A and B are both {a}: name two different methods")
    if study.anchor in (a, b):
        raise CsalicError(f"{study.anchor} is the study's anchor: compare two other methods (or name another anchor)")
    rows = []
    for g, tasks in study.groups.items():
        ca = {t: bd_cell(study, tasks.get(t), a, t) for t in TASKS}
        cb = {t: bd_cell(study, tasks.get(t), b, t) for t in TASKS}
        ca["average"] = average_cell(ca["detection"], ca["segmentation"], study.bootstrap)
        cb["average"] = average_cell(cb["detection"], cb["segmentation"], study.bootstrap)
        for t in (*TASKS, "average"):
            if ca[t].present and cb[t].present:
                rows.append({"dataset": g, "task": t, "a": ca[t], "b": cb[t],
                             "difference": difference_cell(ca[t], cb[t], study.bootstrap)})
    if not rows:
        raise CsalicError(f"{a} and {b} share no dataset and task")
    return rows


def compare_text(study: Study, a: str, b: str) -> str:
    """:func:`compare` as the table ``csalic compare`` prints."""
    def cell(c: Cell, kind: str, unit: str) -> str:
        v, ci = getattr(c, kind), getattr(c, f"{kind}_ci")
        text = "n/a" if v is None else f"{v:+.2f}{unit}"
        if ci is not None:
            text += " [n/a]" if ci.low is None else f" [{ci.low:+.2f}, {ci.high:+.2f}]"
        return text

    def verdict(c: Cell) -> str:
        ci = c.rate_ci
        if ci is None or ci.low is None:
            return "no interval"
        if ci.high < 0:
            return f"{study.label(a)} saves rate"
        if ci.low > 0:
            return f"{study.label(b)} saves rate"
        return "not resolved"

    boot = study.bootstrap
    head = (f"{study.label(a)} (A) against {study.label(b)} (B), both against {study.label(study.anchor)}; "
            + (f"[low, high]: {boot.level:.0%} interval over {boot.resamples} paired image resamples (seed {boot.seed})"
               if boot is not None and boot.enabled else "no intervals (report.resamples is 0)"))
    cols = ["dataset", "task", "A BD-rate %", "B BD-rate %", "A-B BD-rate (points)", "A-B BD-mAP (pp)", "BD-rate order"]
    lines = [head, "", "| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    for r in compare(study, a, b):
        d = r["difference"]
        lines.append(f"| {r['dataset']} | {r['task']} | {cell(r['a'], 'rate', '')} | {cell(r['b'], 'rate', '')} | "
                     f"{cell(d, 'rate', '')} | {cell(d, 'quality', '')} | {verdict(d)} |")
    notes = list(dict.fromkeys(n for r in compare(study, a, b) for c in (r["a"], r["b"]) for n in c.notes))
    return "\n".join(lines + ([""] + [f"- {n}" for n in notes] if notes else [])) + "\n"


def study_metrics(study: Study) -> dict[str, Any]:
    """BD deltas of every method against the anchor (per dataset group and task) and every point:
    what ``results/metrics/`` holds for ``dvc metrics`` and what MLflow's variant runs show."""
    bd: dict[str, dict] = {}
    for m in study.methods:
        if m in (study.anchor, "none"):
            continue
        for g, tasks in study.groups.items():
            cells = {t: bd_cell(study, tasks.get(t), m, t) for t in TASKS}
            cells["average"] = average_cell(cells["detection"], cells["segmentation"], study.bootstrap)
            for t, c in cells.items():
                if c.present:
                    bd.setdefault(m, {}).setdefault(g, {})[t] = {"bd_rate": c.rate, "bd_map": c.quality,
                                                                 **_ci_json(c), "notes": "; ".join(c.notes)}
    seeds: dict[tuple[str, str], set] = defaultdict(set)
    for r in study.points:
        seeds[(r["dataset"], r["method"])].add(r.get("seed"))
    points: dict[str, dict] = {}
    for r in study.points:  # a method trained under several seeds: a point per setting and seed
        key = r["setting"] if len(seeds[(r["dataset"], r["method"])]) == 1 else f"{r['setting']} seed={r['seed']}"
        points.setdefault(r["dataset"], {}).setdefault(r["method"], {})[key] = {k: r[k] for k in POINT_FIELDS}
    return {"anchor": study.anchor, "anchor_label": study.label(study.anchor), "bd": bd, "points": points}


def bd_summary(bd: dict[str, Any], task: str = "detection") -> str:
    """The CSA-LIC variants' BD cells of one task from a study's ``metrics/bd.json`` as one Markdown table,
    a column per variant (the paper's ablation order) and a row per dataset, each value with its
    interval where the study computed one: the summary the README quotes, printed from the results
    rather than typed."""
    from ..names import VARIANT_COMPONENTS

    cells = bd.get("bd") or {}
    by_parts = sorted(VARIANT_COMPONENTS, key=lambda v: sum(VARIANT_COMPONENTS[v].values()))  # baseline … full
    variants = [v for v in by_parts if f"csalic-{v}" in cells]
    if not variants:
        raise CsalicError("the BD file holds no CSA-LIC variant (is it a study's metrics/bd.json?)")
    datasets = list(dict.fromkeys(d for v in variants for d in cells[f"csalic-{v}"]))

    def number(x: Any, unit: str = "") -> str:
        return "n/a" if not isinstance(x, (int, float)) or not math.isfinite(x) else f"{x:.1f}{unit}".replace("-", "\u2212")

    def value(x: dict, key: str, unit: str = "") -> str:
        ci = x.get(f"{key}_ci")
        shown = number(x.get(key), unit)
        return f"{shown} [{number(ci[0])}, {number(ci[1])}]" if ci and shown != "n/a" else shown

    head = [f"BD-rate / BD-mAP ({task}, against {bd.get('anchor', '?')})"] + \
        [f"{v} (proposed)" if v == "full" else v for v in variants]
    rows = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for d in datasets:
        c = [cells[f"csalic-{v}"].get(d, {}).get(task, {}) for v in variants]
        rows.append(f"| `{d}` | " + " | ".join(f"{value(x, 'bd_rate', ' %')} / {value(x, 'bd_map')}" for x in c) + " |")
    level = next((x["ci_level"] for v in variants for g in cells[f"csalic-{v}"].values()
                  for x in g.values() if "ci_level" in x), None)
    if level is not None:
        rows.append(f"\n[low, high]: the {level * 100:g} % image-bootstrap interval (the study's report settings).")
    return "\n".join(rows) + "\n"


def write_metrics(study: Study, out_dir: str | Path) -> list[Path]:
    """``metrics/bd.json`` and ``metrics/points.json`` (dvc metrics), ``plots/rate_accuracy.csv`` (dvc plots:
    one row per point, the uncompressed ceiling left out so it does not flatten the curves)."""
    m = study_metrics(study)
    out = Path(out_dir)
    bd = out / "metrics" / "bd.json"
    atomic_write_json(bd, {"anchor": m["anchor"], "anchor_label": m["anchor_label"], "bd": m["bd"]})
    pts = out / "metrics" / "points.json"
    atomic_write_json(pts, {"points": m["points"]})
    buf = io.StringIO()
    fields = ["dataset", "method", "label", "setting", *POINT_FIELDS]
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in study.points:
        if r["method"] != "none":
            w.writerow({**{k: _csv_value(r.get(k)) for k in fields}, "label": study.label(r["method"])})
    plots = out / "plots" / "rate_accuracy.csv"
    atomic_write_text(plots, buf.getvalue())
    return [bd, pts, plots]


def ablation_figure(study: Study, out_dir: str | Path, name: str = "ablation") -> list[Path]:
    """The four variants and the anchor, mAP@0.5 against bpp, one panel per dataset group and task (Table 2 drawn)."""
    import matplotlib.pyplot as plt

    fig = draw_ablation(study)
    written = []
    for ext in ("png", "pdf"):
        p = Path(out_dir) / f"{name}.{ext}"
        with atomic_path(p, suffix=f".{ext}") as tmp:
            fig.savefig(tmp, format=ext, dpi=150, metadata={"CreationDate": None} if ext == "pdf" else None)
        written.append(p)
    plt.close(fig)
    return written


def draw_ablation(study: Study):
    """The ablation figure, not yet saved (tests look at where its legend lies)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(g, t, ds) for g, tasks in study.groups.items() for t in TASKS if (ds := tasks.get(t))]
    methods = [study.anchor] + [f"csalic-{v}" for v in ABLATION_ORDER if f"csalic-{v}" in study.methods]
    ncols = 2 if len(panels) > 1 else 1
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.8 * nrows), squeeze=False)
    style = {"csalic-full": ("tab:red", "o"), "csalic-concat": ("tab:blue", "s"),
             "csalic-no_casc": ("tab:green", "^"), "csalic-baseline": ("tab:grey", "v")}
    for k, (g, task, ds) in enumerate(panels):
        ax = axes[k // ncols][k % ncols]
        for m in methods:
            c = study.curve(ds, m, task)
            if c is None:
                continue
            colour, marker = style.get(m, ("black", "s"))
            ax.plot(c.bpp, [q * 100 for q in c.quality], color=colour, marker=marker, ms=4,
                    lw=1.8 if m in (study.anchor, "csalic-full") else 1.2,
                    ls="--" if m == study.anchor else "-",
                    label=study.label(m) if m == study.anchor else m.split("-", 1)[1])
        if (ds, task) in study.ceilings:
            ax.axhline(study.ceilings[(ds, task)] * 100, color="grey", ls=":", lw=1, label="Uncompressed")
        ax.set_title(f"{g}: {task}", fontsize=10)
        ax.set_xlabel("bpp")
        ax.set_ylabel("mAP@0.5 (%)")
        ax.grid(alpha=0.3)
    for k in range(len(panels), nrows * ncols):
        axes[k // ncols][k % ncols].axis("off")
    # one legend below the panels, outside every axes: inside one it hid the anchor's lowest point
    handles: dict[str, Any] = {}
    for ax in fig.axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.suptitle("Ablation: SCSM+CGM (CASC) and CFTM" + (" - demo study" if study.demo else ""), fontsize=11)
    fig.tight_layout(rect=(0, 0.07 / nrows, 1, 1))
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(len(handles), 6),
                   fontsize=8, frameon=False)
    return fig


def write_curves(paths: Sequence[str | Path], out_dir: str | Path) -> list[Path]:
    """One CompressAI results-JSON per (dataset, method) under ``out_dir/<dataset>/<method>.json``
    (``<method>-seed_<s>.json`` for each training seed of a method trained under several; the
    uncompressed ceiling under ``out_dir/<dataset>/ceiling/none.json``)."""
    groups: dict[tuple[str, str, str, int], list[dict]] = defaultdict(list)
    for s in _with_study_seed([load_summary(p) for p in find_summaries(paths)]):
        seed = -1 if s.get("seed") is None else int(s["seed"])
        groups[(s["dataset"], s["method"], str(s.get("task_net")), seed)].append(s)
    nets, seeds = defaultdict(set), defaultdict(set)
    for ds, m, net, seed in groups:
        nets[(ds, m)].add(net)
        seeds[(ds, m, net)].add(seed)
    written = []
    for (ds, m, net, seed), ss in sorted(groups.items()):
        stem = m if len(nets[(ds, m)]) == 1 else f"{m}@{net}"
        if len(seeds[(ds, m, net)]) > 1:  # one curve per training seed, as the tables see them
            stem += "-seed_study" if seed < 0 else f"-seed_{seed}"
        # the uncompressed ceiling (24 bpp) one folder down: `compressai.utils.plot -f <dataset>/*.json`
        # would otherwise stretch its axis to 25 bpp and squeeze every curve against zero
        p = Path(out_dir) / ds / ("ceiling" if m == "none" else "") / f"{stem}.json"
        atomic_write_json(p, merge_compressai([{k: v for k, v in s.items() if k != "_path"} for s in ss]))
        written.append(p)
    return written


def write_report(eval_paths: Sequence[str | Path], out_dir: str | Path = "results", *,
                 published: str | Path | None = None, complexity: Sequence[str | Path] = (),
                 anchor: str = "auto", task_nets: dict[str, str] | None = None, show_paper: bool = True,
                 figure: bool = True, ablation_group: str | None = None,
                 bootstrap: ImageBootstrap | None = None) -> tuple[Study, list[Path]]:
    """Everything ``csalic tables`` writes; returns the study and the files written."""
    study = collect(eval_paths, published, anchor, task_nets, bootstrap)
    out = Path(out_dir)
    written: list[Path] = []
    written += write_table(table1(study, show_paper), out / "tables")
    written += write_table(table2(study, show_paper, ablation_group), out / "tables")
    written += write_table(table3([load_complexity(p) for p in complexity], show_paper), out / "tables")
    if figure:
        written += rate_accuracy_figure(study, out / "figures")
        written += ablation_figure(study, out / "figures")
    written += write_curves(eval_paths, out / "curves")
    written += write_metrics(study, out)
    return study, written
