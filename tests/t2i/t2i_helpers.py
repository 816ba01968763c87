"""Helpers for the text-to-image tests: the command-line flags that point a run at the test server."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from promptclimb.store import STORE_FILE
from promptclimb.testing.image_server import ImageServer

SECRET = "sk-test-T2I-SECRET-7731"
REFERENCE = "a blue circle on a yellow background"


def flags(server: ImageServer, *extra: str) -> list[str]:
    """A run against the test server: generator, judge and LLM on it, key in $PC_KEY."""
    return ["--endpoint", server.url, "--api-key-env", "PC_KEY", "--generator", "openai:test-image",
            "--judge", "openai:test-vision", "--llm", "openai:test-model", "--scorer", "histogram",
            "--size", "64x64", "--iterations", "3", "--set", "generator.timeout=5", "--set", "judge.timeout=5",
            "--set", "llm_options.timeout=5", *extra]


def count_trials(run: Path) -> int:
    try:
        with sqlite3.connect(run / STORE_FILE, timeout=5) as c:
            return int(c.execute("SELECT COUNT(*) FROM trials").fetchone()[0])
    except sqlite3.Error:
        return 0
