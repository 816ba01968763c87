"""Running a grid's cells: each is an ordinary run; finished cells are skipped, unfinished ones
resumed from their stores. A cell whose LLM endpoint goes down (study.py's stopping rule) is
recorded as failed, not done, and the next bench run resumes it. Executors are small
interchangeable classes: in this process (models load once and are shared by every cell), local
worker processes, or Ray tasks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Protocol

from promptclimb.bench.grid import Cell, GridSpec, cell_config
from promptclimb.evaluation import budget_curve
from promptclimb.llm.base import EndpointDown
from promptclimb.run import build_parts, make_study
from promptclimb.store import STORE_FILE, RunStore


def cell_dir(out: Path, cell: Cell) -> Path:
    return out / "cells" / cell.id


def run_cell(spec_json: str, cell_json: str, out: str) -> dict[str, Any]:
    """Run (or resume, or skip) one cell; returns its summary. Top-level so processes can pickle it."""
    spec = GridSpec.model_validate_json(spec_json)
    cell = Cell(**json.loads(cell_json))
    run_dir = cell_dir(Path(out), cell)
    started = time.time()
    if (run_dir / STORE_FILE).exists():
        store = RunStore.open(run_dir)
        if store.finished and store.result("curve") is not None:
            return {"cell": cell.id, "status": "skipped", "seconds": 0.0}
        config = cell_config(spec, cell)
    else:
        config = cell_config(spec, cell)
        store = RunStore.create(run_dir, config.model_dump(mode="json"))
    parts = build_parts(config)
    manifest = getattr(parts.task, "split_manifest", None)
    if callable(manifest) and store.result("split") is None:
        store.set_result("split", manifest())
    status = "resumed" if store.trials() else "ran"
    warnings: list[str] = []
    if not store.finished:
        try:
            warnings = list(make_study(parts, store).optimize().warnings)
        except EndpointDown as err:
            store.close()
            return {"cell": cell.id, "status": "failed", "seconds": round(time.time() - started, 2),
                    "error": str(err).splitlines()[0]}
    if store.result("curve") is None:
        store.set_result("curve", budget_curve(store, parts.scorer))
    store.close()
    return {"cell": cell.id, "status": status, "seconds": round(time.time() - started, 2), "warnings": warnings}


class Executor(Protocol):
    def map(self, fn: Callable[..., dict[str, Any]], jobs: list[tuple[str, str, str]]) -> Iterable[dict[str, Any]]:
        ...


class InProcessExecutor:
    """One cell after another in this process: loaded models are reused across cells."""

    def map(self, fn: Callable[..., dict[str, Any]], jobs: list[tuple[str, str, str]]) -> Iterable[dict[str, Any]]:
        for job in jobs:
            yield fn(*job)


class ProcessExecutor:
    """Local worker processes (spawned: torch and llama.cpp threads do not survive fork)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def map(self, fn: Callable[..., dict[str, Any]], jobs: list[tuple[str, str, str]]) -> Iterable[dict[str, Any]]:
        with ProcessPoolExecutor(self.workers, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(fn, *job) for job in jobs]
            for f in as_completed(futures):
                yield f.result()


def _check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail fast and in one line when nothing listens at a Ray address (ray.init would retry
    for minutes)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return
    except (OSError, ValueError) as err:
        raise ValueError(f"Ray cluster at {address} does not answer ({err}): check the address, "
                         "or run without --ray") from None


class RayExecutor:
    """Cells as Ray tasks: a local Ray (address None) or an existing cluster."""

    def __init__(self, address: str | None) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError("--ray needs Ray: pip install 'ray==2.60.0'") from None
        self.ray = ray
        if address and address != "auto":
            _check_reachable(address)
        try:
            ray.init(address=address or None, ignore_reinit_error=True, include_dashboard=False,
                     log_to_driver=False)
        except Exception as err:
            raise ValueError(f"Ray cluster at {address or 'local'} does not answer ({err}): "
                             "check the address, or run without --ray") from None

    def map(self, fn: Callable[..., dict[str, Any]], jobs: list[tuple[str, str, str]]) -> Iterable[dict[str, Any]]:
        remote = self.ray.remote(fn)
        pending = [remote.remote(*job) for job in jobs]
        while pending:
            done, pending = self.ray.wait(pending, num_returns=1)
            yield self.ray.get(done[0])


def run_grid(spec: GridSpec, out: Path, executor: Executor,
             progress: Callable[[int, int, dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    from promptclimb.bench.grid import cells, save_spec

    save_spec(spec, out)
    todo = cells(spec)
    jobs = [(spec.model_dump_json(), json.dumps(asdict(c)), str(out)) for c in todo]
    results = []
    for i, result in enumerate(executor.map(run_cell, jobs), 1):
        results.append(result)
        with (out / "cells.log").open("a", encoding="utf-8") as f:
            f.write(json.dumps({**result, "at": time.time()}) + "\n")
        if progress:
            progress(i, len(jobs), result)
    return results
