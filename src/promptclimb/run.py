"""From a RunConfig to a running Study: build every part by name (checking each before any
scoring work), create or reopen the run's store, and run. Used by the CLI, the bench and the
Python API alike."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from promptclimb.config import ConfigError, RunConfig, describe_validation_error
from promptclimb.evaluation import PostHocEvaluation, budget_curve
from promptclimb.llm import build_llm
from promptclimb.llm.base import ChatLLM
from promptclimb.llm.cache import CachedLLM, LLMCache
from promptclimb.llm.pricing import reply_cost_fn
from promptclimb.proposers import build_method
from promptclimb.proposers.base import Proposer
from promptclimb.racing import Racing, build_racing
from promptclimb.selection import build_selector
from promptclimb.store import RunStore, StoreError
from promptclimb.study import Budget, Callback, Study, StudyResult
from promptclimb.tasks import Task, build_task
from promptclimb.vlm import build_scorer
from promptclimb.vlm.base import Scorer, check_scorer


@dataclass
class RunParts:
    config: RunConfig
    task: Task
    scorer: Scorer
    proposer: Proposer
    llm: ChatLLM | None
    racing: Racing | None = None


def build_parts(config: RunConfig) -> RunParts:
    """Everything a run needs, or one clear error before any work is done."""
    build_selector(config.selection)
    try:
        proposer = build_method(config.method, config.method_options)
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err, "config error: method_options.")) from None
    llm = None
    if proposer.needs_llm():
        llm = build_llm(config.llm, options=config.llm_options)
        check = getattr(llm, "check", None)
        if callable(check):
            check()
    task = config_task(config)
    scorer = build_scorer(config.scorer, task=task, cache_dir=Path(config.cache_dir).expanduser(),
                          options=config.scorer_options)
    check_scorer(scorer, proposer.scorer_needs(), config.method)
    return RunParts(config, task, scorer, proposer, llm, build_racing(config.racing, scorer, config.seed))


def config_task(config: RunConfig) -> Task:
    """The run's task with its few-shot splits (the same config builds the same splits)."""
    root = Path(config.data_root).expanduser() if config.data_root else None
    return build_task(config.task, shots=config.shots, seed=config.seed, data_root=root)


def make_study(parts: RunParts, store: RunStore, callbacks: Sequence[Callback] = ()) -> Study:
    c = parts.config
    cache = LLMCache(Path(c.cache_dir).expanduser() / "llm_cache.sqlite") if c.llm_cache else None
    study = Study(
        store=store, proposer=parts.proposer, scorer=parts.scorer, task=parts.task.info,
        llm=CachedLLM(parts.llm, cache, c.replay_only) if parts.llm is not None else None, seed=c.seed,
        budget=Budget(**c.budget.model_dump()), callbacks=callbacks, score_val=c.score_val,
        cost_fn=reply_cost_fn(parts.llm), selector=build_selector(c.selection),
        evaluation=PostHocEvaluation(parts.scorer, c.ensemble_k, c.oracle_top_n, test=c.evaluate_test),
        max_endpoint_failures=c.max_endpoint_failures, racing=parts.racing,
    )
    for warning in getattr(parts.task, "warnings", ()):  # e.g. seeds that cannot give different shots
        study.warn(warning)
    return study


def start_run(config: RunConfig, out: Path, callbacks: Sequence[Callback] = ()) -> StudyResult:
    parts = build_parts(config)
    store = RunStore.create(out, config.model_dump(mode="json"))
    manifest = getattr(parts.task, "split_manifest", None)
    if callable(manifest):
        store.set_result("split", manifest())
    return _run(parts, store, callbacks)


def resume_run(out: Path, callbacks: Sequence[Callback] = (), **changes: Any) -> StudyResult:
    """Continue a run from its store; ``changes`` may only touch how it runs (n_jobs...)."""
    store = RunStore.open(out)
    try:
        config = RunConfig.model_validate({**store.config, **changes})
    except ValidationError as err:
        raise StoreError(describe_validation_error(err, f"{out}: stored config is invalid: ")) from None
    return _run(build_parts(config), store, callbacks)


def _run(parts: RunParts, store: RunStore, callbacks: Sequence[Callback]) -> StudyResult:
    study = make_study(parts, store, callbacks)
    try:
        result = study.optimize(n_jobs=parts.config.n_jobs)
        # the report's curve, with the test score of each best-so-far (post hoc)
        if parts.config.evaluate_test and "test" in parts.scorer.splits():
            store.set_result("curve", budget_curve(store, parts.scorer))
        return result
    finally:
        with contextlib.suppress(Exception):
            store.close()
