"""Rate-accuracy points of published methods that have no public code (LALIC, SMIC-Net, UG-ICM).

They can only be compared through the numbers their papers print, so they enter
tables and curves from a file the user fills in (read off the papers' figures):
CSV with a header, or JSON (a list of rows, or ``{"source": ..., "points": [rows]}``).
Columns: ``method, dataset, task, bpp, map50`` (+ optional ``source``);
``task`` is ``detection`` or ``segmentation``, ``map50`` is mAP@0.5 in [0, 1],
``dataset`` uses the evaluation's names (``coco2017_val``, ``openimages_det``, ...).
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from ...errors import CsalicError

COLUMNS = ("method", "dataset", "task", "bpp", "map50")
TASKS = ("detection", "segmentation")


def _row(raw: dict[str, Any], where: str) -> dict[str, Any]:
    missing = [c for c in COLUMNS if raw.get(c) in (None, "")]
    if missing:
        raise CsalicError(f"{where}: missing {', '.join(missing)} (columns: {', '.join(COLUMNS)})")
    task = str(raw["task"]).strip().lower()
    if task not in TASKS:
        raise CsalicError(f"{where}: task {raw['task']!r} is not one of {', '.join(TASKS)}")
    try:
        bpp, m = float(raw["bpp"]), float(raw["map50"])
    except (TypeError, ValueError):
        raise CsalicError(f"{where}: bpp and map50 must be numbers, got {raw['bpp']!r}, {raw['map50']!r}") from None
    if not (math.isfinite(bpp) and bpp > 0):
        raise CsalicError(f"{where}: bpp must be a positive number, got {raw['bpp']!r}")
    if not (math.isfinite(m) and 0.0 <= m <= 1.0):
        raise CsalicError(f"{where}: map50 must be in [0, 1], got {raw['map50']!r} (divide percentages by 100)")
    return {"method": str(raw["method"]).strip(), "dataset": str(raw["dataset"]).strip(), "task": task,
            "bpp": bpp, "map50": m, "source": str(raw.get("source") or "").strip() or None}


def load_published(path: str | Path) -> list[dict[str, Any]]:
    """Validated rows; every problem is one line naming the file and row."""
    p = Path(path)
    if not p.is_file():
        raise CsalicError(f"published-results file {p} not found")
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CsalicError(f"{p} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
        source = None
        if isinstance(data, dict):
            source, data = data.get("source"), data.get("points")
        if not isinstance(data, list):
            raise CsalicError(f"{p}: expected a list of points or {{'points': [...]}}")
        rows = []
        for i, r in enumerate(data):
            if not isinstance(r, dict):
                raise CsalicError(f"{p}: point {i} is not an object")
            rows.append(_row({"source": source, **r}, f"{p} point {i}"))
        return rows
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames or any(c not in reader.fieldnames for c in COLUMNS):
        raise CsalicError(f"{p}: CSV header must contain {', '.join(COLUMNS)}; got {reader.fieldnames}")
    return [_row(r, f"{p}:{i}") for i, r in enumerate(reader, start=2)]


def published_curves(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], tuple[list[float], list[float]]]:
    """(method, dataset, task) -> (bpp list, mAP list) sorted by rate."""
    acc: dict[tuple[str, str, str], list[tuple[float, float]]] = defaultdict(list)
    for r in rows:
        acc[(r["method"], r["dataset"], r["task"])].append((r["bpp"], r["map50"]))
    return {k: ([b for b, _ in sorted(v)], [m for _, m in sorted(v)]) for k, v in acc.items()}
