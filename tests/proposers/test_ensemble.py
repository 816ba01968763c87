"""Method ``ensemble``: on a constructed scorer whose ensembles are known (an ensemble gets an
image right when any member does: greedy forward selection is greedy set cover), which ensembles
it builds, where it stops, how ties break, what it asks the LLM, and how the budget cuts it off."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptclimb.candidate import Candidate, Score
from promptclimb.prompt_set import PromptSet, parse_set_key
from promptclimb.proposers import METHODS, build_method
from promptclimb.store import RunStore
from promptclimb.study import Budget, Study
from promptclimb.tasks import build_task
from promptclimb.testing import ScriptedLLM

TASK = build_task("demo", shots=1, seed=1).info
A, B, C, D, E, F = ("a photo of a {}.", "a sketch of a {}.", "a drawing of a {}.", "art of the {}.",
                    "a toy {}.", "a {} in art.")
PAINTING = "a painting of a {}."
COVERS = {A: {0, 1, 2, 3, 4, 5}, B: {0, 1, 2, 3, 4}, C: {6, 7}, D: {8}, E: set(), F: {6, 7}, PAINTING: {9}}
BONUS = {F}  # raises the mean margin of every ensemble holding it (the tie-break's signal)


class CoverScorer:
    """Ten images; a template gets right the images it covers, an ensemble the union of its members'."""

    name = "cover"
    description = "constructed: ensembles are unions"

    def __init__(self) -> None:
        self.scored: list[str] = []

    def splits(self) -> tuple[str, ...]:
        return ("train", "test")

    def _score(self, members: tuple[str, ...], split: str) -> Score:
        right = set().union(*(COVERS.get(t, set()) for t in members))
        value = len(right) / 10
        return Score(value, {"mean_margin": value + 0.01 * len(BONUS & set(members)), "cross_entropy": 1 - value})

    def score(self, template: str, split: str = "train") -> Score:
        Candidate(template)
        self.scored.append(template) if split == "train" else None
        return self._score((template,), split)

    def score_set(self, prompt_set: PromptSet, split: str = "train") -> Score:
        self.scored.append(prompt_set.key) if split == "train" else None
        return self._score(prompt_set.templates, split)


def _run(tmp_path: Path, pool: list[str], options: dict | None = None, replies: list[str] | None = None,
         budget: Budget | None = None) -> tuple[Study, CoverScorer, ScriptedLLM]:
    (tmp_path / "pool.txt").write_text("\n".join(pool) + "\n")
    opts = {"pool": {"source": "file", "path": str(tmp_path / "pool.txt")}, "llm_templates": 0, **(options or {})}
    scorer, llm = CoverScorer(), ScriptedLLM(replies or [])
    study = Study(store=RunStore.create(tmp_path / "run", {}), proposer=build_method("ensemble", opts),
                  scorer=scorer, task=TASK, llm=llm, seed=1, budget=budget)
    study.optimize()
    return study, scorer, llm


def _sets(study: Study) -> list[tuple[str, ...]]:
    return [found.templates for t in study.trials() if (found := parse_set_key(t.template)) is not None]


def test_greedy_selection_builds_the_known_ensemble_and_stops_when_nothing_helps(tmp_path: Path) -> None:
    study, scorer, _ = _run(tmp_path, [A, B, C, D, E], {"tie_break": "none"})
    steps = _sets(study)
    first = [s for s in steps if len(s) == 2]
    assert [set(s) for s in first] == [{A, B}, {A, C}, {A, D}, {A, E}]  # each single added to the best one
    assert [set(s) for s in steps if len(s) == 3] == [{A, C, B}, {A, C, D}, {A, C, E}]
    assert [set(s) for s in steps if len(s) == 4] == [{A, C, D, B}, {A, C, D, E}]  # neither helps: stop
    best = study.finish().best
    assert best is not None and parse_set_key(best.template) == PromptSet((A, C, D)) and best.train_score == 0.9
    assert len(scorer.scored) == 5 + 4 + 3 + 2  # each ensemble one scoring, none twice


def test_max_size_stops_early(tmp_path: Path) -> None:
    study, _, _ = _run(tmp_path, [A, B, C, D, E], {"max_size": 2})
    assert {len(s) for s in _sets(study)} == {2}
    best = study.finish().best
    assert best is not None and parse_set_key(best.template) == PromptSet((A, C))


@pytest.mark.parametrize(("tie_break", "expected"), [("mean_margin", {A, D, F}), ("none", {A, C, D})])
def test_equal_accuracies_are_broken_by_the_tie_rule(tmp_path: Path, tie_break: str, expected: set[str]) -> None:
    study, _, _ = _run(tmp_path, [A, B, C, D, E, F], {"tie_break": tie_break})
    last = [set(s) for s in _sets(study) if len(s) == 4]  # the final step grows the ensemble it kept
    assert last and all(s > expected for s in last) and len(last) == 3


def test_llm_templates_join_the_candidates(tmp_path: Path) -> None:
    study, _, llm = _run(tmp_path, [A, B, C, D], {"llm_templates": 1}, replies=[PAINTING])
    (request,) = llm.requests
    user = next(m.content for m in request.messages if m.role == "user")
    assert "averaged into one classifier" in user and all(f"- {t}" in user for t in (A, B, C, D))
    assert "%" not in user  # no scores
    best = study.finish().best
    assert best is not None and parse_set_key(best.template) == PromptSet((A, C, D, PAINTING))
    assert best.train_score == 1.0


def test_the_budget_cuts_a_step_off_cleanly(tmp_path: Path) -> None:
    study, scorer, _ = _run(tmp_path, [A, B, C, D, E], budget=Budget(scorer_queries=7))
    assert study.stopped_by is not None and len(scorer.scored) == 7
    assert len(_sets(study)) == 2 and study.store.finished


def test_registered_with_a_help_line_and_needs_an_ensemble_scorer() -> None:
    assert "ensemble" in METHODS.names() and "forward selection" in METHODS.help["ensemble"]
    assert build_method("ensemble").scorer_needs() == "ensembles"
    with pytest.raises(ValueError, match="takes no argument"):
        build_method("ensemble:x")


def test_asks_for_an_llm_only_when_it_writes_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    from promptclimb.config import RunConfig
    from promptclimb.llm.base import LLMConfigError
    from promptclimb.run import build_parts

    assert build_method("ensemble").needs_llm()
    assert not build_method("ensemble", {"llm_templates": 0}).needs_llm()
    assert build_method("ensemble", {"llm_templates": 0, "pool": {"source": "llm"}}).needs_llm()
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = {"task": "demo", "scorer": "fake", "method": "ensemble", "llm": "openai:gpt-4o-mini"}
    with pytest.raises(LLMConfigError, match="OPENAI_API_KEY"):  # the LLM is built, and fails, when asked
        build_parts(RunConfig.model_validate(config))
    parts = build_parts(RunConfig.model_validate({**config, "method_options": {"llm_templates": 0}}))
    assert parts.llm is None
