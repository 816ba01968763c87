"""Post-hoc evaluation is apart from the loop: a Study without one never scores on test; with the
run's PostHocEvaluation the pick is scored on test, the oracle row is written for the report, and the
budget curve carries the test score of each best-so-far."""

from __future__ import annotations

from pathlib import Path

from promptclimb.evaluation import PostHocEvaluation, budget_curve
from promptclimb.proposers import build_method
from promptclimb.store import RunStore
from promptclimb.study import Study
from promptclimb.tasks import build_task
from promptclimb.testing import FakeScorer, ScriptedLLM
from promptclimb.testing.scripted import default_replies

OPTIONS = {"restarts": 1, "resets": 1, "iterations": 3}


def _study(tmp_path: Path, scorer: FakeScorer, **kw: object) -> Study:
    return Study(store=RunStore.create(tmp_path / "run", {}), proposer=build_method("hill_climb", OPTIONS),
                 scorer=scorer, task=build_task("demo", shots=1, seed=1).info, llm=ScriptedLLM(default_replies()),
                 seed=1, **kw)  # type: ignore[arg-type]


def test_the_loop_alone_never_looks_at_test(tmp_path: Path) -> None:
    scorer = FakeScorer()
    result = _study(tmp_path, scorer).optimize()
    assert result.best is not None and result.test_score is None
    assert not [c for c in scorer.calls if c[1] == "test"]


def test_the_evaluation_scores_the_pick_and_the_oracle_on_test(tmp_path: Path) -> None:
    scorer = FakeScorer()
    study = _study(tmp_path, scorer, evaluation=PostHocEvaluation(scorer, oracle_top_n=3))
    result = study.optimize()
    assert result.best is not None and result.test_score is not None
    store = study.store
    assert store.result("final")["test_score"] == result.test_score.value == result.best.test_score
    oracle = store.result("oracle")
    assert oracle["top_n"] == 3 and oracle["test_score"] >= result.test_score.value
    curve = budget_curve(store, scorer)
    assert len(curve) == len(store.trials()) and curve[-1]["best_train"] == result.best.train_score
    assert curve[-1]["best_test"] is not None
