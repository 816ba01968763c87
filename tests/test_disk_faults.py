"""Disk and file faults: a full disk (a file-size limit on the process) and a run directory made
read-only (immutable) mid-run stop the run with one line, leave a consistent store and resume to
the same end as an uninterrupted run; stores of a newer or older schema are refused in one line
and left byte for byte untouched."""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promptclimb.cli import main
from promptclimb.store import STORE_FILE, VERSION, RunStore

ARGS = ["--task", "demo", "--scorer", "fake", "--llm", "scripted", "--method", "hill_climb", "--seed", "1",
        "--set", "llm_cache=false", "--set", "scorer_options.delay_s=0.05", "--set", "method_options.restarts=2",
        "--set", "method_options.resets=2", "--set", "method_options.iterations=3"]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "promptclimb.cli", *args]


def _rows(run: Path) -> list[tuple]:
    with sqlite3.connect(run / STORE_FILE) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return c.execute("SELECT number, key, state, template, train_score FROM trials ORDER BY number").fetchall()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[tuple]:
    out = tmp_path_factory.mktemp("reference") / "run"
    subprocess.run(_cli("optimize", *ARGS, "--cache-dir", str(out.parent / "cache"), "--out", str(out)),
                   check=True, capture_output=True, timeout=300)
    return _rows(out)


def _resume_matches(run: Path, reference: list[tuple]) -> None:
    rows = _rows(run)
    assert [r[0] for r in rows] == list(range(len(rows)))  # no gap, nothing half-written
    done = subprocess.run(_cli("resume", str(run)), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _rows(run) == reference


def test_a_full_disk_mid_run_is_one_line_and_resumable(tmp_path: Path, reference: list[tuple]) -> None:
    run = tmp_path / "run"
    limit = 96 * 1024  # bytes a file may reach: the store's write-ahead log passes it mid-run

    def full_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run(_cli("optimize", *ARGS, "--cache-dir", str(tmp_path / "cache"), "--out", str(run)),
                          capture_output=True, text=True, timeout=300, preexec_fn=full_disk)
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(err) == 1, done.stderr
    assert "cannot write the run store" in err[0] and f"promptclimb resume {run}" in err[0]
    assert 0 < len(_rows(run)) < len(reference)
    _resume_matches(run, reference)


def _immutable(paths: list[Path], on: bool) -> bool:
    flag = "+i" if on else "-i"
    return all(subprocess.run(["chattr", flag, str(p)], capture_output=True).returncode == 0 for p in paths)


@pytest.mark.skipif(shutil.which("chattr") is None, reason="needs chattr")
def test_a_run_directory_made_read_only_mid_run_is_one_line_and_resumable(tmp_path: Path,
                                                                          reference: list[tuple]) -> None:
    run = tmp_path / "run"
    proc = subprocess.Popen(_cli("optimize", *ARGS, "--cache-dir", str(tmp_path / "cache"), "--out", str(run)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while (not (run / STORE_FILE).exists() or len(_rows(run)) < 22) and time.time() < deadline:
        time.sleep(0.02)
    # The -shm index is shared memory mapped into the process: on a real read-only directory its
    # pages stay writable, and an immutable one would fault (SIGBUS) instead of failing a write.
    files = [run, *(p for p in run.iterdir() if not p.name.endswith("-shm"))]
    try:
        if not _immutable(files, True):  # not root, or a filesystem without the flag
            proc.kill()
            pytest.skip("cannot make files immutable here")
        _, stderr = proc.communicate(timeout=120)
    finally:
        _immutable(files, False)
    err = stderr.strip().splitlines()
    assert proc.returncode == 2 and len(err) == 1, stderr
    assert "cannot write the run store" in err[0] and f"promptclimb resume {run}" in err[0]
    _resume_matches(run, reference)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(("change", "message"), [
    (f"UPDATE meta SET value='{VERSION + 1}' WHERE key='version'",
     f"written by a newer promptclimb (store version {VERSION + 1}"),
    ("UPDATE meta SET value='0' WHERE key='version'", "older or unknown schema (version 0"),
    ("ALTER TABLE exchanges DROP COLUMN cost_usd", f"older or unknown schema (version {VERSION}, missing cost_usd"),
])
def test_a_store_of_another_schema_is_refused_in_one_line_and_left_untouched(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], change: str, message: str) -> None:
    run = tmp_path / "run"
    RunStore.create(run, {"task": "demo"}).close()
    with sqlite3.connect(run / STORE_FILE) as c:
        c.execute("PRAGMA journal_mode=DELETE")  # as an older writer might have left it
        c.execute(change)
    before = (_digest(run / STORE_FILE), sorted(p.name for p in run.iterdir()), os.stat(run / STORE_FILE).st_mtime_ns)
    for command in (["show", str(run)], ["resume", str(run)], ["export", str(run)], ["report", str(run)]):
        capsys.readouterr()
        assert main(command) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    after = (_digest(run / STORE_FILE), sorted(p.name for p in run.iterdir()), os.stat(run / STORE_FILE).st_mtime_ns)
    assert after == before
