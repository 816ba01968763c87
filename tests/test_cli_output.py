"""What a real small run prints (ConSE scorer, scripted LLM, Tux Paint): promptclimb's own lines and
progress bars only; other libraries' output only with --verbose; --quiet prints just the result."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from promptclimb.cli import main

TUXPAINT = Path("/usr/share/tuxpaint/stamps").is_dir()
needs_tuxpaint = pytest.mark.skipif(not TUXPAINT, reason="needs Debian's tuxpaint-stamps-default (scripts/install.sh)")

OURS = [  # every line promptclimb itself prints during `optimize`
    r"promptclimb hill_climb on tuxpaint · .*",
    r"✓ loading .* ━+ +\d+:\d\d:\d\d",
    r"✓ image features · conse ━+ \d+/\d+ images( · [\d.]+ images/s)? \d+:\d\d:\d\d",
    r"#\d+ +pool +complete .*",
    r"best '.*': train .*",
    r"details: promptclimb show .*",
]


def optimize(tmp_path: Path, cache: str, *flags: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "promptclimb.cli", "optimize", "--task", "tuxpaint", "--scorer", "conse",
           "--llm", "scripted", "--method", "hill_climb", "--seed", "1", "--shots", "1", "--max-queries", "2",
           "--set", "evaluate_test=false", "--cache-dir", str(tmp_path / cache),
           "--out", str(tmp_path / f"run{len(list(tmp_path.glob('run*')))}"), *flags]
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=True)


def foreign(lines: list[str]) -> list[str]:
    return [line for line in lines if line.strip() and not any(re.fullmatch(p, line.rstrip()) for p in OURS)]


@needs_tuxpaint
def test_run_shows_only_its_own_lines_and_a_progress_bar(tmp_path: Path) -> None:
    run = optimize(tmp_path, "cache")
    lines = run.stdout.splitlines()
    assert run.stderr == ""
    assert foreign(lines) == []
    assert any(re.fullmatch(OURS[2], line.rstrip()) for line in lines)  # the feature extraction bar
    assert sum(line.startswith("✓ loading") for line in lines) == 2  # the two ConSE models

    quiet = optimize(tmp_path, "cache", "--quiet")  # same caches: no model loads, no extraction
    assert [line.split(":")[0] for line in quiet.stdout.splitlines()] == ["best 'a photo of a {}.'", "details"]


@needs_tuxpaint
def test_verbose_lets_other_libraries_through(tmp_path: Path) -> None:
    run = optimize(tmp_path, "fresh", "--verbose")
    assert "Loaded pretrained weights for efficientnet-lite0" in run.stdout + run.stderr
    assert foreign((run.stdout + run.stderr).splitlines())


@pytest.mark.parametrize("quiet", [False, True])
def test_bench_quiet_prints_only_where_the_tables_are(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      quiet: bool) -> None:
    args = ["bench", "--tasks", "demo", "--shots", "1", "--seeds", "1,2", "--methods", "best_of_pool",
            "--scorers", "fake", "--llm", "scripted", "--budget", "5", "--cache-dir", str(tmp_path / "c"),
            "--out", str(tmp_path / "g"), *(["--quiet"] if quiet else [])]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("tables: ")
    assert (len(lines) == 1) is quiet  # otherwise: the header, one line per cell and the tables
