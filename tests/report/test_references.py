"""After a run, "a photo of a {}." and the best of the starting pool are scored on test for the
report only: labelled so in the report, in `show` and in `show --json`, and never chosen by it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptclimb.cli import main
from promptclimb.references import PHOTO, reference_line
from promptclimb.store import RunStore
from promptclimb.testing import FakeScorer


@pytest.fixture
def run(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    assert main(["optimize", "--task", "demo", "--scorer", "fake", "--llm", "scripted", "--seed", "1",
                 "--out", str(out), "--set", "method_options.restarts=1", "--set", "method_options.iterations=3"]) == 0
    return out


def test_references_are_scored_on_test_and_kept_apart_from_the_choice(run: Path) -> None:
    store = RunStore.open(run)
    refs, final = store.result("references"), store.result("final")
    trials = store.trials()
    store.close()
    assert [r["label"] for r in refs] == [PHOTO, "best of the starting pool"]
    for r in refs:
        assert r["test"] == FakeScorer().score(r["template"], "test").value
    assert final["template"] not in {r["template"] for r in refs}  # this run chose an LLM template
    # the trial rows hold test scores only where the run itself scored them (the chosen one here)
    assert [t.number for t in trials if t.test_score is not None] == [final["trial"]]


def test_show_and_report_say_chosen_against_the_photo_template_on_test(
        run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(run), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["photo_test_score"] == summary["references"][0]["test"]
    assert summary["pool_best_test_score"] == summary["references"][1]["test"]
    line = reference_line(summary)
    assert line is not None and line.startswith("on test: chosen ")
    assert main(["show", str(run), "--no-history"]) == 0
    assert "on test: chosen" in capsys.readouterr().out.replace("\n", " ")
    assert main(["report", str(run)]) == 0
    html = (run / "report.html").read_text()
    assert "reference: a photo of a {}. (test scored after the run, report only)" in html
    assert "reference: best of the starting pool (test scored after the run, report only)" in html
    assert "<b>on test: chosen " in html and "no data for this panel" not in html
    assert "mean over seeds" not in html  # one run


def test_when_the_photo_template_is_chosen_the_line_says_so() -> None:
    summary = {"final_test_score": 0.5, "references": [{"template": PHOTO, "test": 0.5, "is_chosen": True}]}
    assert reference_line(summary) == f"on test: the chosen template is {PHOTO!r} itself, 50.0"
