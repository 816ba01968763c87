"""Stores written before issue 15 (tests/fixtures/stores_v1, made by main at affd3e2, where image and
judge calls were chat exchanges of models "image:..."/"judge:...") still open: `show`, `export`,
`report` and `resume` read them, count their calls by kind, and a resumed run replays what they
recorded instead of paying for it again."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from promptclimb.cli import main
from promptclimb.store import STORE_FILE, RunStore

FIXTURES = Path(__file__).parent / "fixtures" / "stores_v1"


def _copy(name: str, tmp_path: Path) -> Path:
    run = tmp_path / name
    shutil.copytree(FIXTURES / name, run)
    with sqlite3.connect(run / STORE_FILE) as c:  # its cache under this test's tmp_path
        config = json.loads(c.execute("SELECT value FROM meta WHERE key='config'").fetchone()[0])
        config["cache_dir"] = str(tmp_path / "cache")
        c.execute("UPDATE meta SET value=? WHERE key='config'", (json.dumps(config, sort_keys=True),))
    return run


def _unfinish(run: Path, keep: int) -> None:
    """As if killed after ``keep`` trials."""
    with sqlite3.connect(run / STORE_FILE) as c:
        c.execute("DELETE FROM trials WHERE number >= ?", (keep,))
        c.execute("DELETE FROM results WHERE name IN ('final', 'usage', 'references', 'curve')")
        c.execute("UPDATE meta SET value='false' WHERE key='finished'")


def _show(run: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert main(["show", "--json", str(run)]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(("name", "trials", "llm_calls", "image_calls", "judge_calls"), [
    ("classify", 10, 5, 0, 0),
    ("generate", 3, 2, 3, 3),
    ("judge", 2, 0, 2, 2),  # the judge method asked no LLM: v1's show said llm_calls 4
])
def test_show_counts_the_calls_of_an_old_store_by_kind(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, trials: int, llm_calls: int,
        image_calls: int, judge_calls: int) -> None:
    summary = _show(_copy(name, tmp_path), capsys)
    assert summary["n_trials"] == trials and summary["finished"] is True
    assert (summary["llm_calls"], summary["image_calls"], summary["judge_calls"]) == (llm_calls, image_calls,
                                                                                       judge_calls)
    assert summary["llm_tokens"] == (0 if llm_calls == 0 else summary["llm_tokens"]) and summary["best_template"]
    assert main(["show", str(_copy(name, tmp_path / "again"))]) == 0


@pytest.mark.parametrize("name", ["classify", "generate", "judge"])
def test_export_and_report_read_an_old_store(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    run = _copy(name, tmp_path)
    llm_calls = _show(run, capsys)["llm_calls"]
    assert main(["export", str(run), "--to", str(tmp_path / "out")]) == 0
    exchanges = (tmp_path / "out" / "exchanges.jsonl").read_text().splitlines()
    assert len(exchanges) == llm_calls  # the chat calls only, never the image or judge calls
    assert (tmp_path / "out" / "best_templates.txt").read_text().strip()
    assert main(["report", str(run)]) == 0
    html = (run / "report.html").read_text()
    assert ("Text-to-image" in html) == (name != "classify")


def test_a_finished_old_store_resumes_as_finished(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("classify", "generate"):
        capsys.readouterr()
        assert main(["resume", str(_copy(name, tmp_path))]) == 0
        assert "already finished" in " ".join(capsys.readouterr().out.split())


def test_an_interrupted_old_classification_run_resumes_to_the_same_end(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _copy("classify", tmp_path)
    want = [(t.template, t.train_score) for t in RunStore.open(_copy("classify", tmp_path / "ref")).trials()]
    _unfinish(run, keep=7)
    assert main(["resume", str(run), "-q"]) == 0
    store = RunStore.open(run)
    assert store.finished and [(t.template, t.train_score) for t in store.trials()] == want
    assert len(store.calls("llm")) == 5  # every LLM reply replayed from the store, none asked again
    store.close()


def test_an_interrupted_old_t2i_run_replays_its_images_and_judge_calls(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _copy("generate", tmp_path)
    images = sorted(p.name for p in (run / "images").iterdir())
    _unfinish(run, keep=1)
    assert main(["resume", str(run)]) == 0
    store = RunStore.open(run)
    assert store.finished and len(store.trials()) == 3
    # nothing generated or judged again: the v1 records answered, and no typed record was added
    recorded = RunStore.open(_copy("generate", tmp_path / "ref")).calls("image")
    assert [c.id for c in store.calls("image")] == [c.id for c in recorded]
    assert len(store.calls("judge")) == 3
    store.close()
    assert sorted(p.name for p in (run / "images").iterdir()) == images
