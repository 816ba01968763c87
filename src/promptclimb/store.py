"""The run store: one SQLite file (WAL) per run directory.

It holds the resolved config, every trial, every LLM request and reply with token counts, and
the final results, each committed as it happens, so a killed run loses nothing it had recorded.
Resuming replays the store: trials are found by their position key, LLM replies by request hash
and sample index, so nothing already scored is scored again.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptclimb.candidate import Trial, TrialState
from promptclimb.llm.base import ChatReply, ChatRequest

STORE_FILE = "run.sqlite"
FORMAT = "promptclimb-run"
VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
  number INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, state TEXT NOT NULL, template TEXT,
  raw TEXT NOT NULL, proposer TEXT NOT NULL, restart INTEGER, reset INTEGER, iteration INTEGER,
  train_score REAL, val_score REAL, test_score REAL, metrics TEXT NOT NULL, error TEXT,
  duplicate_of INTEGER, exchange_id INTEGER, started_at REAL, finished_at REAL);
CREATE TABLE IF NOT EXISTS exchanges (
  id INTEGER PRIMARY KEY, key TEXT NOT NULL, sample INTEGER NOT NULL, model TEXT NOT NULL,
  request TEXT NOT NULL, reply TEXT, error TEXT, prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0, cost_usd REAL, cached INTEGER NOT NULL DEFAULT 0,
  started_at REAL, finished_at REAL, UNIQUE (key, sample));
CREATE TABLE IF NOT EXISTS results (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Marks a recorded LLM error that stopped the run (setup, endpoint down, cache miss) rather than
# costing a trial: resume asks that call again. Every other recorded error is replayed as it was.
STOPPED = "stopped the run: "
# Marks a recorded error of the endpoint (after its retries), as opposed to the model's.
ENDPOINT_FAILED = "endpoint failed: "

_TRIAL_COLS = (
    "number", "key", "state", "template", "raw", "proposer", "restart", "reset", "iteration",
    "train_score", "val_score", "test_score", "metrics", "error", "duplicate_of", "exchange_id",
    "started_at", "finished_at",
)


_EXCHANGE_COLS = ("id", "key", "sample", "model", "request", "reply", "error", "prompt_tokens",
                  "completion_tokens", "cost_usd", "cached", "started_at", "finished_at")


class StoreError(RuntimeError):
    """The store cannot be used: missing, corrupt, foreign, or diverged from the code."""


@dataclass(frozen=True)
class Exchange:
    """One recorded LLM call (a reply or an error)."""

    id: int
    key: str
    sample: int
    model: str
    request: ChatRequest
    reply: ChatReply | None
    error: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    cached: bool
    started_at: float
    finished_at: float


@dataclass(frozen=True)
class StoredTrial:
    """A trial as the store keeps it: the record plus its position key."""

    key: str
    trial: Trial


class RunStore:
    """Thread-safe access to one run's SQLite file."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self._lock = threading.RLock()

    # -- opening -------------------------------------------------------------------------
    @classmethod
    def create(cls, run_dir: Path, config: dict[str, Any]) -> RunStore:
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / STORE_FILE
        if path.exists():
            raise StoreError(
                f"{run_dir} already holds a run: continue it with `promptclimb resume {run_dir}` "
                "or choose another --out"
            )
        # Built under a temporary name and renamed: a process killed half-way through creation
        # leaves no half-made store behind, so a rerun simply starts the run again.
        partial = run_dir / (STORE_FILE + ".partial")
        for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
            leftover.unlink(missing_ok=True)
        conn = _connect(partial)
        with conn:
            conn.executescript(_SCHEMA)
            conn.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [("format", FORMAT), ("version", str(VERSION)), ("created_at", str(time.time())),
                 ("config", json.dumps(config, sort_keys=True)), ("finished", "false")],
            )
        conn.close()
        os.replace(partial, path)
        return cls(path, _connect(path))

    @classmethod
    def open(cls, run_dir: Path) -> RunStore:
        path = run_dir / STORE_FILE if run_dir.is_dir() else run_dir
        if not run_dir.exists():
            raise StoreError(f"run directory {run_dir} does not exist: pass the --out of a run")
        if not path.is_file():
            raise StoreError(f"{run_dir} holds no {STORE_FILE}: it is not a promptclimb run directory")
        _check(path)  # read-only: a store we cannot use is left exactly as it was
        return cls(path, _connect(path))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction: all of it is recorded or none (a full disk or a read-only directory
        rolls it back and stops the run in one line; the run resumes once it is fixed)."""
        with self._lock:
            try:
                with self._conn:
                    yield self._conn
            except sqlite3.OperationalError as err:
                run = self.path.parent
                raise StoreError(
                    f"cannot write the run store {self.path} ({err}): free disk space or make {run} writable, "
                    f"then `promptclimb resume {run}`; everything recorded before is kept") from None

    # -- meta and results ----------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.meta("config") or "{}")

    @property
    def finished(self) -> bool:
        return self.meta("finished") == "true"

    def set_result(self, name: str, value: Any) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO results VALUES (?, ?)", (name, json.dumps(value)))

    def result(self, name: str) -> Any:
        with self._lock:
            row = self._conn.execute("SELECT value FROM results WHERE name=?", (name,)).fetchone()
        return None if row is None else json.loads(row[0])

    def results(self) -> dict[str, Any]:
        with self._lock:
            rows = self._conn.execute("SELECT name, value FROM results").fetchall()
        return {name: json.loads(value) for name, value in rows}

    # -- trials --------------------------------------------------------------------------
    def append_trial(self, key: str, trial: Trial) -> Trial:
        """Record a trial; its number is assigned here, in recording order."""
        with self._tx() as c:
            number = c.execute("SELECT COALESCE(MAX(number), -1) + 1 FROM trials").fetchone()[0]
            trial = trial.with_(number=number)
            c.execute(
                f"INSERT INTO trials ({', '.join(_TRIAL_COLS)}) VALUES ({', '.join('?' * len(_TRIAL_COLS))})",
                (number, key, trial.state.value, trial.template, trial.raw, trial.proposer,
                 trial.restart, trial.reset, trial.iteration, trial.train_score, trial.val_score,
                 trial.test_score, json.dumps(dict(trial.metrics)), trial.error, trial.duplicate_of,
                 trial.exchange_id, trial.started_at, trial.finished_at),
            )
        return trial

    def set_test_score(self, number: int, value: float) -> None:
        with self._tx() as c:
            c.execute("UPDATE trials SET test_score=? WHERE number=?", (value, number))

    def trials(self) -> list[Trial]:
        return [st.trial for st in self.stored_trials()]

    def stored_trials(self) -> list[StoredTrial]:
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {', '.join(_TRIAL_COLS)} FROM trials ORDER BY number").fetchall()
        return [_trial_from_row(r) for r in rows]

    # -- LLM exchanges -------------------------------------------------------------------
    def add_exchange(
        self, key: str, sample: int, model: str, request: ChatRequest, reply: ChatReply | None,
        error: str | None, cost_usd: float | None, started_at: float,
    ) -> int:
        with self._tx() as c:
            cur = c.execute(
                "INSERT OR REPLACE INTO exchanges (key, sample, model, request, reply, error, "
                "prompt_tokens, completion_tokens, cost_usd, cached, started_at, finished_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (key, sample, model, json.dumps(request.to_json()),
                 None if reply is None else json.dumps(reply.to_json()), error,
                 reply.prompt_tokens if reply else 0, reply.completion_tokens if reply else 0,
                 cost_usd, int(bool(reply and reply.cached)), started_at, time.time()),
            )
            return int(cur.lastrowid or 0)

    def find_exchange(self, key: str, sample: int) -> Exchange | None:
        """The recorded outcome of this request and sample index: a reply, or an error that cost
        a trial (replayed as that error, so the resumed run takes the path the killed one took);
        None if not recorded or if it stopped the run."""
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM exchanges WHERE key=? AND sample=? AND (reply IS NOT NULL OR "
                "substr(COALESCE(error, ''), 1, ?) != ?)", (key, sample, len(STOPPED), STOPPED)).fetchone()
        return None if row is None else _exchange_from_row(row)

    def exchanges(self) -> list[Exchange]:
        with self._lock:
            rows = self._conn.execute("SELECT * FROM exchanges ORDER BY id").fetchall()
        return [_exchange_from_row(r) for r in rows]


def _check(path: Path) -> None:
    """Format, version and schema, read through a read-only connection."""
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as ro:
            rows = dict(ro.execute("SELECT key, value FROM meta").fetchall())
            columns = {t: [r[1] for r in ro.execute(f"PRAGMA table_info({t})")] for t in ("trials", "exchanges")}
    except sqlite3.DatabaseError as err:
        raise StoreError(
            f"{path} is not a readable promptclimb store ({err}); it is corrupt or foreign: "
            "start a new run with another --out") from None
    if rows.get("format") != FORMAT:
        raise StoreError(f"{path} is an SQLite file but not a promptclimb run store")
    version = rows.get("version", "0")
    if not version.isdigit() or int(version) > VERSION:
        raise StoreError(f"{path} was written by a newer promptclimb (store version {version}, this one reads "
                         f"{VERSION}): upgrade promptclimb to read it")
    missing = sorted({*_TRIAL_COLS} - {*columns["trials"]}) + sorted({*_EXCHANGE_COLS} - {*columns["exchanges"]})
    if int(version) < VERSION or missing:
        raise StoreError(f"{path} has an older or unknown schema (version {version}, missing "
                         f"{', '.join(missing) or 'nothing'}): this promptclimb cannot read it; it was left "
                         "untouched: use the promptclimb that wrote it, or start a new run with another --out")


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")  # a committed trial survives power loss
    return conn


def _trial_from_row(r: tuple[Any, ...]) -> StoredTrial:
    d = dict(zip(_TRIAL_COLS, r, strict=True))
    key = d.pop("key")
    d["state"] = TrialState(d["state"])
    d["metrics"] = json.loads(d["metrics"])
    return StoredTrial(key, Trial(**d))


def _exchange_from_row(r: tuple[Any, ...]) -> Exchange:
    (id_, key, sample, model, request, reply, error, pt, ct, cost, cached, t0, t1) = r
    return Exchange(
        id_, key, sample, model, ChatRequest.from_json(json.loads(request)),
        None if reply is None else ChatReply.from_json(json.loads(reply)), error, pt, ct, cost,
        bool(cached), t0 or 0.0, t1 or 0.0,
    )
