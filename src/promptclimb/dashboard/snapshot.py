"""What the dashboard shows, read from the SQLite stores while runs write them: a run's trials,
best-so-far curve and conversations; a grid's cells, their states and its tables. Plain JSON-able
dicts, computed afresh on each change (a store is opened, read and closed: readers never block the
writing run, WAL mode). Store text is returned as it is; the page escapes it when it shows it."""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from promptclimb.candidate import Trial, TrialState
from promptclimb.prompt_set import short_form
from promptclimb.store import STORE_FILE, Exchange, RunStore, StoreError
from promptclimb.summary import conversations, run_summary

GRID_FILE = "grid.json"
IDLE_SECONDS = 120  # an unfinished cell not written for this long is shown as "stopped"


def kind_of(path: Path) -> str:
    """"run" or "grid", or a one-line error naming what PATH must be."""
    if (path / STORE_FILE).is_file():
        return "run"
    if (path / GRID_FILE).is_file():
        return "grid"
    raise StoreError(f"{path} is neither a run directory ({STORE_FILE}) nor a bench grid directory "
                     f"({GRID_FILE}): pass the --out of `promptclimb optimize` or `promptclimb bench`")


def version(path: Path) -> str:
    """Changes whenever any store under ``path`` is written (sizes and times of the SQLite files)."""
    stamps = []
    for pattern in (f"**/{STORE_FILE}*", "cells.log", GRID_FILE):
        for f in sorted(path.glob(pattern)):
            try:
                st = f.stat()
            except FileNotFoundError:  # a store being renamed into place
                continue
            stamps.append(f"{f.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha1("|".join(stamps).encode()).hexdigest()[:16]


def _trial(t: Trial) -> dict[str, Any]:
    return {"number": t.number, "state": t.state.value, "template": short_form(t.template) or None,
            "train": t.train_score,
            "val": t.val_score, "test": t.test_score, "restart": t.restart, "reset": t.reset,
            "iteration": t.iteration, "pool": t.exchange_id is None, "error": t.error}


def _curve(trials: list[Trial]) -> list[dict[str, Any]]:
    points, queries, best = [], 0, None
    for t in trials:
        queries += int(t.metrics.get("queries", 0))
        if t.state is TrialState.COMPLETE and t.train_score is not None:
            best = t.train_score if best is None else max(best, t.train_score)
            points.append({"trial": t.number, "queries": queries, "train": t.train_score, "best": best})
    return points


def _conversations(trials: list[Trial], exchanges: list[Exchange]) -> list[dict[str, Any]]:
    """One entry per (restart, reset) conversation: its latest request and reply, and how many
    suggestions it gave."""
    out = []
    for restart, reset, ts, last in conversations(trials, exchanges):
        messages = [{"role": m.role, "content": m.content} for m in last.request.messages] if last else []
        if last is not None and last.reply is not None:
            messages.append({"role": "assistant", "content": last.reply.text})
        scores = [t.train_score for t in ts if t.train_score is not None]
        out.append({"id": f"r{restart}n{reset}", "restart": restart, "reset": reset, "suggestions": len(ts),
                    "best": max(scores) if scores else None, "messages": messages})
    return out


def run_snapshot(run_dir: Path) -> dict[str, Any]:
    store = RunStore.open(run_dir)
    try:
        trials, exchanges = store.trials(), store.exchanges()
        summary = run_summary(store)
        summary["best_template"] = summary.get("best_short") or summary["best_template"]  # a set, in short
        return {"kind": "run", "summary": summary, "trials": [_trial(t) for t in trials],
                "curve": _curve(trials), "conversations": _conversations(trials, exchanges),
                "warnings": store.result("warnings") or [], "references": store.result("references") or []}
    finally:
        store.close()


def _cell_state(d: Path) -> dict[str, Any]:
    if not (d / STORE_FILE).is_file():
        return {"state": "pending", "trials": 0, "best_train": None, "test": None, "template": None}
    store = RunStore.open(d)
    try:
        s = run_summary(store)
    finally:
        store.close()
    written = max((f.stat().st_mtime for f in d.glob(f"{STORE_FILE}*") if f.exists()), default=0.0)
    state = "finished" if s["finished"] else "running" if time.time() - written < IDLE_SECONDS else "stopped"
    return {"state": state, "trials": s["n_trials"], "best_train": s["best_train_score"],
            "test": s["final_test_score"], "template": s.get("best_short") or s["best_template"]}


def grid_snapshot(grid_dir: Path) -> dict[str, Any]:
    from promptclimb.bench.grid import GridSpec, cells
    from promptclimb.bench.runner import cell_dir
    from promptclimb.bench.tables import accuracy_table, collect

    spec = GridSpec.model_validate(json.loads((grid_dir / GRID_FILE).read_text(encoding="utf-8")))
    rows = []
    for cell in cells(spec):
        rows.append({"id": cell.id, "task": cell.task, "shots": cell.shots, "seed": cell.seed,
                     "method": cell.method, "scorer": cell.scorer, **_cell_state(cell_dir(grid_dir, cell))})
    finished = collect(spec, grid_dir)
    tables = {name: dict(zip(("header", "rows"), accuracy_table(finished, spec, name), strict=True))
              for name in ("test", "train")}
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        counts[r["state"]] += 1
    return {"kind": "grid", "spec": spec.model_dump(), "cells": rows, "counts": counts, "tables": tables}


def cell_run_dir(grid_dir: Path, cell_id: str) -> Path | None:
    """The run directory of a grid cell named by id, only if it is one of the grid's cells (so no
    id can reach outside the grid)."""
    from promptclimb.bench.grid import GridSpec, cells
    from promptclimb.bench.runner import cell_dir

    spec = GridSpec.model_validate(json.loads((grid_dir / GRID_FILE).read_text(encoding="utf-8")))
    for cell in cells(spec):
        if cell.id == cell_id:
            d = cell_dir(grid_dir, cell)
            return d if (d / STORE_FILE).is_file() else None
    return None
