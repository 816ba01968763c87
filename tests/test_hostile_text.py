"""Hostile text end to end: LLM replies, class names and file names carrying HTML/JS, spreadsheet
formulas, terminal escapes, right-to-left marks and a 100 kB line go through parsing, the store,
`show`, `export` (CSV cells that would run as formulas are neutralised) and the HTML report,
which a real headless Chromium opens to check that no injected script ran."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from promptclimb.candidate import BIDI_CONTROLS
from promptclimb.cli import main
from promptclimb.export import FORMULA_STARTS
from promptclimb.report.html import CSP
from promptclimb.store import RunStore

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--virtual-time-budget=3000"]
# Every payload, if it ran, would write PWNED (built by concatenation, so the word itself never
# appears in the page unless a script ran).
JS = "document.body.append('PW'+'NED')"
CLASS_NAMES = [f"<img src=x onerror=\"{JS}\">", '=HYPERLINK("http://127.0.0.1/x")', "+cmd|' /C calc'!A0",
               "\u202egnp.exe", "[bold red]rich[/] \x1b[31mred"]
REPLIES = [f"<script>{JS}</script> a photo of a {{}}.", "-2+3 a {} pic", "@SUM(1) a {} in a photo",
           "=1+1 a photo of the {}.", "\x1b]0;pwned\x07 an image of a {} \x1b[2J", "\u202e{} fo otohp a",
           "a" * 100_000 + " {}", f"<svg onload=\"{JS}\"></svg> the {{}}, in a photo.",
           "[/] a {} [link=file:///etc/passwd]x[/link]", "a blurry photo of a {}."]
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    data = root / "data"
    data.mkdir()
    (data / "classnames.txt").write_text("\n".join(CLASS_NAMES) + "\n", encoding="utf-8")
    with (data / "images.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label"])
        for i, name in enumerate(CLASS_NAMES):
            for j in range(4):
                image = data / f"<svg onload=alert({i})>_{j}.png"
                image.write_bytes(b"\x89PNG\r\n")
                writer.writerow([image.name, name])
    replies = root / "replies.json"
    replies.write_text(json.dumps(REPLIES), encoding="utf-8")
    out = root / "run-<script>alert(1)</script>"
    assert main(["optimize", "--task", f"csv:{data / 'images.csv'}", "--scorer", "fake", "--llm",
                 f"scripted:{replies}", "--seed", "1", "--shots", "2", "--cache-dir", str(root / "cache"),
                 "--out", str(out), "--set", "method_options.restarts=1", "--set", "method_options.resets=1",
                 "--set", f"method_options.iterations={len(REPLIES)}"]) == 0
    return out


def test_replies_are_parsed_and_stored_without_control_characters(run: Path) -> None:
    store = RunStore.open(run)
    trials = store.trials()
    llm = [t for t in trials if t.proposer and t.restart == 0 and t.iteration is not None and t.number >= 20]
    templates = [t.template for t in trials if t.template]
    assert any("<script>" in t for t in templates) and "-2+3 a {} pic" in templates  # kept as plain text
    assert not any(CONTROL.search(t) or set(t) & BIDI_CONTROLS for t in templates)
    assert all(len(t.raw) <= 2000 for t in trials) and llm
    assert any(len(e.reply.text) > 100_000 for e in store.exchanges() if e.reply)  # the exchange keeps it all


def test_show_prints_no_terminal_escapes_and_valid_json(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["show", str(run)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "<script>" in out
    assert main(["show", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["finished"] is True


def test_export_neutralises_csv_formulas_and_keeps_exact_json(run: Path, tmp_path: Path) -> None:
    assert main(["export", str(run), "--to", str(tmp_path / "exp")]) == 0
    rows = list(csv.reader((tmp_path / "exp" / "trials.csv").open(encoding="utf-8", newline="")))
    cells = [c for row in rows for c in row]
    formulas = [c for c in cells if c.startswith(FORMULA_STARTS) and not re.fullmatch(r"-?\d+(\.\d+)?", c)]
    assert formulas == []
    assert "'-2+3 a {} pic" in cells and any(c.startswith("'@SUM(1)") or c.startswith("'=1+1") for c in cells)
    exact = json.loads((tmp_path / "exp" / "trials.json").read_text(encoding="utf-8"))
    assert "-2+3 a {} pic" in [t["template"] for t in exact]


def _dom(page: Path, profile: Path) -> str:
    assert CHROMIUM is not None
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                          check=True, capture_output=True, text=True, timeout=120)
    return done.stdout


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="chromium not installed")
def test_no_injected_script_runs_in_the_report(run: Path, tmp_path: Path) -> None:
    control = tmp_path / "control.html"  # the detector works: an unescaped payload does run
    control.write_text(f"<!doctype html><html><body><p>x</p><img src=x onerror=\"{JS}\"></body></html>")
    assert "PWNED" in _dom(control, tmp_path / "p0")

    assert main(["report", str(run), "--out", str(tmp_path / "report.html")]) == 0
    report = tmp_path / "report.html"
    html = report.read_text(encoding="utf-8")
    assert CSP in html
    dom = _dom(report, tmp_path / "p1")
    assert "promptclimb run report" in dom and "-2+3 a {} pic" in dom
    assert "PWNED" not in dom
    bare = tmp_path / "bare.html"  # escaping alone, without the Content-Security-Policy
    bare.write_text(html.replace(CSP, ""), encoding="utf-8")
    assert "PWNED" not in _dom(bare, tmp_path / "p2")
