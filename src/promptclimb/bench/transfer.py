"""Transfer across backbones: the template each finished grid cell chose with its own scorer,
re-scored on the same task, shots and seed (so the same test split) with other scorers. The
paper reports that prompts found with one CLIP architecture transfer to others; this measures
it on a grid. Evaluations are cached in GRID/transfer/evaluations.json, so a rerun scores
nothing twice; tasks and scorers are built once per (task, shots, seed, scorer), and only on a
cache miss."""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from promptclimb.bench.grid import Cell, GridSpec, cell_config, cells
from promptclimb.bench.tables import collect, markdown, mean_std_cell, to_csv
from promptclimb.config import ConfigError
from promptclimb.run import config_task
from promptclimb.vlm.base import ScorerConfigError, score_prompt

TRANSFER_DIR = "transfer"
CACHE_FILE = "evaluations.json"


@dataclass(frozen=True)
class TransferRow:
    """One finished cell: its chosen template and test accuracy per backbone (source included)."""

    cell: Cell
    template: str
    tests: dict[str, float | None]


def check_targets(spec: GridSpec, targets: list[str]) -> None:
    """Every target scorer exists and accepts its arguments and the grid's first task, before
    any work (one clear line otherwise). Building a scorer loads no images."""
    from promptclimb.vlm import SCORERS, build_scorer

    if not targets:
        raise ConfigError("--transfer-to: give at least one scorer, e.g. conse:lite2")
    for name in targets:
        SCORERS.split(name)
    config = cell_config(spec, cells(spec)[0])
    task = config_task(config)
    for name in targets:
        build_scorer(name, task=task, cache_dir=Path(config.cache_dir).expanduser(), options=spec.scorer_options)


class EvaluationCache:
    """(target scorer, task, shots, seed, scorer options, template) -> test accuracy, as JSON;
    written after every new evaluation (atomically), so a killed transfer loses nothing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, float] = {}
        self.new = 0
        try:
            self.data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        except (OSError, ValueError):  # a torn or foreign file: evaluate again
            self.data = {}

    @staticmethod
    def key(target: str, cell: Cell, template: str, options: dict[str, Any]) -> str:
        return json.dumps([target, cell.task, cell.shots, cell.seed, options, template], sort_keys=True)

    def put(self, key: str, value: float) -> None:
        self.data[key] = value
        self.new += 1
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=0), encoding="utf-8")
        os.replace(tmp, self.path)


def evaluate_transfer(spec: GridSpec, out: Path, targets: list[str]) -> tuple[list[TransferRow], dict[str, Any]]:
    """Test accuracy of every finished cell's chosen template on each target; returns the rows
    and what it cost (new evaluations, cells, seconds)."""
    from promptclimb.vlm import build_scorer

    started = time.time()
    cache = EvaluationCache(out / TRANSFER_DIR / CACHE_FILE)
    options = dict(spec.scorer_options)
    groups: dict[tuple[str, int, int], list[tuple[Cell, str]]] = defaultdict(list)
    sources: dict[Cell, float | None] = {}
    for r in collect(spec, out):
        if r.template:
            groups[(r.cell.task, r.cell.shots, r.cell.seed)].append((r.cell, r.template))
            sources[r.cell] = r.test
    for items in groups.values():
        task: Any = None
        for target in targets:
            scorer: Any = None
            for cell, template in items:
                key = cache.key(target, cell, template, options)
                if target == cell.scorer or key in cache.data:
                    continue
                if scorer is None:  # built once per (task, shots, seed, target), only when needed
                    config = cell_config(spec, cell)
                    task = config_task(config) if task is None else task
                    scorer = build_scorer(target, task=task, cache_dir=Path(config.cache_dir).expanduser(),
                                          options=options)
                try:
                    value = score_prompt(scorer, template, "test").value
                except ScorerConfigError:  # a prompt set this target cannot score: left blank
                    continue
                cache.put(key, value)
    rows = []
    for items in groups.values():
        for cell, template in items:
            tests = {target: cache.data.get(cache.key(target, cell, template, options)) for target in targets}
            tests[cell.scorer] = sources[cell]  # a target that is the source: its own stored figure
            rows.append(TransferRow(cell, template, tests))
    cost = {"evaluated": cache.new, "cells": len(rows), "seconds": round(time.time() - started, 2)}
    return rows, cost


def transfer_table(spec: GridSpec, rows: list[TransferRow], source: str, targets: list[str],
                   source_label: str | None = None) -> tuple[list[str], list[list[str]]]:
    """Rows methods; columns (data set x backbone, source first) then the average over data sets
    per backbone; cells mean ± std over seeds of test accuracy (%)."""
    backbones = [source, *targets]
    columns = [t if len(spec.shots) == 1 else f"{t} {k}-shot" for t in spec.tasks for k in spec.shots]
    values: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for r in rows:
        if r.cell.scorer != source:
            continue
        col = r.cell.task if len(spec.shots) == 1 else f"{r.cell.task} {r.cell.shots}-shot"
        for i, backbone in enumerate(backbones):
            v = r.tests.get(backbone)
            if v is not None:
                values[(r.cell.method, col, i)].append(100 * v)
    labels = [source_label or f"{source} (source)", *targets]
    header = ["method", *[f"{c} · {b}" for c in columns for b in labels], *[f"average · {b}" for b in labels]]
    table = []
    for method in spec.methods:
        line = [method]
        for col in columns:
            line += [mean_std_cell(vs) if (vs := values.get((method, col, i))) else "–" for i in range(len(backbones))]
        for i in range(len(backbones)):
            means = [np.mean(values[(method, c, i)]) for c in columns if values.get((method, c, i))]
            line.append(f"{np.mean(means):.1f}" if means and len(means) == len(columns) else "–")
        table.append(line)
    return header, table


def write_transfer(spec: GridSpec, out: Path, targets: list[str]) -> dict[str, Any]:
    """Evaluate, then write GRID/transfer.md and transfer.csv (one table per source scorer);
    returns the tables by title, the Markdown and the cost."""
    rows, cost = evaluate_transfer(spec, out, targets)
    tables: dict[str, tuple[list[str], list[list[str]]]] = {}
    md, csv_rows = [], []
    for source in spec.scorers:
        header, table = transfer_table(spec, rows, source, targets)
        title = (f"Transfer: templates found with {source}, test accuracy (%) on each backbone "
                 "(same task, shots, seed and test split), mean ± std over seeds")
        tables[f"transfer from {source}"] = (header, table)
        md.append(f"### {title}\n\n{markdown(header, table)}\n")
        csv_header, csv_table = transfer_table(spec, rows, source, targets, source_label="source")
        csv_rows += [[source, *line] for line in csv_table]
    text = "\n".join(md)
    (out / "transfer.md").write_text(text, encoding="utf-8")
    (out / "transfer.csv").write_text(to_csv(["found with", *csv_header], csv_rows), encoding="utf-8")
    return {"rows": rows, "tables": tables, "markdown": text, "cost": cost}
