"""Runs of the `judge` method ask no LLM, so they start without one (issue 15's first bug); a
method that asks one still demands it, in one line, before any work."""

from __future__ import annotations

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
