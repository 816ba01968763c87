"""From a T2IConfig to a running Study: build the generator, judge, similarity backbone, method
and LLM by name (checking each endpoint before any work), create or reopen the run's store, find
the first prompt(s), and run. The first prompt of an inversion or a personalization is written by
the judge, which sees the reference; that call is recorded like every other, so resuming replays it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from promptclimb.calls import Budget, Meter, RecordedCalls
from promptclimb.config import ConfigError, describe_validation_error
from promptclimb.llm import build_llm
from promptclimb.llm.base import ChatLLM, LLMReplyError
from promptclimb.llm.cache import CachedLLM, LLMCache
from promptclimb.llm.pricing import reply_cost_fn
from promptclimb.store import RunStore
from promptclimb.study import Callback, Study, StudyResult
from promptclimb.t2i import GENERATORS, JUDGES, SIMILARITIES, T2I_METHODS
from promptclimb.t2i.base import T2ITask
from promptclimb.t2i.config import KINDS, NO_LLM, WITH_REFERENCE, T2IConfig, load_stored
from promptclimb.t2i.images import REFERENCE_FILE, copy_reference, open_image
from promptclimb.t2i.judges import render
from promptclimb.t2i.proposer import parse_prompt
from promptclimb.t2i.scorer import T2IScorer
from promptclimb.tasks.base import TaskInfo


@dataclass
class T2IParts:
    config: T2IConfig
    task: T2ITask
    generator: Any
    judge: Any
    similarity: Any
    proposer: Any
    llm: ChatLLM | None


def _check(part: Any) -> None:
    check = getattr(part, "check", None)
    if callable(check):
        check()


def build_parts(config: T2IConfig) -> T2IParts:
    """Every part, each endpoint checked, or one clear error before any work is done."""
    c = config
    task = T2ITask(c.kind, c.intent, c.edit, c.source_prompt, REFERENCE_FILE if c.kind in WITH_REFERENCE else None)
    try:
        proposer = T2I_METHODS.create(c.method, options=dict(c.method_options), task=task)
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err, "config error: method_options.")) from None
    generator = GENERATORS.create(f"{c.generator.backend}:{c.generator.model}", config=c.generator)
    judge = JUDGES.create(f"{c.judge.backend}:{c.judge.model}", config=c.judge)
    similarity = SIMILARITIES.create(c.scorer, options=dict(c.scorer_options))
    if proposer.uses_llm and not c.llm:
        raise ConfigError(NO_LLM)
    llm = build_llm(c.llm or "", options=c.llm_options) if proposer.uses_llm else None
    for part in (generator, judge, llm, similarity):
        _check(part)
    return T2IParts(c, task, generator, judge, similarity, proposer, llm)


def _describe_start(scorer: T2IScorer, task: T2ITask) -> tuple[str, ...]:
    reply = scorer.judge_call(*render(task.case(""), scorer.run_dir, "describe"))
    cand, why = parse_prompt(reply)
    if cand is None:
        raise LLMReplyError(f"the judge gave no usable first prompt ({why}): {reply[:120]!r}")
    return (cand.template,)


# How each task finds its first prompt: the user's words, or the judge looking at the reference.
START: dict[str, Callable[[T2IScorer, T2ITask], tuple[str, ...]]] = {
    "generate": lambda scorer, task: (task.intent or "",),
    "invert": _describe_start,
    "personalize": _describe_start,
}


def _run(parts: T2IParts, store: RunStore, out: Path, callbacks: Sequence[Callback]) -> StudyResult:
    c, b = parts.config, parts.config.budget
    try:
        calls = RecordedCalls(store, Meter(Budget(scorer_queries=b.trials, llm_calls=b.llm_calls,
                                                  llm_tokens=b.llm_tokens, cost_usd=b.cost_usd, images=b.images)))
        scorer = T2IScorer(run_dir=out, calls=calls, task=parts.task, generator=parts.generator, judge=parts.judge,
                           similarity=parts.similarity, objective=c.objective, seed=c.seed, n_images=c.generator.n)
        task = replace(parts.task, start_prompts=START[c.kind](scorer, parts.task))
        proposer = T2I_METHODS.create(c.method, options=dict(c.method_options), task=task)
        cache = LLMCache(Path(c.cache_dir).expanduser() / "llm_cache.sqlite") if c.llm_cache else None
        llm = CachedLLM(parts.llm, cache) if parts.llm is not None else None
        study = Study(store=store, proposer=proposer, scorer=scorer, task=TaskInfo(f"t2i-{c.kind}", c.task, ()),
                      llm=llm, seed=c.seed, calls=calls, callbacks=callbacks,
                      cost_fn=reply_cost_fn(parts.llm))
        return study.optimize(n_jobs=c.n_jobs)
    finally:
        with contextlib.suppress(Exception):
            store.close()


def start_run(config: T2IConfig, out: Path, callbacks: Sequence[Callback] = (),
              reference: Path | None = None) -> StudyResult:
    """A new run in ``out``; ``reference`` is the image to invert, or personalize's reference."""
    if reference is not None:
        open_image(reference)  # a bad image is a one-line error before anything is created
    parts = build_parts(config)
    store = RunStore.create(out, config.model_dump(mode="json"))
    if reference is not None:
        copy_reference(reference, out)
    return _run(parts, store, out, callbacks)


def resume_run(out: Path, callbacks: Sequence[Callback] = (), **changes: Any) -> StudyResult:
    store = RunStore.open(out)
    config = load_stored({**store.config, **changes}, out)
    try:
        parts = build_parts(config)
    except BaseException:
        store.close()
        raise
    return _run(parts, store, out, callbacks)


@dataclass(frozen=True)
class Source:
    """What personalize takes from an earlier run: its settings, final prompt and reference."""

    config: dict[str, Any]
    prompt: str
    reference: Path


def load_source(run: Path) -> Source:
    store = RunStore.open(run)
    try:
        config = store.config
        if config.get("kind") not in KINDS:
            raise ConfigError(f"{run} is not a text-to-image run: personalize takes a run of "
                              "`promptclimb invert` (or `generate`)")
        final = store.result("final") or {}
        ranked = sorted((t for t in store.trials() if t.ok and t.template), key=lambda t: -(t.train_score or 0))
        prompt = final.get("template") or (ranked[0].template if ranked else None)
        if not prompt:
            raise ConfigError(f"{run} has no prompt yet: continue it with `promptclimb resume {run}`")
        reference = run / REFERENCE_FILE
        if not reference.is_file():
            best = next((t for t in ranked if t.template == prompt), None)
            images = best.metrics.get("images") if best else None
            if not images:
                raise ConfigError(f"{run} holds neither {REFERENCE_FILE} nor an image of its final prompt")
            reference = run / images[0]
        return Source(config, prompt, reference)
    finally:
        store.close()
