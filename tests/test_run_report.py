"""The run report opened in a real headless Chromium: it renders offline, with the text that
matters, and LLM text cannot inject markup."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from promptclimb.cli import main
from promptclimb.run_report import write_run_report
from promptclimb.store import StoreError

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def run(tmp_path: Path) -> Path:
    replies = tmp_path / "replies.txt"
    replies.write_text("a photo of a {}, a type of object.\n<script>alert(1)</script> {} <b>bold</b>\n"
                       "nothing usable here\na bright photo of the {}.\n")
    out = tmp_path / "run"
    assert main(["optimize", "--task", "demo", "--scorer", "fake", "--llm", f"scripted:{replies}",
                 "--seed", "1", "--out", str(out), "--set", "method_options.restarts=1",
                 "--set", "method_options.resets=2", "--set", "method_options.iterations=2",
                 "--set", "oracle_top_n=5"]) == 0
    return out


def test_report_holds_config_result_conversation_and_escapes(run: Path) -> None:
    html = write_run_report(run).read_text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    for needle in ("Resolved config", "best of the starting pool", "oracle", "Conversations",
                   "restart 0 · reset 1", "up from", "data:image/png;base64,", "prompt tokens"):
        assert needle in html, needle


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="chromium not installed")
def test_report_renders_in_headless_chromium(run: Path, tmp_path: Path) -> None:
    assert CHROMIUM is not None, "CI must have chromium (scripts/install.sh --dev installs it)"
    report = write_run_report(run)
    profile = tmp_path / "profile"
    shot = tmp_path / "shot.png"
    base = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}"]
    subprocess.run([*base, f"--screenshot={shot}", "--window-size=1280,2200", report.as_uri()],
                   check=True, capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000  # a real page, not a blank one
    dom = subprocess.run([*base, "--dump-dom", report.as_uri()], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    assert "promptclimb run report" in dom and "a photo of a {}, a type of object." in dom
    assert "<script>alert(1)</script>" not in dom


def test_report_for_a_missing_run_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        write_run_report(tmp_path / "nope")
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
