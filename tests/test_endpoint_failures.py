"""Endpoint failures are told apart from weak models: an endpoint that always fails (an HTML
page, HTTP 500, a refused key) stops the run with one line and a non-zero exit, the run resumes
to the end once the endpoint answers; a model that answers uselessly only earns a warning; a
bench cell whose endpoint is down is recorded as failed and rerun next time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptclimb.bench.grid import GridSpec
from promptclimb.cli import EXIT_ENDPOINT, main
from promptclimb.store import RunStore
from promptclimb.testing.chaos import positions
from promptclimb.testing.chat_server import ChatServer, hashed_replies

TEMPLATES = [f"a {w} photo of the {{}}." for w in ("bright", "dark", "small", "large", "blurry", "sharp",
                                                    "vintage", "modern", "clean", "dirty", "quiet", "noisy")]


@pytest.fixture
def server():  # type: ignore[no-untyped-def]
    with ChatServer(hashed_replies(TEMPLATES)) as srv:
        yield srv


def _args(server: ChatServer, tmp_path: Path, out: Path, iterations: int = 3) -> list[str]:
    return ["optimize", "--task", "demo", "--scorer", "fake", "--llm", "openai:test-model", "--seed", "1",
            "--cache-dir", str(tmp_path / "cache"), "--set", f'llm_options.base_url="{server.url}"',
            "--set", 'llm_options.api_key_env=""', "--set", "llm_options.max_retries=2",
            "--set", "method_options.restarts=2", "--set", "method_options.resets=1",
            "--set", f"method_options.iterations={iterations}", "--out", str(out)]


@pytest.mark.parametrize(("fault", "named"), [("html", "an HTML body, not the API's JSON"),
                                              ("500", "answered 500"),
                                              ("401", "refused the key")])
def test_a_down_endpoint_stops_the_run_in_one_line_and_resume_finishes_it(
        server: ChatServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], fault: str, named: str) -> None:
    run = tmp_path / "run"
    server.always = fault
    assert main(_args(server, tmp_path, run)) == EXIT_ENDPOINT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert named in err[0] and server.url in err[0] and f"promptclimb resume {run}" in err[0]
    assert "stronger model" not in err[0]
    store = RunStore.open(run)
    assert not store.finished and len(store.trials()) >= 20
    store.close()

    server.always = None
    assert main(["resume", str(run)]) == 0
    capsys.readouterr()
    store = RunStore.open(run)
    where = positions(store)
    assert store.finished and len(where) == len(set(where)) == 20 + 2 * 3
    assert sum(t.state.value == "complete" for t in store.trials()) > 20  # the LLM's templates were scored


def test_an_endpoint_that_fails_now_and_then_costs_trials_but_not_the_run(
        server: ChatServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server.faults.extend(["500", "500"])  # one call fails after both attempts, then all is well
    assert main(_args(server, tmp_path, tmp_path / "run")) == 0
    store = RunStore.open(tmp_path / "run")
    failed = [t for t in store.trials() if t.state.value == "failed"]
    assert len(failed) == 1 and (failed[0].error or "").startswith("endpoint error:")
    assert store.finished and "stronger model" not in capsys.readouterr().err


def test_a_weak_model_is_warned_about_not_stopped(server: ChatServer, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    server.replies = ["I would be happy to help you with prompts!"]
    assert main(_args(server, tmp_path, tmp_path / "run", iterations=6)) == 0
    err = capsys.readouterr().err
    assert "stronger model" in err and "endpoint" not in err
    assert RunStore.open(tmp_path / "run").finished


def test_a_bench_cell_whose_endpoint_is_down_is_failed_then_rerun(
        server: ChatServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = GridSpec.model_validate({
        "tasks": ["demo"], "shots": [1], "seeds": [1], "methods": ["hill_climb", "best_of_pool"],
        "scorers": ["fake"], "llm": "openai:test-model", "budget": 26, "cache_dir": str(tmp_path / "cache"),
        "llm_options": {"base_url": server.url, "api_key_env": "", "max_retries": 2}})
    config = tmp_path / "grid.json"
    config.write_text(spec.model_dump_json())
    out = tmp_path / "grid"
    server.always = "503"
    assert main(["bench", "--config", str(config), "--out", str(out)]) == EXIT_ENDPOINT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "1 of 2 cells failed" in err[0] and "answered 503" in err[0]
    log = [json.loads(line) for line in (out / "cells.log").read_text().splitlines()]
    assert sorted(r["status"] for r in log) == ["failed", "ran"]

    server.always = None
    assert main(["bench", "--config", str(config), "--out", str(out)]) == 0
    log = [json.loads(line) for line in (out / "cells.log").read_text().splitlines()][2:]
    assert sorted(r["status"] for r in log) == ["resumed", "skipped"]
    assert "hill_climb" in (out / "tables.md").read_text()
