"""The command line, run for real: in-process for the quick checks, as a subprocess killed
with SIGKILL for the resume guarantee."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promptclimb.cli import main
from promptclimb.store import STORE_FILE, RunStore

CORE = ["--task", "demo", "--scorer", "fake", "--llm", "scripted", "--method", "hill_climb", "--seed", "1"]
MNK = ["--set", "method_options.restarts=2", "--set", "method_options.resets=2",
       "--set", "method_options.iterations=3"]


def _show(run: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert main(["show", str(run), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_optimize_show_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["optimize", *CORE, *MNK, "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "best" in out and "queries" in out
    summary = _show(run, capsys)
    required = {"best_template", "best_train_score", "final_test_score", "n_trials", "n_failed",
                "n_duplicates", "scorer_queries", "llm_calls", "llm_tokens", "method", "seed", "finished"}
    assert required <= summary.keys()
    assert summary["finished"] is True and summary["method"] == "hill_climb" and summary["seed"] == 1
    assert summary["n_trials"] == 20 + 2 * 2 * 3
    assert summary["llm_calls"] >= 12 and summary["llm_tokens"] > 0
    assert summary["scorer_queries"] == summary["n_trials"] - summary["n_duplicates"] - summary["n_failed"]
    assert summary["final_test_score"] is not None

    assert main(["show", str(run)]) == 0
    assert summary["best_template"] in capsys.readouterr().out

    assert main(["export", str(run), "--to", str(tmp_path / "exp")]) == 0
    rows = list(csv.DictReader((tmp_path / "exp" / "trials.csv").open()))
    assert len(rows) == summary["n_trials"]
    assert json.loads((tmp_path / "exp" / "trials.json").read_text())[0]["template"] == rows[0]["template"]
    best = (tmp_path / "exp" / "best_templates.txt").read_text().splitlines()
    assert best[0] == summary["best_template"]

    # the exported best templates are a pool file another run reads
    run2 = tmp_path / "run2"
    assert main(["optimize", *CORE, "--method", "best_of_pool", "--out", str(run2),
                 "--set", "method_options.pool.source=file",
                 "--set", f"method_options.pool.path={tmp_path / 'exp' / 'best_templates.txt'}"]) in (0, 2)


def test_scripted_transcript_replays_a_recorded_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["optimize", *CORE, *MNK, "--out", str(run)]) == 0
    assert main(["export", str(run), "--to", str(tmp_path / "exp")]) == 0
    replay = tmp_path / "replay"
    transcript = tmp_path / "exp" / "exchanges.jsonl"
    assert main(["optimize", *CORE, *MNK, "--llm", f"scripted:{transcript}", "--out", str(replay)]) == 0
    a, b = _show(run, capsys), _show(replay, capsys)
    assert a["best_template"] == b["best_template"] and a["n_trials"] == b["n_trials"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--set", "bogus=1"], "bogus: unknown key"),
    (["--set", "budget.scorer_querys=3"], "budget.scorer_querys: unknown key"),
    (["--set", "seed=\"x\""], "seed:"),
    (["--set", "method_options.restarts=0"], "method_options.restarts"),
    (["--method", "nope"], "unknown method 'nope'; known:"),
    (["--scorer", "nope"], "unknown scorer 'nope'; known:"),
    (["--llm", "nope:x"], "unknown llm 'nope'; known:"),
    (["--llm", "scripted:/no/such/file.txt"], "does not exist"),
    (["--set", "racing.minibatch=500"], "racing.minibatch=500 but the train split has 40 images"),
    (["--set", "method_options.racing={\"minibatch\": 0}"], "racing.minibatch=0 must be at least 1 image"),
    (["--set", "racing=3"], "racing: expected true, false or a table of settings"),
])
def test_bad_input_gets_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       argv: list[str], message: str) -> None:
    code = main(["optimize", *CORE, *argv, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("promptclimb: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_racing_from_the_command_line_and_an_image_budget(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "racing"
    assert main(["optimize", *CORE, *MNK, "--set", "method_options.racing=true", "--set",
                 "scorer_options.n_items=160", "--set", "racing.top_k=2", "--out", str(run)]) == 0
    progress = capsys.readouterr().out
    assert "images " in progress and " pruned " in progress  # the progress line
    s = _show(run, capsys)
    assert s["n_pruned"] > 0 and 0 < s["scorer_images"] < 160 * s["scorer_queries"]
    config = RunStore.open(run).config
    assert config["racing"]["enabled"] and config["racing"]["top_k"] == 2 and "racing" not in config["method_options"]

    capped = tmp_path / "capped"
    assert main(["optimize", *CORE, "--max-images", "100", "--out", str(capped)]) == 0
    assert "scorer_images=100" in capsys.readouterr().out
    s = _show(capped, capsys)
    assert s["scorer_images"] == 80 and s["n_trials"] == 2 and s["stopped_by"] == "scorer_images=100"
    assert s["finished"] is True


def test_bad_config_file_and_missing_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('task = "demo"\nscorer = "fake"\n[budget]\nqueries = 3\n')
    assert main(["optimize", "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    assert "budget.queries: unknown key" in capsys.readouterr().err
    cfg.write_text("task = \n")
    assert main(["optimize", "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    assert "not valid toml" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing created for a run that never started
    for cmd in ("show", "resume", "export"):
        assert main([cmd, str(tmp_path / "missing")]) == 2
        assert "does not exist" in capsys.readouterr().err


def test_a_config_file_drives_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('task = "demo"\nscorer = "fake"\nllm = "scripted"\nseed = 4\n'
                   "[method_options]\nrestarts = 1\nresets = 1\niterations = 2\n"
                   "[budget]\nscorer_queries = 20\n")
    assert main(["optimize", "--config", str(cfg), "--out", str(tmp_path / "r")]) == 0
    s = _show(tmp_path / "r", capsys)
    assert s["seed"] == 4 and s["scorer_queries"] == 20 and s["stopped_by"] == "scorer_queries=20"


def _count_trials(run: Path) -> int:
    try:
        with sqlite3.connect(run / STORE_FILE, timeout=5) as c:
            return int(c.execute("SELECT COUNT(*) FROM trials").fetchone()[0])
    except sqlite3.Error:
        return 0


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "promptclimb.cli", *args]


def test_sigkill_mid_run_then_resume_loses_nothing_and_scores_nothing_twice(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "scored.log"
    args = [*CORE, *MNK, "--set", "scorer_options.delay_s=0.05", "--cache-dir", str(tmp_path / "cache")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    reference = tmp_path / "reference"
    subprocess.run(_cli("optimize", *args, "--out", str(reference)), check=True, env=env,
                   capture_output=True, timeout=300)

    run = tmp_path / "run"
    proc = subprocess.Popen(_cli("optimize", *args, "--set", f"scorer_options.log_path=\"{log}\"",
                                 "--out", str(run)), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while _count_trials(run) < 24 and time.time() < deadline:  # past the pool, mid-conversation
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    before = _count_trials(run)
    assert 20 <= before < 32, before
    with sqlite3.connect(run / STORE_FILE) as c:
        recorded = {r[0] for r in c.execute("SELECT template FROM trials WHERE state='complete'")}
    scored_before = log.read_text().splitlines()

    done = subprocess.run(_cli("resume", str(run)), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    scored_after = log.read_text().splitlines()[len(scored_before):]
    assert not {line.split("\t", 1)[1] for line in scored_after if line.startswith("train")} & recorded

    with sqlite3.connect(run / STORE_FILE) as a, sqlite3.connect(reference / STORE_FILE) as b:
        q = "SELECT number, key, state, template, train_score FROM trials ORDER BY number"
        got, want = a.execute(q).fetchall(), b.execute(q).fetchall()
        assert len({row[1] for row in got}) == len(got)  # every trial exactly once
        assert got == want
        final = "SELECT value FROM results WHERE name='final'"
        assert a.execute(final).fetchone() == b.execute(final).fetchone()
    assert _show(run, capsys)["finished"] is True


def test_ctrl_c_says_how_to_resume_and_keeps_the_store(tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = [*CORE, *MNK, "--set", "scorer_options.delay_s=0.05", "--cache-dir", str(tmp_path / "cache")]
    # A test runner started as a background job ignores SIGINT, and so would the child (Python
    # installs its Ctrl-C handler only where SIGINT is not ignored): give the child the default.
    proc = subprocess.Popen(_cli("optimize", *args, "--out", str(run)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while _count_trials(run) < 22 and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert f"promptclimb resume {run}" in err and "Traceback" not in err
    n = _count_trials(run)
    assert n >= 22
    done = subprocess.run(_cli("resume", str(run)), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _count_trials(run) == 32


@pytest.mark.parametrize("method, extra", [
    ("describe", []), ("describe_select", []), ("ensemble", []), ("hill_climb_classes", MNK),
    ("hill_climb", [*MNK, "--set", "method_options.racing=true"]),
    ("hill_climb+describe", ["--set", "method_options.restarts=1", "--set", "method_options.resets=2",
                             "--set", "method_options.iterations=3"]),
])
def test_beyond_the_paper_methods_resume_after_sigkill_as_a_run_straight_through(
        method: str, extra: list[str], tmp_path: Path) -> None:
    args = [*CORE, "--method", method, *extra, "--set", "scorer_options.delay_s=0.05",
            "--cache-dir", str(tmp_path / "cache")]
    if "describe" in method:  # replies that describe the demo classes, so its sets are scored
        from promptclimb.tasks import build_task

        names = build_task("demo", shots=1, seed=1).info.class_names
        # hill climbing reads the template line, the description stage the class lines
        first = ["a photo of a {} seen %s."] if method.startswith("hill_climb") else []
        replies = ["\n".join([*(t % w for t in first), *(f"{n}: a {n} seen {w}, {k}" for n in names
                                                       for k in ("up close", "far away"))])
                   for w in ("clearly", "in the wild", "at night", "in a drawing", "from above", "in colour")]
        (tmp_path / "describe.json").write_text(json.dumps(replies), encoding="utf-8")
        args += ["--llm", f"scripted:{tmp_path / 'describe.json'}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    reference = tmp_path / "reference"
    subprocess.run(_cli("optimize", *args, "--out", str(reference)), check=True, env=env,
                   capture_output=True, timeout=300)
    total = _count_trials(reference)
    with sqlite3.connect(reference / STORE_FILE) as c:  # the method's own trials were scored
        assert c.execute("SELECT COUNT(*) FROM trials WHERE key NOT LIKE 'pool/%' AND state='complete'"
                         ).fetchone()[0] >= 2
    run = tmp_path / "run"
    proc = subprocess.Popen(_cli("optimize", *args, "--out", str(run)), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while _count_trials(run) < 21 and time.time() < deadline and proc.poll() is None:  # past the pool
        time.sleep(0.01)
    assert proc.poll() is None, f"the run ended before it was killed (exit {proc.returncode})"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert 21 <= _count_trials(run) < total
    done = subprocess.run(_cli("resume", str(run)), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(run / STORE_FILE) as a, sqlite3.connect(reference / STORE_FILE) as b:
        q = "SELECT number, key, state, template, train_score, error FROM trials ORDER BY number"
        assert a.execute(q).fetchall() == b.execute(q).fetchall()
        final = "SELECT value FROM results WHERE name='final'"
        assert a.execute(final).fetchone() == b.execute(final).fetchone()
