"""Every method at the same budget stops at the same number of scorer queries, and the default
counts of the LLM methods match hill_climb's (pool 20 + 30 requests = 50 queries)."""

from __future__ import annotations

from typing import Any

import pytest
from proposer_helpers import FRESH, RunMethod

from promptclimb.study import Budget

SMALL_POOL = {"pool": {"size": 5}}
METHODS: dict[str, dict[str, Any]] = {
    "hill_climb": SMALL_POOL,
    "hill_climb_pos": SMALL_POOL,
    "hill_climb_noscore": SMALL_POOL,
    "hill_climb_single": SMALL_POOL,
    "llm_no_feedback": SMALL_POOL,
    "ape": SMALL_POOL,
    "iterative_ape": SMALL_POOL,
    "opro": SMALL_POOL,
    "best_of_pool": {},
    "random_pool": {"picks": 15},
    "fixed": {"templates": FRESH[:15]},
}
LLM_METHODS = [m for m in METHODS if m not in ("best_of_pool", "random_pool", "fixed")]


@pytest.mark.parametrize("method", sorted(METHODS))
def test_budget_stops_every_method_at_the_same_count(run_method: RunMethod, method: str) -> None:
    run = run_method(method, METHODS[method], FRESH, budget=Budget(scorer_queries=12))
    assert run.result.stopped_by == "scorer_queries=12"
    assert run.result.usage.scorer_queries == 12
    assert len(run.scored_train()) == 12


@pytest.mark.parametrize("method", LLM_METHODS)
def test_default_counts_match_hill_climb(run_method: RunMethod, method: str) -> None:
    run = run_method(method, {}, FRESH)
    assert run.result.stopped_by is None
    assert len(run.requests) == 30
    assert run.result.usage.scorer_queries == 50 == len(run.scored_train())
