"""The chaos suite (promptclimb.testing.chaos) run as a test: a random fault mix at a fixed seed
on 127.0.0.1, runs SIGKILLed three times each and resumed; every store invariant must hold and
the figures are printed (pytest -s shows them). Plus: the invariant checks can fail."""

from __future__ import annotations

import contextlib
import io
import shutil
import sqlite3
from pathlib import Path

import pytest

from promptclimb.cli import main
from promptclimb.store import STORE_FILE
from promptclimb.testing.chaos import HOSTILE, TEMPLATES, ChaosReport, check_store, print_figures, run_args, run_chaos
from promptclimb.testing.chat_server import ChatServer, hashed_replies


def test_the_chaos_suite_loses_nothing_and_duplicates_nothing(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    report = run_chaos(workdir=tmp_path)
    with capsys.disabled():
        print()
        print_figures(report)
    assert report.problems == []
    assert report.runs == 5 and report.kills == 15 and report.resumes >= 15
    assert report.lost == 0 and report.duplicated == 0 and report.trials == 5 * (20 + 8 * 3)
    assert report.compared >= 1 and report.equal == report.compared
    assert len(report.faults) >= 10 and set(report.faults) <= set(HOSTILE)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("chaos-check")
    with ChatServer(hashed_replies(TEMPLATES)) as server, contextlib.redirect_stdout(io.StringIO()):
        assert main(["optimize", *run_args(server.url, 1, 1, work / "cache", work / "log"),
                     "--out", str(work / "run")]) == 0
    return work / "run"


def _tampered(finished: Path, tmp_path: Path, sql: str) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(finished, copy)
    with sqlite3.connect(copy / STORE_FILE) as c:
        c.execute(sql)
    return copy


@pytest.mark.parametrize(("sql", "figure", "problem"), [
    ("INSERT INTO trials SELECT number + 1000, replace(key, '/c0', '/failed'), state, template, raw, proposer, "
     "restart, reset, iteration, train_score, val_score, test_score, metrics, error, duplicate_of, exchange_id, "
     "started_at, finished_at FROM trials WHERE key = 'r1/n0/k1/c0'", "duplicated", "scorer_queries"),
    ("DELETE FROM trials WHERE key = 'r2/n0/k2/c0'", "lost", "scorer_queries"),
    ("DELETE FROM exchanges WHERE id = (SELECT MAX(id) FROM exchanges)", None, "usage"),
    ("UPDATE trials SET train_score = 0.01 WHERE key = 'r0/n0/k0/c0'", None, "differs"),
])
def test_the_invariant_checks_catch_a_broken_store(finished: Path, tmp_path: Path, sql: str, figure: str | None,
                                                   problem: str) -> None:
    clean = ChaosReport()
    check_store(finished, finished, clean, comparable=True)
    assert clean.problems == [] and clean.equal == 1

    report = ChaosReport()
    check_store(_tampered(finished, tmp_path, sql), finished, report, comparable=True)
    if figure:
        assert getattr(report, figure) == 1
    assert any(problem in p for p in report.problems), report.problems
