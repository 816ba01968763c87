"""A planted API key never leaves the process: a real run against the chat server on 127.0.0.1,
with the key in the environment, through faults, a kill-free endpoint failure and resume, show,
export and report; then every file the run wrote (run directory, caches, exports, report) and
every line it printed is searched for the key."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from promptclimb.testing.chat_server import ChatServer, hashed_replies

TEMPLATES = [f"a {w} photo of the {{}}." for w in ("bright", "dark", "small", "large", "sharp", "vintage")]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "promptclimb.cli", *args]


def test_a_planted_key_appears_in_no_file_and_no_output(tmp_path: Path) -> None:
    key = f"sk-test-{secrets.token_hex(16)}"
    env = {**os.environ, "PC_PLANTED_KEY": key, "PYTHONUNBUFFERED": "1"}
    run, cache, exports = tmp_path / "run", tmp_path / "cache", tmp_path / "exports"
    printed: list[str] = []

    def cli(*args: str) -> int:
        done = subprocess.run(_cli(*args), env=env, capture_output=True, text=True, timeout=300)
        printed.extend([done.stdout, done.stderr])
        return done.returncode

    with ChatServer(hashed_replies(TEMPLATES)) as server:
        base = ["--task", "demo", "--scorer", "fake", "--llm", "openai:test-model", "--seed", "1",
                "--cache-dir", str(cache), "--set", f'llm_options.base_url="{server.url}"',
                "--set", 'llm_options.api_key_env="PC_PLANTED_KEY"', "--set", "llm_options.max_retries=2",
                "--set", "method_options.restarts=2", "--set", "method_options.resets=1",
                "--set", "method_options.iterations=3"]
        server.faults.extend(["429", "html", "500", "500", "401"])  # retries, a failed call, a refused key
        assert cli("optimize", *base, "--out", str(run)) == 3
        assert "refused the key in PC_PLANTED_KEY" in printed[-1]
        assert cli("resume", str(run)) == 0
        assert cli("show", str(run)) == 0 and cli("show", str(run), "--json") == 0
        assert cli("export", str(run), "--to", str(exports)) == 0
        assert cli("report", str(run), "--out", str(tmp_path / "report.html")) == 0
        server.always = "503"
        assert cli("optimize", *base, "--seed", "2", "--out", str(tmp_path / "down")) == 3  # no cached replies
        sent = {h.get("Authorization") or h.get("authorization") for h in server.headers}
    assert sent == {f"Bearer {key}"}  # the key was really used

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) >= 9 and any(p.name == "llm_cache.sqlite" for p in written)
    leaks = [str(p) for p in written if key.encode() in p.read_bytes() or key[8:].encode() in p.read_bytes()]
    assert leaks == []
    assert not any(key in text or key[8:] in text for text in printed)
