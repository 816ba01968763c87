"""Prompt sets through a whole run: the store, selection, `show` (text and --json), `export`, the
HTML report, post-hoc test scoring and resume (a resumed run scores no set twice)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from promptclimb.candidate import Candidate, Score
from promptclimb.cli import main
from promptclimb.evaluation import PostHocEvaluation
from promptclimb.prompt_set import PromptSet, parse_set_key
from promptclimb.proposers import build_method
from promptclimb.proposers.base import Proposal, ProposalStream, Proposer, ProposerEnv
from promptclimb.run_report import render_run_report
from promptclimb.store import RunStore
from promptclimb.study import Budget, Study
from promptclimb.tasks import build_task
from promptclimb.testing import FakeScorer
from promptclimb.vlm.base import CLASS_TEXTS

TASK = build_task("demo", shots=1, seed=1).info
NAMES = tuple(TASK.class_names)
DESCRIBED = PromptSet(("a photo of a {}.",), {NAMES[0]: (f"a {NAMES[0]}, seen up close",),
                                              NAMES[1]: (f"a {NAMES[1]} in the wild", f"a small {NAMES[1]}")})
ENSEMBLE = PromptSet(("a photo of a {}.", "a sketch of a {}."))


class _SetsWin(FakeScorer):
    """A fake scorer under which prompt sets beat every single template."""

    def score_set(self, prompt_set: PromptSet, split: str = "train") -> Score:
        return replace(super().score_set(prompt_set, split), value=0.99 if prompt_set.class_texts else 0.98)


class _Sets(Proposer):
    name = "sets"
    uses_llm = False

    def n_streams(self) -> int:
        return 0

    def run_pool(self, env: ProposerEnv) -> ProposalStream:
        yield [Proposal("pool/0", Candidate("a photo of a {}.")), Proposal("pool/1", ENSEMBLE),
               Proposal("pool/2", DESCRIBED), Proposal("pool/3", PromptSet.of(reversed(ENSEMBLE.templates)))]


def _study(run: Path, scorer: FakeScorer, budget: Budget | None = None) -> Study:
    store = RunStore.open(run) if run.exists() else RunStore.create(run, {"method": "sets"})
    return Study(store=store, proposer=_Sets(), scorer=scorer, task=TASK, budget=budget,
                 evaluation=PostHocEvaluation(scorer))


def test_sets_are_stored_chosen_tested_shown_and_exported(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    scorer = _SetsWin(class_names=NAMES)
    result = _study(run, scorer).optimize()
    trials = RunStore.open(run).trials()
    assert [t.template for t in trials] == ["a photo of a {}.", ENSEMBLE.key, DESCRIBED.key, ENSEMBLE.key]
    assert [t.state.value for t in trials] == ["complete", "complete", "complete", "duplicate"]
    assert result.best is not None and parse_set_key(result.best.template) == DESCRIBED
    assert (DESCRIBED.key, "test") in scorer.calls and result.test_score is not None  # the set, on test

    capsys.readouterr()
    assert main(["show", str(run), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["best_template"] == DESCRIBED.key
    assert summary["best_prompt_set"] == DESCRIBED.to_json()
    assert summary["best_short"] == "a photo of a {}. + descriptions for 2 classes"
    assert main(["show", str(run)]) == 0
    shown = capsys.readouterr().out
    assert "descriptions for 2 classes" in shown and "ensemble of 2: a photo of a {}. | a sketch" in shown
    assert '"class_texts"' not in shown

    assert main(["export", str(run), "--to", str(tmp_path / "exp")]) == 0
    exp = tmp_path / "exp"
    assert json.loads((exp / "best_prompt_set.json").read_text()) == DESCRIBED.to_json()
    rows = json.loads((exp / "trials.json").read_text())
    assert [r["prompt_set"] for r in rows] == [None, ENSEMBLE.to_json(), DESCRIBED.to_json(), ENSEMBLE.to_json()]
    assert (exp / "best_templates.txt").read_text().splitlines() == ["a photo of a {}."]  # templates only

    html = render_run_report(run)
    assert "a photo of a {}. + descriptions for 2 classes" in html and "ensemble of 2:" in html


def test_a_resumed_run_scores_no_set_twice(tmp_path: Path) -> None:
    run, log = tmp_path / "run", tmp_path / "scored.log"
    first = _study(run, _SetsWin(class_names=NAMES, log_path=log), Budget(scorer_queries=2))
    assert first.optimize().stopped_by is not None
    assert [line.split("\t", 1)[1] for line in log.read_text().splitlines() if line.startswith("train")] == \
        ["a photo of a {}.", ENSEMBLE.key]
    first.store.close()
    log.unlink()
    result = _study(run, _SetsWin(class_names=NAMES, log_path=log)).optimize()
    train = [line.split("\t", 1)[1] for line in log.read_text().splitlines() if line.startswith("train")]
    assert train == [DESCRIBED.key]  # only what the killed run had not scored
    assert result.best is not None and result.best.template == DESCRIBED.key
    assert len(RunStore.open(run).trials()) == 4


def test_fixed_handwritten_as_one_ensemble_through_the_cli(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["optimize", "--task", "demo", "--scorer", "fake", "--method", "fixed:handwritten",
                 "--set", "method_options.as_ensemble=true", "--out", str(run)]) == 0
    trials = RunStore.open(run).trials()
    singles = [t.template for t in trials if parse_set_key(t.template) is None]
    assert singles == list(dict.fromkeys(TASK.handwritten_templates))
    together = parse_set_key(trials[-1].template)
    assert together == PromptSet(tuple(singles)) and trials[-1].state.value == "complete"
    assert trials[-1].train_score == FakeScorer(class_names=NAMES).score_set(together).value


def test_a_method_needing_sets_with_a_scorer_that_cannot_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from promptclimb.testing import fake_scorer

    monkeypatch.setattr(fake_scorer.FakeScorer, "score_set", None, raising=False)
    monkeypatch.setattr(fake_scorer.FakeScorer, "score_ensemble", None, raising=False)
    monkeypatch.delattr(fake_scorer.FakeScorer, "score_set")
    monkeypatch.delattr(fake_scorer.FakeScorer, "score_ensemble")
    capsys.readouterr()
    code = main(["optimize", "--task", "demo", "--scorer", "fake", "--method", "fixed:handwritten",
                 "--set", "method_options.as_ensemble=true", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "fixed:handwritten needs a scorer that scores template ensembles; scorer fake cannot" in err
    assert not (tmp_path / "run").exists()  # refused before any work


def test_fixed_scores_what_export_wrote_and_refuses_bad_files_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _study(tmp_path / "run", _SetsWin(class_names=NAMES)).optimize()
    exp = tmp_path / "exp"
    assert main(["export", str(tmp_path / "run"), "--to", str(exp)]) == 0
    common = ["optimize", "--task", "demo", "--scorer", "fake", "--seed", "2"]
    again = tmp_path / "again"
    assert main([*common, "--method", f"fixed:{exp / 'best_prompt_set.json'}", "--out", str(again)]) == 0
    [trial] = RunStore.open(again).trials()  # the set, scored as one classifier on the new run's split
    assert parse_set_key(trial.template) == DESCRIBED and trial.state.value == "complete"
    assert trial.train_score == FakeScorer(class_names=NAMES).score_set(DESCRIBED).value
    plain = tmp_path / "plain"
    assert main([*common, "--method", f"fixed:{exp / 'best_templates.txt'}", "--out", str(plain)]) == 0
    assert [t.template for t in RunStore.open(plain).trials()] == ["a photo of a {}."]

    copied = tmp_path / "copy.json"  # the file is read once, when the settings are checked
    copied.write_bytes((exp / "best_prompt_set.json").read_bytes())
    proposer = build_method(f"fixed:{copied}")
    copied.unlink()
    assert proposer.scorer_needs() == CLASS_TEXTS
    once = tmp_path / "once"
    Study(store=RunStore.create(once, {"method": "fixed"}), proposer=proposer, scorer=FakeScorer(class_names=NAMES),
          task=TASK).optimize()
    assert [parse_set_key(t.template) for t in RunStore.open(once).trials()] == [DESCRIBED]

    (tmp_path / "bad.json").write_text('{"templates": ["no slot"]}', encoding="utf-8")
    for bad, says in [(tmp_path / "missing.json", "does not exist: give the best_prompt_set.json"),
                      (tmp_path / "bad.json", "is not a prompt set"),
                      (tmp_path / "missing.txt", "does not exist: give a file with one template a line")]:
        capsys.readouterr()
        assert main([*common, "--method", f"fixed:{bad}", "--out", str(tmp_path / "no")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and says in err and "Traceback" not in err, err
    assert not (tmp_path / "no").exists()
