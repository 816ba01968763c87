"""gepa through the Study: every evaluate call GEPA makes is one trial in the store (same count,
same templates, the per-image scores GEPA saw are the trial's), the reflection request carries
the class feedback, bad replies and GEPA's own exceptions are failed trials, the budget stops
GEPA's thread, a resumed run rescores nothing, and a missing package is one line."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from proposer_helpers import FRESH, TASK, RunMethod, user_text

from promptclimb.candidate import TrialState
from promptclimb.llm.base import ChatRequest
from promptclimb.proposers import build_method
from promptclimb.proposers.class_feedback import class_feedback, trial_outcomes
from promptclimb.proposers.gepa_adapter import GepaMissing, GepaProposer, StudyAdapter
from promptclimb.store import RunStore
from promptclimb.study import Budget, Study
from promptclimb.testing import FakeScorer, ScriptedLLM

pytest.importorskip("gepa")


def _fresh(request: ChatRequest) -> str:
    """A new template each call (in call order), so GEPA always has something new to try."""
    return FRESH[request.call_number % len(FRESH)]


@pytest.fixture
def gepa_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[int], list[float]]]:
    """What GEPA itself called evaluate with and got back, seen from outside the adapter."""
    seen: list[tuple[str, list[int], list[float]]] = []
    original = StudyAdapter.evaluate

    def spy(self: StudyAdapter, batch: list[int], candidate: dict[str, str], capture_traces: bool = False) -> Any:
        out = original(self, batch, candidate, capture_traces)
        seen.append((candidate["template"], list(batch), list(out.scores)))
        return out

    monkeypatch.setattr(StudyAdapter, "evaluate", spy)
    return seen


def _per_item(trial: Any, by_template: dict[str, Any]) -> list[float]:
    source = by_template.get(trial.template, trial) if trial.state is TrialState.DUPLICATE else trial
    return [float(c) for c in source.metrics["per_item"]]


def test_every_gepa_metric_call_is_one_trial_with_the_scores_gepa_saw(
        run_method: RunMethod, gepa_calls: list[tuple[str, list[int], list[float]]]) -> None:
    run = run_method("gepa", {"max_queries": 12}, _fresh)
    stored = [s for s in run.stored if s.key.startswith("gepa/")]
    assert len(stored) == len(gepa_calls) > 12
    assert [s.key for s in stored] == [f"gepa/e{i}" for i in range(len(stored))]
    assert [s.trial.template for s in stored] == [t for t, _, _ in gepa_calls]
    first = {s.trial.template: s.trial for s in run.stored if s.trial.state is TrialState.COMPLETE}
    for s, (_, batch, scores) in zip(stored, gepa_calls, strict=True):
        outcome = _per_item(s.trial, first)
        assert scores == [outcome[i] for i in batch]
    # GEPA's seed is the pool's best on train, evaluated first on all train images
    best_pool = max(run.pool(), key=lambda t: (t.train_score or 0.0, -t.number))
    assert gepa_calls[0][0] == best_pool.template and gepa_calls[0][1] == list(range(40))
    # the budget mapping: a new template costs one query, a scored one none; GEPA stops at max_queries
    complete = [s for s in stored if s.trial.state is TrialState.COMPLETE]
    assert len(complete) == 12
    assert run.result.usage.scorer_queries == 20 + 12
    assert len(run.scorer.calls) == 32  # the fake scorer saw each template once
    # every candidate in GEPA's own result is a recorded trial
    proposer = run.study.proposer
    assert isinstance(proposer, GepaProposer)
    assert {c["template"] for c in proposer.result.candidates} <= {s.trial.template for s in stored}


def test_the_reflection_request_shows_per_image_and_class_feedback(run_method: RunMethod) -> None:
    run = run_method("gepa", {"max_queries": 3}, _fresh)
    request = run.requests[0]
    text = user_text(request)
    # the template reflected on is a trial's; its class feedback, computed here from the trial
    current = text.split("The current template is:\n", 1)[1].split("\n", 1)[0]
    trial = next(t for t in run.trials() if t.template == current and t.state is TrialState.COMPLETE)
    pairs = trial_outcomes(trial.metrics)
    assert pairs is not None
    expected = class_feedback(*pairs, TASK.class_names).replace("\n", "; ")
    assert f"feedback: {expected}" in text
    assert "training image" in text and ("taken for" in text or "classified right" in text)
    assert request.shape == "template_line" and request.completion_prompt


@pytest.mark.parametrize("reply, reason", [("no placeholder here at all", "no {} placeholder"),
                                           ("a {} and a {} together", "more than one {}")])
def test_a_reply_with_no_slot_or_several_is_a_failed_trial(run_method: RunMethod, reply: str, reason: str) -> None:
    run = run_method("gepa", {"max_evaluations": 12}, [reply])
    failed = [s.trial for s in run.stored if s.key.startswith("gepa/") and s.trial.state is TrialState.FAILED]
    assert failed and all(t.template is None and reason in (t.error or "") for t in failed)
    assert run.study.store.finished


def test_an_exception_inside_gepa_is_one_failed_trial_and_the_run_finishes(
        run_method: RunMethod, monkeypatch: pytest.MonkeyPatch) -> None:
    from gepa.proposer.reflective_mutation.reflective_mutation import ReflectiveMutationProposer

    def boom(self: Any, state: Any) -> Any:
        raise RuntimeError("gepa broke\non two lines")

    monkeypatch.setattr(ReflectiveMutationProposer, "propose", boom)
    run = run_method("gepa", {}, _fresh)
    failed = [s for s in run.stored if s.key.startswith("gepa/error")]
    assert len(failed) == 1
    assert failed[0].trial.error == "gepa raised RuntimeError: gepa broke on two lines"
    assert run.study.store.finished and run.result.best is not None


def test_the_study_budget_stops_gepa_and_its_thread(run_method: RunMethod) -> None:
    run = run_method("gepa", {"max_queries": 100}, _fresh, budget=Budget(scorer_queries=26))
    assert run.result.stopped_by == "scorer_queries=26" and run.result.usage.scorer_queries == 26
    assert not [t for t in __import__("threading").enumerate() if t.name.startswith("gepa-")]


def test_a_resumed_run_replays_gepa_and_rescores_nothing(tmp_path: Path) -> None:
    def study(out: Path, scorer: FakeScorer, budget: int) -> Study:
        store = RunStore.open(out) if out.exists() else RunStore.create(out, {})
        return Study(store=store, proposer=build_method("gepa", {"max_queries": 10}), scorer=scorer, task=TASK,
                     llm=ScriptedLLM(_fresh), seed=2, budget=Budget(scorer_queries=budget))

    first = study(tmp_path / "r", FakeScorer(), 25)  # killed by its budget after 5 GEPA queries
    first.optimize()
    n_first = len(first.trials())
    again = FakeScorer()
    resumed = study(tmp_path / "r", again, 40)
    resumed.optimize()
    straight = study(tmp_path / "s", FakeScorer(), 40)
    straight.optimize()
    assert [t.template for t in resumed.trials()] == [t.template for t in straight.trials()]
    assert len(again.calls) == 30 - 25 and n_first < len(resumed.trials())


def test_gepa_not_installed_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from promptclimb.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gepa" else real(name, *a))
    with pytest.raises(GepaMissing, match=r"pip install 'promptclimb\[gepa\]'"):
        build_method("gepa")
    code = main(["optimize", "--task", "demo", "--scorer", "fake", "--llm", "scripted", "--method", "gepa",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "promptclimb[gepa]" in err
