from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from promptclimb.candidate import Trial, TrialState
from promptclimb.llm.base import ChatReply, ChatRequest, Message
from promptclimb.store import STORE_FILE, RunStore, StoreError


def _trial(template: str, score: float) -> Trial:
    return Trial(number=-1, state=TrialState.COMPLETE, template=template, train_score=score,
                 metrics={"queries": 1, "mean_margin": 0.1})


def test_store_round_trips_config_trials_and_exchanges(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "run", {"method": "hill_climb", "seed": 3})
    a = store.append_trial("pool/0", _trial("a photo of a {}.", 0.5))
    b = store.append_trial("pool/1", _trial("{}", 0.25))
    assert (a.number, b.number) == (0, 1)
    req = ChatRequest((Message("user", "hi"),), seed=7)
    ex = store.add_exchange(req.key("m"), 0, "m", req, ChatReply(("x {}",), 5, 2, "m"), None, 0.01, 0.0)
    store.set_result("final", {"template": "a photo of a {}."})
    store.close()

    again = RunStore.open(tmp_path / "run")
    assert again.config == {"method": "hill_climb", "seed": 3}
    assert [(t.number, t.template, t.train_score) for t in again.trials()] == [
        (0, "a photo of a {}.", 0.5), (1, "{}", 0.25)]
    assert again.trials()[0].metrics["mean_margin"] == 0.1
    hit = again.find_exchange(req.key("m"), 0)
    assert hit is not None and hit.id == ex and hit.reply is not None
    assert hit.reply.texts == ("x {}",) and hit.prompt_tokens == 5 and hit.cost_usd == 0.01
    assert hit.request == req
    assert again.find_exchange(req.key("m"), 1) is None
    assert again.result("final") == {"template": "a photo of a {}."}
    assert again.meta("format") == "promptclimb-run"


def test_store_uses_wal_and_refuses_a_second_run_in_the_same_dir(tmp_path: Path) -> None:
    RunStore.create(tmp_path / "run", {}).close()
    mode = sqlite3.connect(tmp_path / "run" / STORE_FILE).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    with pytest.raises(StoreError, match="resume"):
        RunStore.create(tmp_path / "run", {})


def test_a_creation_killed_half_way_leaves_nothing_that_blocks_a_new_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    # What a SIGKILL during creation leaves: a schema without its meta rows, under the partial name.
    half = sqlite3.connect(run / (STORE_FILE + ".partial"))
    half.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    half.commit()
    half.close()
    assert not (run / STORE_FILE).exists()
    RunStore.create(run, {"seed": 1}).close()
    assert RunStore.open(run).config == {"seed": 1}
    assert sorted(p.name for p in run.iterdir() if "partial" in p.name) == []


def test_position_keys_are_unique(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "run", {})
    store.append_trial("k", _trial("{}", 0.1))
    with pytest.raises(sqlite3.IntegrityError):
        store.append_trial("k", _trial("{}", 0.1))
    assert len(store.trials()) == 1


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, "does not exist"),
        (lambda d: d.mkdir(), "not a promptclimb run directory"),
        (lambda d: (d.mkdir(), (d / STORE_FILE).write_bytes(b"garbage" * 200)), "corrupt or foreign"),
        (lambda d: (d.mkdir(), sqlite3.connect(d / STORE_FILE).execute("CREATE TABLE meta (key, value)")),
         "not a promptclimb run store"),
    ],
)
def test_unusable_stores_give_one_clear_error(tmp_path: Path, setup, message: str) -> None:  # type: ignore[no-untyped-def]
    d = tmp_path / "run"
    setup(d)
    with pytest.raises(StoreError, match=message) as err:
        RunStore.open(d)
    assert "\n" not in str(err.value)
