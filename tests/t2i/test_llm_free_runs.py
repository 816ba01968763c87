"""Runs of the `judge` method ask no LLM: they start without one, and `show --json` counts their
image and judge calls as what they are, never as LLM calls (issue 15's two bugs). A method that
asks an LLM still demands one, in one line, before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptclimb.cli import main

INTENT = "a picture of a red circle, blue all around"
FAKES = ["--generator", "fake", "--judge", "scripted", "--scorer", "histogram", "--size", "32x32"]


def test_the_judge_method_runs_without_an_llm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", INTENT, *FAKES, "--method", "judge", "--iterations", "3", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 0, err


def test_a_method_that_asks_an_llm_still_demands_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", INTENT, *FAKES, "--method", "hill_climb", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "no prompt-writing LLM" in err and not (tmp_path / "r").exists()
def test_show_json_counts_image_and_judge_calls_apart_from_llm_calls(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "r"
    assert main(["generate", INTENT, *FAKES, "--llm", "scripted", "--method", "judge", "--iterations", "3",
                 "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["show", "--json", str(run)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["llm_calls"], summary["llm_tokens"]) == (0, 0)
    assert summary["image_calls"] == summary["n_trials"] == 2
    assert summary["judge_calls"] == 2
    assert set(summary["cost_usd"]) == {"llm", "image", "judge"}
