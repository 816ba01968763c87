"""A benchmark grid: data sets x shots x seeds x methods x scorer backbones, every cell an ordinary
run (its own run store under GRID/cells/CELL) with the same scorer-query budget. Rerunning a grid
skips finished cells and resumes unfinished ones.

A method entry may carry method options after ``?``, as ``KEY=VALUE`` items joined by ``&`` (VALUE
parsed as JSON, else text; dotted keys nest, as ``--set``), over the grid's ``method_options`` for
that method: ``methods = ["hill_climb", "hill_climb?racing=true"]`` compares a method with and
without racing, each entry its own cells and table rows."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from promptclimb.config import (
    ConfigError,
    RunConfig,
    apply_sets,
    describe_validation_error,
    load_config_file,
    merge,
)

# The main comparison: the method, its positive-only ablation, every baseline, fixed templates.
DEFAULT_METHODS = (
    "hill_climb", "hill_climb_pos", "best_of_pool", "random_pool", "llm_no_feedback", "ape",
    "iterative_ape", "opro", "fixed:{}", "fixed:a photo of a {}.", "fixed:handwritten",
)


class GridSpec(BaseModel):
    """What to run. Options apply to every cell; ``method_options`` by method name."""

    model_config = ConfigDict(extra="forbid")
    tasks: list[str] = Field(default_factory=lambda: ["tuxpaint", "fashion-mnist"])
    shots: list[int] = Field(default_factory=lambda: [16])
    seeds: list[int] = Field(default_factory=lambda: [1, 2, 3])
    methods: list[str] = Field(default_factory=lambda: list(DEFAULT_METHODS))
    scorers: list[str] = Field(default_factory=lambda: ["conse"])
    llm: str = "llamacpp:qwen2.5-coder-1.5b"
    budget: int = Field(50, ge=1, description="scorer queries per cell, the same for every method")
    method_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    llm_options: dict[str, Any] = Field(default_factory=dict)
    scorer_options: dict[str, Any] = Field(default_factory=dict)
    data_root: str | None = None
    cache_dir: str | None = None
    selection: str = "best_train"
    oracle_top_n: int = Field(10, ge=0, description="report only: best on test among the top-N on train")
    references: list[str] = Field(default_factory=lambda: ["hill_climb"],
                                  description="report only: a paired table for each, it minus every other method")


def file_safe(text: str) -> str:
    """``text`` with every run of characters unsafe in a file name turned into one '-'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


@dataclass(frozen=True)
class Cell:
    task: str
    shots: int
    seed: int
    method: str
    scorer: str

    @property
    def id(self) -> str:
        raw = f"{self.task}__{self.shots}shot__seed{self.seed}__{self.method}__{self.scorer}"
        return file_safe(raw)[:180]


_OPTIONS_RE = re.compile(r"\?((?:[\w.]+=[^&]*)(?:&[\w.]+=[^&]*)*)$")


def method_entry(entry: str) -> tuple[str, dict[str, Any]]:
    """A grid method entry's method spec and its inline options ("hill_climb?racing=true")."""
    found = _OPTIONS_RE.search(entry)
    if found is None:
        return entry, {}
    return entry[: found.start()], apply_sets({}, found.group(1).split("&"))


def cells(spec: GridSpec) -> list[Cell]:
    return [Cell(t, k, s, m, sc) for t in spec.tasks for k in spec.shots for sc in spec.scorers
            for m in spec.methods for s in spec.seeds]


def cell_config(spec: GridSpec, cell: Cell) -> RunConfig:
    method, inline = method_entry(cell.method)
    name = method.partition(":")[0]
    data: dict[str, Any] = {
        "task": cell.task, "scorer": cell.scorer, "llm": spec.llm, "method": method,
        "seed": cell.seed, "shots": cell.shots, "budget": {"scorer_queries": spec.budget},
        "method_options": merge(spec.method_options.get(name, {}), inline), "llm_options": spec.llm_options,
        "scorer_options": spec.scorer_options, "data_root": spec.data_root, "selection": spec.selection,
        "oracle_top_n": spec.oracle_top_n,
    }
    if spec.cache_dir:
        data["cache_dir"] = spec.cache_dir
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err, f"grid cell {cell.id}: ")) from None


def validate(spec: GridSpec) -> None:
    """Every name in the grid exists, before any work starts (one clear line otherwise)."""
    from promptclimb.llm import LLMS
    from promptclimb.proposers import METHODS
    from promptclimb.selection import build_selector
    from promptclimb.tasks import TASKS
    from promptclimb.vlm import SCORERS

    methods = [method_entry(m)[0] for m in spec.methods]
    for registry, names in ((TASKS, spec.tasks), (METHODS, methods), (SCORERS, spec.scorers),
                            (LLMS, [spec.llm])):
        for name in names:
            registry.split(name)
    build_selector(spec.selection)
    if not spec.tasks or not spec.methods or not spec.seeds or not spec.scorers or not spec.shots:
        raise ConfigError("the grid is empty: give at least one task, shot count, seed, method and scorer")


def load_spec(path: Path | None, overrides: dict[str, Any]) -> GridSpec:
    data = load_config_file(path) if path else {}
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        spec = GridSpec.model_validate(data)
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err, "grid spec: ")) from None
    validate(spec)
    return spec


def save_spec(spec: GridSpec, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "grid.json").write_text(json.dumps(spec.model_dump(), indent=1), encoding="utf-8")
