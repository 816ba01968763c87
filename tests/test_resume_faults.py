"""Resume after a failed LLM call: a real run in a subprocess, against the fault-injecting chat
server on 127.0.0.1, with one call that fails after all its retries, is SIGKILLed and resumed.
The resumed store must hold one trial per position and equal an uninterrupted run's."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promptclimb.store import STORE_FILE
from promptclimb.testing.chaos import TEMPLATES, count_trials
from promptclimb.testing.chat_server import ChatServer, hashed_replies


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "promptclimb.cli", *args]


def run_args(server: ChatServer, cache: Path, *extra: str) -> list[str]:
    return ["--task", "demo", "--scorer", "fake", "--llm", "openai:test-model", "--method", "hill_climb",
            "--seed", "1", "--cache-dir", str(cache), "--set", f'llm_options.base_url="{server.url}"',
            "--set", 'llm_options.api_key_env=""', "--set", "llm_options.max_retries=2",
            "--set", "llm_options.timeout=2", "--set", "scorer_options.delay_s=0.05",
            "--set", "method_options.restarts=2", "--set", "method_options.resets=2",
            "--set", "method_options.iterations=3", *extra]


def trial_rows(run: Path) -> list[tuple]:
    with sqlite3.connect(run / STORE_FILE) as c:
        return c.execute("SELECT number, key, state, template, train_score, error FROM trials "
                         "ORDER BY number").fetchall()


def positions(rows: list[tuple]) -> list[str]:
    """Every trial's position: pool/i, or restart/reset/iteration (the key without /c0 or /failed)."""
    return [key if key.startswith("pool/") else key.rsplit("/", 1)[0] for _, key, *_ in rows]


@pytest.fixture
def server():  # type: ignore[no-untyped-def]
    with ChatServer(hashed_replies(TEMPLATES), latency_s=0.05) as srv:
        yield srv


def test_a_call_that_failed_before_a_kill_is_not_asked_again_on_resume(server: ChatServer, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    reference = tmp_path / "reference"
    server.faults.extend(["500", "500"])  # the first LLM call fails after both attempts
    subprocess.run(_cli("optimize", *run_args(server, tmp_path / "c1"), "--out", str(reference)), check=True,
                   env=env, capture_output=True, timeout=300)
    want = trial_rows(reference)
    assert sum(1 for r in want if r[2] == "failed" and "answered 500" in (r[5] or "")) == 1

    run = tmp_path / "run"
    server.faults.extend(["500", "500"])
    proc = subprocess.Popen(_cli("optimize", *run_args(server, tmp_path / "c2"), "--out", str(run)), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while count_trials(run) < 24 and time.time() < deadline:  # the failed call is recorded by now
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert 22 <= count_trials(run) < len(want)

    done = subprocess.run(_cli("resume", str(run)), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    got = trial_rows(run)
    assert len(set(positions(got))) == len(got), "a position holds two trials"
    assert got == want
