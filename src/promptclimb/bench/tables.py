"""The grid's tables, read from the cells' run stores: the paper's Table 1 (rows methods, columns
data sets, last column the average; mean ± std over seeds of the test accuracy of the template
chosen on train), the same for train, a cost table, and paired comparisons of one method against
each other (mean paired difference over seeds, 95% t interval, wins/ties/losses)."""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from promptclimb.bench.grid import Cell, GridSpec, cells, file_safe
from promptclimb.bench.runner import cell_dir
from promptclimb.export import csv_cell
from promptclimb.store import STORE_FILE, RunStore
from promptclimb.summary import run_summary


@dataclass(frozen=True)
class CellResult:
    cell: Cell
    test: float | None
    train: float | None
    oracle_test: float | None
    queries: int
    llm_calls: int
    llm_tokens: int
    cost_usd: float
    template: str | None
    images: int = 0  # images scored (racing scores fewer per query)


def collect(spec: GridSpec, out: Path) -> list[CellResult]:
    """One row per finished cell."""
    rows = []
    for cell in cells(spec):
        d = cell_dir(out, cell)
        if not (d / STORE_FILE).exists():
            continue
        store = RunStore.open(d)
        if store.finished:
            s = run_summary(store)
            oracle = store.result("oracle") or {}
            rows.append(CellResult(cell, s["final_test_score"], s["best_train_score"], oracle.get("test_score"),
                                   s["scorer_queries"], s["llm_calls"], s["llm_tokens"], s["llm_cost_usd"],
                                   s["best_template"], s["scorer_images"]))
        store.close()
    return rows


def _column(cell: Cell, spec: GridSpec) -> str:
    parts = [cell.task]
    if len(spec.shots) > 1:
        parts.append(f"{cell.shots}-shot")
    if len(spec.scorers) > 1:
        parts.append(cell.scorer)
    return " ".join(parts)


def _mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def mean_std_cell(values: list[float]) -> str:
    """A table cell 'mean ± std' (sample std; 0 for one value)."""
    m, s = _mean_std(values)
    return f"{m:.1f} ± {s:.1f}"


def accuracy_table(rows: list[CellResult], spec: GridSpec, field: str = "test") -> tuple[list[str], list[list[str]]]:
    """Rows methods; columns data sets (x shots x scorers); cells 'mean ± std' in percent over seeds."""
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    columns: list[str] = []
    for r in rows:
        v = getattr(r, field)
        col = _column(r.cell, spec)
        if col not in columns:
            columns.append(col)
        if v is not None:
            values[(r.cell.method, col)].append(100 * v)
    header = ["method", *columns, "average"]
    table = []
    for method in spec.methods:
        line, means = [method], []
        for col in columns:
            vs = values.get((method, col), [])
            if vs:
                means.append(_mean_std(vs)[0])
                line.append(mean_std_cell(vs))
            else:
                line.append("–")
        line.append(f"{np.mean(means):.1f}" if means and len(means) == len(columns) else "–")
        table.append(line)
    return header, table


def cost_table(rows: list[CellResult], spec: GridSpec) -> tuple[list[str], list[list[str]]]:
    by_method: dict[str, list[CellResult]] = defaultdict(list)
    for r in rows:
        by_method[r.cell.method].append(r)
    header = ["method", "cells", "scorer queries", "images scored", "LLM calls", "LLM tokens", "cost USD"]
    table = []
    for method in spec.methods:
        rs = by_method.get(method, [])
        if rs:
            table.append([method, str(len(rs)), f"{np.mean([r.queries for r in rs]):.1f}",
                          f"{np.mean([r.images for r in rs]):.0f}",
                          f"{np.mean([r.llm_calls for r in rs]):.1f}", f"{np.mean([r.llm_tokens for r in rs]):.0f}",
                          f"{sum(r.cost_usd for r in rs):.4f}"])
    return header, table


def t_interval(diffs: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided t confidence interval of paired differences."""
    arr = np.asarray(diffs, dtype=float)
    n, mean = len(arr), float(arr.mean())
    if n < 2:
        return mean, math.nan, math.nan
    from scipy import stats

    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * float(arr.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half


def paired_table(rows: list[CellResult], spec: GridSpec, reference: str = "hill_climb",
                 field: str = "test") -> tuple[list[str], list[list[str]]]:
    """``reference`` minus each other method, paired by (data set, shots, scorer, seed)."""
    by_key: dict[tuple[str, str, int, str, int], float] = {}
    for r in rows:
        v = getattr(r, field)
        if v is not None:
            c = r.cell
            by_key[(c.method, c.task, c.shots, c.scorer, c.seed)] = 100 * v
    header = ["comparison", "pairs", "mean diff (points)", "95% CI", "wins/ties/losses"]
    table = []
    for other in spec.methods:
        if other == reference:
            continue
        diffs = [v - by_key[(other, *k[1:])] for k, v in by_key.items()
                 if k[0] == reference and (other, *k[1:]) in by_key]
        if not diffs:
            continue
        mean, lo, hi = t_interval(diffs)
        wins = sum(d > 1e-9 for d in diffs)
        losses = sum(d < -1e-9 for d in diffs)
        ci = "n/a" if math.isnan(lo) else f"[{lo:+.2f}, {hi:+.2f}]"
        table.append([f"{reference} − {other}", str(len(diffs)), f"{mean:+.2f}", ci,
                      f"{wins}/{len(diffs) - wins - losses}/{losses}"])
    return header, table


def markdown(header: list[str], table: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    return "\n".join(lines)


def to_csv(header: list[str], table: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([csv_cell(h) for h in header])
    writer.writerows([[csv_cell(c) for c in row] for row in table])
    return buf.getvalue()


def write_tables(spec: GridSpec, out: Path) -> dict[str, Any]:
    """All tables as Markdown (tables.md) and CSV files; returns them by name. The paired tables
    are one per ``spec.references`` entry (``paired_test``, then ``paired_test_<method>``)."""
    rows = collect(spec, out)
    tables = {
        "test": accuracy_table(rows, spec, "test"),
        "train": accuracy_table(rows, spec, "train"),
        "oracle_test": accuracy_table(rows, spec, "oracle_test"),
        "cost": cost_table(rows, spec),
    }
    titles = {
        "test": "Test accuracy (%) of the template chosen on train, mean ± std over seeds",
        "train": "Train accuracy (%) of the chosen template",
        "oracle_test": "Oracle: best test accuracy (%) among the top-10 train templates (selection gap)",
        "cost": "Cost per cell (mean)",
    }
    for i, reference in enumerate(spec.references):
        name = "paired_test" if i == 0 else "paired_test_" + file_safe(reference)
        tables[name] = paired_table(rows, spec, reference, "test")
        titles[name] = f"Paired test-accuracy differences, {reference} minus each method"
    md = []
    for name, (header, table) in tables.items():
        (out / f"table_{name}.csv").write_text(to_csv(header, table), encoding="utf-8")
        md.append(f"### {titles[name]}\n\n{markdown(header, table)}\n")
    (out / "tables.md").write_text("\n".join(md), encoding="utf-8")
    return {"rows": rows, "tables": tables, "markdown": "\n".join(md)}
