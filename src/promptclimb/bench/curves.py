"""The budget curves of a benchmark grid: one PNG per data set x shots x scorer, every method's
curves on it (plotted by report/plots.py)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from promptclimb.bench.grid import cells
from promptclimb.bench.runner import cell_dir
from promptclimb.report.plots import plot_curves
from promptclimb.store import STORE_FILE, RunStore


def grid_curves(spec: Any, out: Path) -> list[Path]:
    """One PNG per data set (x shots x scorer) of a benchmark grid."""
    groups: dict[str, dict[str, list[list[dict[str, Any]]]]] = defaultdict(lambda: defaultdict(list))
    for cell in cells(spec):
        d = cell_dir(out, cell)
        if not (d / STORE_FILE).exists():
            continue
        store = RunStore.open(d)
        curve = store.result("curve")
        store.close()
        if curve:
            groups[f"{cell.task}_{cell.shots}shot_{cell.scorer}"][cell.method].append(curve)
    paths = []
    for name, curves in groups.items():
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name)
        path = plot_curves(curves, out / f"curve_{safe}.png", name)
        if path is not None:
            paths.append(path)
    return paths
