from __future__ import annotations

from pathlib import Path

import pytest

from promptclimb.candidate import Score, TrialState
from promptclimb.evaluation import PostHocEvaluation
from promptclimb.proposers import build_method
from promptclimb.selection import BestTrainSelector, BestValOfTopSelector
from promptclimb.store import RunStore, StoreError
from promptclimb.study import Budget, Study
from promptclimb.tasks import build_task
from promptclimb.testing import FakeScorer, ScriptedLLM
from promptclimb.testing.scripted import default_replies

HC = {"restarts": 2, "resets": 2, "iterations": 3}


def _study(tmp_path: Path, *, name: str = "run", llm: ScriptedLLM | None = None,
           scorer: FakeScorer | None = None, method: str = "hill_climb", options: dict | None = None,
           **kw: object) -> Study:
    run = tmp_path / name
    store = RunStore.open(run) if run.exists() else RunStore.create(run, {})
    scorer = scorer or FakeScorer()
    kw.setdefault("evaluation", PostHocEvaluation(scorer))  # as a run evaluates: the pick on test, post hoc
    return Study(store=store, proposer=build_method(method, options if options is not None else HC),
                 scorer=scorer, task=build_task("demo", shots=1, seed=1).info,
                 llm=llm or ScriptedLLM(default_replies()), seed=1, **kw)  # type: ignore[arg-type]


def _signature(store: RunStore) -> list[tuple[str, str, str | None, float | None]]:
    return [(s.key, s.trial.state.value, s.trial.template, s.trial.train_score)
            for s in store.stored_trials()]


def test_runs_pool_then_restarts_and_selects_best_on_train(tmp_path: Path) -> None:
    study = _study(tmp_path)
    result = study.optimize()
    trials = study.trials()
    pool = [t for t in trials if t.exchange_id is None]
    assert len(pool) == 20
    # m=2 restarts x n=2 resets x k=3 iterations, one template each
    assert len([t for t in trials if t.exchange_id is not None]) == 12
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    assert result.best is not None
    assert result.best.train_score == max(t.train_score or 0 for t in complete)
    assert result.test_score is not None and result.best.test_score == result.test_score.value
    assert study.store.finished
    # on test: the final template once chosen, then (report only) the references, nothing else
    scorer = study.scorer
    assert isinstance(scorer, FakeScorer)
    refs = study.store.result("references")
    pool_best = max((t for t in pool if t.train_score is not None), key=lambda t: t.train_score or 0)
    assert [r["template"] for r in refs] == ["a photo of a {}.", pool_best.template]
    tested = [c[0] for c in scorer.calls if c[1] == "test"]
    assert tested == [result.best.template, *(r["template"] for r in refs if not r["is_chosen"])]
    assert all(r["test"] == FakeScorer().score(r["template"], "test").value for r in refs)


def test_duplicates_are_answered_from_the_store_not_rescored(tmp_path: Path) -> None:
    scorer = FakeScorer()
    study = _study(tmp_path, llm=ScriptedLLM(["a photo of a {}."]), scorer=scorer,
                   options={"restarts": 1, "resets": 1, "iterations": 2})
    study.optimize()
    dups = [t for t in study.trials() if t.state is TrialState.DUPLICATE]
    assert len(dups) == 2 and all(t.duplicate_of == 0 for t in dups)
    assert dups[0].train_score == study.trials()[0].train_score
    assert [c for c in scorer.calls if c == ("a photo of a {}.", "train")] == [("a photo of a {}.", "train")]


def test_scorer_errors_are_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    study = _study(tmp_path, scorer=FakeScorer(fail_on=("bright",)))
    result = study.optimize()
    failed = [t for t in study.trials() if t.state is TrialState.FAILED]
    assert failed and all("scorer: ScorerError" in (t.error or "") for t in failed)
    assert all("bright" in (t.template or "") for t in failed)
    assert result.best is not None and len(study.trials()) == 32


@pytest.mark.parametrize(("budget", "what"), [
    (Budget(scorer_queries=25), "scorer_queries=25"),
    (Budget(llm_calls=4), "llm_calls=4"),
    (Budget(llm_tokens=500), "llm_tokens=500"),
])
def test_budget_stops_the_run_cleanly(tmp_path: Path, budget: Budget, what: str) -> None:
    study = _study(tmp_path, budget=budget)
    result = study.optimize()
    assert result.stopped_by == what
    assert study.store.finished and result.best is not None
    if budget.scorer_queries:
        assert study.usage.scorer_queries == 25
    if budget.llm_calls:
        assert len(study.store.exchanges()) == 4


def test_resume_after_a_crash_replays_without_rescoring_or_recalling(tmp_path: Path) -> None:
    reference_llm = ScriptedLLM(default_replies())
    reference = _study(tmp_path, name="ref", llm=reference_llm)
    reference.optimize()

    class Crash(BaseException):
        pass

    class CrashingScorer(FakeScorer):
        def score(self, template: str, split: str = "train") -> Score:
            if len(self.calls) == 26:
                raise Crash
            return super().score(template, split)

    first_llm = ScriptedLLM(default_replies())
    with pytest.raises(Crash):
        _study(tmp_path, scorer=CrashingScorer(), llm=first_llm).optimize()
    recorded = {t.template for t in RunStore.open(tmp_path / "run").trials()}
    assert 20 < len(recorded) < 32

    scorer, llm = FakeScorer(), ScriptedLLM(default_replies())
    resumed = _study(tmp_path, scorer=scorer, llm=llm)
    resumed.optimize()
    assert not {t for t, split in scorer.calls if split == "train"} & recorded
    # replayed calls are not made again (one may be lost in flight)
    assert len(llm.requests) + len(first_llm.requests) - 1 <= len(reference_llm.requests)
    assert _signature(resumed.store) == _signature(reference.store)
    assert resumed.store.result("final") == reference.store.result("final")


def test_a_store_from_other_code_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a photo of a {}.\n{}\n")
    (tmp_path / "b.txt").write_text("a sketch of a {}.\n{}\n")
    one = {"restarts": 1, "resets": 1, "iterations": 1}
    _study(tmp_path, options={**one, "pool": {"source": "file", "path": str(tmp_path / "a.txt")}}).optimize()
    changed = _study(tmp_path, options={**one, "pool": {"source": "file", "path": str(tmp_path / "b.txt")}})
    with pytest.raises(StoreError, match="diverged from its store at pool/0"):
        changed.optimize()
    assert len(RunStore.open(tmp_path / "run").trials()) == 3  # nothing lost


def test_concurrent_restarts_give_the_same_trials(tmp_path: Path) -> None:
    def by_prompt(request):  # type: ignore[no-untyped-def]
        # order-independent replies: a function of the request's seed
        return default_replies()[(request.seed or 0) % len(default_replies())]

    seq = _study(tmp_path, name="seq", llm=ScriptedLLM(by_prompt))
    seq.optimize()
    par = _study(tmp_path, name="par", llm=ScriptedLLM(by_prompt))
    par.optimize(n_jobs=2)
    key = lambda s: sorted((k, t) for k, _, t, _ in _signature(s.store))  # noqa: E731
    assert key(seq) == key(par)
    assert seq.store.result("final")["template"] == par.store.result("final")["template"]


def test_ask_and_tell(tmp_path: Path) -> None:
    study = _study(tmp_path, options={"restarts": 1, "resets": 1, "iterations": 2})
    scorer = FakeScorer()
    asked = 0
    while (p := study.ask()) is not None:
        asked += 1
        assert p.candidate is not None
        study.tell(p, scorer.score(p.candidate.template))
    trials = study.trials()
    assert asked == len(trials) == 22
    llm_trials = [t for t in trials if t.exchange_id is not None]
    assert len(llm_trials) == 2
    result = study.finish()
    assert result.best is not None and result.best.train_score == max(t.train_score or 0 for t in trials)


def test_an_llm_with_nothing_usable_is_reported_in_one_line_and_the_run_ends(tmp_path: Path) -> None:
    llm = ScriptedLLM(["I would be happy to help with that!"])
    study = _study(tmp_path, llm=llm, options={"restarts": 2, "resets": 2, "iterations": 5, "max_retries": 1})
    result = study.optimize()
    assert len(result.warnings) == 2  # one per restart, each stopped early
    assert all("no usable template 6 times in a row" in w and "\n" not in w for w in result.warnings)
    assert "no {} placeholder" in result.warnings[0]
    failed = [t for t in study.trials() if t.state is TrialState.FAILED]
    assert len(failed) == 12 and len(llm.requests) == 24  # 2 attempts per failed trial
    assert result.best is not None and result.best.exchange_id is None  # the pool's best stands
    assert study.store.result("warnings") == list(result.warnings)


def test_best_val_top10_scores_the_train_top_on_val_at_the_end_once_and_counts_it(tmp_path: Path) -> None:
    scorer = FakeScorer()
    result = _study(tmp_path, scorer=scorer, selector=BestValOfTopSelector()).optimize()
    stored = {t.number: t for t in RunStore.open(tmp_path / "run").trials()}
    top = BestTrainSelector().select(list(stored.values()))[:10]
    assert {c[0] for c in scorer.calls if c[1] == "val"} == {t.template for t in top}
    assert all(stored[t.number].val_score == FakeScorer().score(t.template or "", "val").value for t in top)
    best_val = max(top, key=lambda t: (stored[t.number].val_score or 0.0, -top.index(t)))
    assert result.best is not None and result.best.number == best_val.number
    # each val query sits in its trial's metrics, where show, the bench and the dashboard count
    assert {n for n, t in stored.items() if t.metrics.get("val_at_finish")} == {t.number for t in top}
    searched = sum(int(t.metrics["queries"]) for t in stored.values())
    scored_on_train = sum(t.state is TrialState.COMPLETE for t in stored.values())  # one query each
    assert result.usage.scorer_queries == searched == scored_on_train + 10
    # the finish again, as a resume does: nothing rescored on val, the same count
    again = FakeScorer()
    resumed = _study(tmp_path, scorer=again, selector=BestValOfTopSelector()).optimize()
    assert [c for c in again.calls if c[1] == "val"] == []
    assert resumed.usage.scorer_queries == searched
    assert resumed.best is not None and resumed.best.number == best_val.number

