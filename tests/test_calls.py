"""The recorded-call layer: a recorded call is replayed (and charged) instead of made again, a live
one is checked against the budget, recorded with its kind in its own form and charged; LLM errors
replay as errors, failed image calls are made again; the one meter holds every kind to its limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptclimb.calls import IMAGE, JUDGE, LLM, Budget, Made, Meter, RecordedCalls
from promptclimb.llm.base import BudgetExhausted, LLMError
from promptclimb.store import RunStore


def _calls(tmp_path: Path, budget: Budget | None = None) -> RecordedCalls:
    return RecordedCalls(RunStore.create(tmp_path / "run", {}), Meter(budget))


def test_a_recorded_call_is_replayed_and_charged_not_made_again(tmp_path: Path) -> None:
    made: list[str] = []

    def live() -> Made:
        made.append("x")
        return Made({"text": "fine"}, 10, 5, cost_usd=0.5)

    first = _calls(tmp_path)
    record = first.call(JUDGE, "k", 0, "judge-model", {"system": "s", "user": "u"}, live)
    first.store.close()
    again = RecordedCalls(RunStore.open(tmp_path / "run"))
    replayed = again.call(JUDGE, "k", 0, "judge-model", {"system": "s", "user": "u"}, live)
    assert made == ["x"] and replayed.response == record.response == {"text": "fine"}
    assert again.meter.usage.calls == {JUDGE: 1} and again.meter.usage.cost_by_kind == {JUDGE: 0.5}
    assert again.meter.usage.llm_calls == 0  # a judge call is not an LLM call
    assert [c.kind for c in again.store.calls()] == [JUDGE] and again.store.exchanges() == []


def test_an_llm_error_replays_as_an_error_but_a_failed_image_is_made_again(tmp_path: Path) -> None:
    calls = _calls(tmp_path)

    def fail() -> Made:
        raise LLMError("no")

    for kind in (LLM, IMAGE):
        with pytest.raises(LLMError):
            calls.call(kind, "k", 0, "m", {}, fail)
    with pytest.raises(LLMError, match="no"):
        calls.call(LLM, "k", 0, "m", {}, lambda: Made({"texts": ["late"]}))
    record = calls.call(IMAGE, "k", 0, "m", {}, lambda: Made({"images": []}, units=1))
    assert record.response == {"images": []} and calls.meter.usage.images == 1


def test_the_one_meter_holds_each_kind_to_its_limits(tmp_path: Path) -> None:
    calls = _calls(tmp_path, Budget(images=2, llm_calls=1, cost_usd=1.0))
    calls.call(IMAGE, "a", 0, "m", {}, lambda: Made({"images": []}, units=1, cost_usd=0.6), units=1)
    with pytest.raises(BudgetExhausted, match="images=2"):
        calls.call(IMAGE, "b", 0, "m", {}, lambda: Made({"images": []}, units=2), units=2)
    calls.call(LLM, "c", 0, "m", {}, lambda: Made({"texts": ["t"]}, 3, 4))
    with pytest.raises(BudgetExhausted, match="llm_calls=1"):
        calls.call(LLM, "d", 0, "m", {}, lambda: Made({"texts": ["t"]}))
    calls.call(IMAGE, "e", 0, "m", {}, lambda: Made({"images": []}, units=1, cost_usd=0.6), units=1)
    with pytest.raises(BudgetExhausted, match=r"cost_usd=1\.0"):  # images, judge and LLM share the money
        calls.call(IMAGE, "f", 0, "m", {}, lambda: Made({"images": []}), units=0)
    u = calls.meter.usage
    assert (u.llm_calls, u.llm_tokens, u.images, round(u.cost_usd, 6)) == (1, 7, 2, 1.2)
