"""What a run came to, read back from its store: the figures `show --json` prints and the
best templates that `export` writes. Pure functions of the store."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from promptclimb.calls import KINDS as CALL_KINDS
from promptclimb.candidate import Trial, TrialState
from promptclimb.prompt_set import prompt_json, short_form
from promptclimb.racing import IMAGES_SCORED, is_pruned
from promptclimb.references import PHOTO, POOL_BEST, reference_test
from promptclimb.selection import BestTrainSelector
from promptclimb.store import Exchange, RunStore


def best_trials(trials: list[Trial], k: int = 10) -> list[Trial]:
    return BestTrainSelector().select(trials)[:k]


Conversation = tuple[int, int, list[Trial], Exchange | None]


def conversations(trials: list[Trial], exchanges: list[Exchange]) -> list[Conversation]:
    """(restart, reset, its suggestions, its latest exchange) per LLM conversation, in order; the
    latest request holds the whole conversation so far."""
    by_id = {e.id: e for e in exchanges}
    groups: dict[tuple[int, int], list[Trial]] = defaultdict(list)
    for t in trials:
        if t.exchange_id is not None:
            groups[(t.restart, t.reset)].append(t)
    return [(restart, reset, ts, by_id.get(max(t.exchange_id or 0 for t in ts)))
            for (restart, reset), ts in sorted(groups.items())]


def run_summary(store: RunStore) -> dict[str, Any]:
    trials = store.trials()
    calls = {kind: store.calls(kind) for kind in CALL_KINDS}
    final = store.result("final") or {}
    references = store.result("references") or []  # report only: scored on test after the run
    config = store.config
    ranking = best_trials(trials, 1)
    best = ranking[0] if ranking else None
    chosen = final.get("template") or (best.template if best else None)
    return {
        # a template, or a prompt set's key; the set in full and in short where it is one
        "best_template": chosen,
        "best_prompt_set": prompt_json(chosen),
        "best_short": short_form(chosen) if chosen else None,
        "best_train_score": final.get("train_score") if final else (best.train_score if best else None),
        "final_val_score": final.get("val_score"),
        "final_test_score": final.get("test_score"),
        "photo_test_score": reference_test(references, PHOTO),
        "pool_best_test_score": reference_test(references, POOL_BEST),
        "references": references,
        "n_trials": len(trials),
        "n_complete": sum(t.state is TrialState.COMPLETE for t in trials),
        "n_failed": sum(t.state is TrialState.FAILED for t in trials),
        "n_duplicates": sum(t.state is TrialState.DUPLICATE for t in trials),
        "n_pruned": sum(is_pruned(t) for t in trials),  # racing: a failed trial, counted apart
        "scorer_queries": sum(int(t.metrics.get("queries", 0)) for t in trials),
        "scorer_images": sum(int(t.metrics.get(IMAGES_SCORED, 0)) for t in trials),
        "llm_calls": len(calls["llm"]),  # the chat LLM's calls only
        "llm_tokens": sum(c.tokens for c in calls["llm"]),
        "llm_cost_usd": round(sum(c.cost_usd or 0.0 for c in calls["llm"]), 6),
        "image_calls": len(calls["image"]),
        "judge_calls": len(calls["judge"]),
        "cost_usd": {kind: round(sum(c.cost_usd or 0.0 for c in cs), 6) for kind, cs in calls.items()},
        "method": config.get("method"),
        "task": config.get("task"),
        "scorer": config.get("scorer"),
        "llm": config.get("llm"),
        "seed": config.get("seed"),
        "shots": config.get("shots"),
        "stopped_by": final.get("stopped_by"),
        "finished": store.finished,
    }

