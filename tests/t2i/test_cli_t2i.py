"""The three text-to-image tasks end to end through `promptclimb` (in-process main(argv)) against
the real image + vision-chat server on 127.0.0.1, driven through the official openai SDK: runs
improve, refusals fail one trial, budgets stop cleanly, the key and the user's image go nowhere
they should not, and the HTML report shows every iteration beside the reference."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from t2i_helpers import REFERENCE, SECRET, flags

from promptclimb.cli import main
from promptclimb.store import RunStore
from promptclimb.t2i.config import NO_GENERATOR
from promptclimb.testing.image_server import ImageServer


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, " ".join(out.split()), err  # rich wraps long lines


def _trials(run: Path) -> list:
    store = RunStore.open(run)
    try:
        return store.trials()
    finally:
        store.close()


def test_invert_finds_the_prompt_and_the_reference_goes_only_to_the_judge(
        server: ImageServer, reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "inv"
    code, out, err = _run(["invert", str(reference), *flags(server), "--out", str(run)], capsys)
    assert code == 0, err
    trials = _trials(run)
    assert trials[0].template == "a circle"  # the judge's first look at the reference
    assert trials[0].train_score == pytest.approx(0.0, abs=0.01)
    best = max(trials, key=lambda t: t.train_score or 0)
    assert best.template == REFERENCE and best.train_score == pytest.approx(1.0, abs=0.05)
    assert f"best prompt {REFERENCE!r}" in out
    # every image on disk with its prompt and seed beside it
    for t in (t for t in trials if t.state.value == "complete"):
        for rel in t.metrics["images"]:
            meta = json.loads((run / rel).with_suffix(".json").read_text())
            assert meta["prompt"] == t.template and meta["seed"] == t.metrics["seed"]
    # the reference reached the judge (every judge request) and nothing else
    ref_b64 = base64.b64encode((run / "reference.png").read_bytes()).decode()
    assert all(ref_b64 in json.dumps(b) for b in server.judge_requests)
    text_only = [b for b in server.requests if b not in server.judge_requests]
    assert text_only and not any("image_url" in json.dumps(b) or ref_b64 in json.dumps(b) for b in text_only)
    assert not any(ref_b64 in json.dumps(b) for b in server.image_requests)
    assert set(json.dumps(server.image_requests)) and all(set(b) <= {"model", "prompt", "n", "size",
                                                                     "response_format"} for b in server.image_requests)


def test_generate_then_personalize_then_report(server: ImageServer, reference: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    gen = tmp_path / "gen"
    code, _, err = _run(["generate", "a red square on a blue background", *flags(server), "--out", str(gen)], capsys)
    assert code == 0, err
    assert _trials(gen)[0].template == "a red square on a blue background"
    inv, llm_calls = tmp_path / "inv", len(server.requests) - len(server.judge_requests)
    assert main(["invert", str(reference), *flags(server), "--method", "judge", "--out", str(inv)]) == 0
    inv_trials = _trials(inv)
    assert [t.template for t in inv_trials] == ["a circle", REFERENCE]  # the judge's revision, then converged
    assert len(server.requests) - len(server.judge_requests) == llm_calls  # method judge: no LLM call
    pers = tmp_path / "pers"
    code, _, err = _run(["personalize", str(inv), "make the circle green", "--objective", "judge",
                           "--llm", "openai:test-model", "--out", str(pers)], capsys)  # rest inherited
    assert code == 0, err
    trials = _trials(pers)
    assert trials[0].template == f"{REFERENCE}, make the circle green"
    best = max(trials, key=lambda t: t.train_score or 0)
    assert best.template == "a green circle on a yellow background" and best.metrics["matches"] is True
    assert {"similarity_identity", "similarity_edit"} <= set(best.metrics)
    assert main(["report", str(pers)]) == 0
    html = (pers / "report.html").read_text()
    assert "Text-to-image: personalize" in html and "make the circle green" in html
    assert html.count('alt="reference image"') >= len(trials) + 1  # beside every iteration and the final
    for t in trials:
        assert t.template in html
        assert f'alt="image of trial {t.number}"' in html
        assert f"similarity {t.metrics.get('similarity', 0):.3f}" in html or t.state.value == "duplicate"
        assert str(t.metrics.get("feedback", "")).split(";")[0] in html
    assert "data:image/jpeg;base64," in html and "images generated" in html
    assert "<script" not in html


def test_a_refusal_is_a_failed_trial_and_the_run_goes_on(server: ImageServer, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    server.replies = ["a forbidden red square", "a red square on a blue background, flat"]
    server.image_faults.append("429")  # and a rate limit on the way, retried after Retry-After
    run = tmp_path / "run"
    code, _, err = _run(["generate", "a red square on a blue background", *flags(server, "--iterations", "2"),
                         "--out", str(run)], capsys)
    assert code == 0, err
    trials = _trials(run)
    assert [t.state.value for t in trials] == ["complete", "failed", "complete"]
    assert "content policy" in (trials[1].error or "") and "GenerationRefused" in (trials[1].error or "")
    last_llm = [b for b in server.requests if "image_url" not in json.dumps(b)][-1]
    assert "could not be used" in last_llm["messages"][-1]["content"]
    store = RunStore.open(run)
    assert store.finished and sum("content policy" in (c.error or "") for c in store.calls("image")) == 1
    store.close()


def test_an_image_budget_stops_the_run_cleanly(server: ImageServer, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    code, out, err = _run(["generate", "a green triangle", *flags(server, "--iterations", "5"), "--max-images", "2",
                           "--out", str(run)], capsys)
    assert code == 0, err
    assert "stopped by budget images=2" in out, out
    assert len(server.image_requests) == 2 and len(_trials(run)) == 2
    store = RunStore.open(run)
    assert store.result("final")["stopped_by"] == "images=2" and store.result("usage")["images"] == 2
    store.close()
    code, out, _ = _run(["resume", str(run)], capsys)
    assert code == 0 and "already finished" in out and len(server.image_requests) == 2


def test_the_key_is_never_written_to_the_run(server: ImageServer, reference: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(["invert", str(reference), *flags(server, "--iterations", "1"), "--out", str(run)]) == 0
    assert main(["report", str(run)]) == 0
    files = [p for p in run.rglob("*") if p.is_file()]
    assert len(files) > 5
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    assert RunStore.open(run).config["generator"]["api_key_env"] == "PC_KEY"


@pytest.mark.parametrize("command", [["generate", "a fox"], ["invert", "IMAGE"], ["personalize", "RUN", "make it red"]])
def test_no_generator_configured_is_one_line(command: list[str], reference: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str], server: ImageServer) -> None:
    source = tmp_path / "source"
    if command[0] == "personalize":  # a finished run whose settings name no generator
        assert main(["invert", str(reference), *flags(server, "--iterations", "1"), "--out", str(source)]) == 0
        store = RunStore.open(source)
        config = store.config
        config["generator"]["backend"] = None
        store.set_meta("config", json.dumps(config))
        store.close()
        capsys.readouterr()
    argv = [a.replace("IMAGE", str(reference)).replace("RUN", str(source)) for a in command]
    code, _, err = _run([*argv, "--out", str(tmp_path / "new")], capsys)
    assert code == 2 and err == f"promptclimb: error: {NO_GENERATOR}\n"
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(("extra", "message"), [
    (["--judge", "openai:gpt-9"], "does not serve judge model 'gpt-9'"),
    (["--set", "generator.n=99"], "generator.n: Input should be less than or equal to 8"),
    (["--method", "nope"], "unknown text-to-image method 'nope'; known: hill_climb, judge"),
    (["--scorer", "clip"], "unknown similarity backbone 'clip'"),
])
def test_bad_setup_is_one_line_before_any_work(server: ImageServer, tmp_path: Path, extra: list[str], message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["generate", "a fox", *flags(server), *extra, "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists() and server.image_requests == []


@pytest.mark.parametrize(("llm", "cap", "images", "llm_calls"), [
    ("openai:test-vision", "0.025", 3, 3),  # an unpriced LLM: images alone reach the cap (0.01 each)
    ("openai:test-model", "0.1", 1, 1),  # a priced LLM: its cost counts against the same cap
])
def test_a_cost_budget_counts_images_judge_and_llm(server: ImageServer, tmp_path: Path, llm: str, cap: str,
                                                   images: int, llm_calls: int,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    code, out, err = _run(["generate", "a green triangle", *flags(server, "--iterations", "6"), "--llm", llm,
                           "--max-cost", cap, "--out", str(run)], capsys)
    assert code == 0, err
    assert f"stopped by budget cost_usd={cap}" in out
    assert len(server.image_requests) == images
    assert len(server.requests) - len(server.judge_requests) == llm_calls
    store = RunStore.open(run)
    assert store.result("usage")["cost_by_kind"]["image"] == pytest.approx(0.01 * images)
    store.close()


@pytest.mark.parametrize("part", ["image generator", "judge"])
def test_a_down_generator_or_judge_stops_the_run_in_one_line_and_resume_finishes(
        server: ImageServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], part: str) -> None:
    run = tmp_path / "run"
    if part == "judge":
        server.always = "500"  # chat requests: the judge (and the prompt-writing LLM)
    else:
        server.image_always = "500"
    code, _, err = _run(["generate", "a red square on a blue background", *flags(server, "--iterations", "3"),
                         "--set", "generator.max_retries=1", "--set", "judge.max_retries=1",
                         "--set", "llm_options.max_retries=1", "--out", str(run)], capsys)
    lines = err.strip().splitlines()
    assert code == 3 and len(lines) == 1, err
    assert server.url in lines[0] and "answered 500" in lines[0] and f"promptclimb resume {run}" in lines[0]
    assert "endpoint" in lines[0] and "stronger model" not in lines[0]
    assert not RunStore.open(run).finished
    server.always = server.image_always = None
    code, _, err = _run(["resume", str(run)], capsys)
    assert code == 0, err
    store = RunStore.open(run)
    keys = [st.key for st in store.stored_trials()]
    assert store.finished and len(keys) == len(set(keys)) and any(t.state.value == "complete" for t in store.trials())
