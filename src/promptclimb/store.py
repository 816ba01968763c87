"""The run store: one SQLite file (WAL) per run directory.

It holds the resolved config, every trial, every outside call and the final results, each
committed as it happens, so a killed run loses nothing it had recorded. Resuming replays the
store: trials are found by their position key, calls by kind, request hash and sample index, so
nothing already scored or paid for is done again.

Each call is kept with its kind in its own typed form (calls.py reads and writes them): chat LLM
calls as request/reply in ``exchanges`` (trials point at them), image-generator and judge calls in
``calls`` as JSON of their own shape. Stores of version 1 (before issue 15) kept image and judge
calls as chat exchanges of models "image:..." and "judge:..."; they are read as the typed records
they stand for, and the store is changed only when a resumed run writes to it.
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
from promptclimb.chat import ChatReply, ChatRequest

STORE_FILE = "run.sqlite"
FORMAT = "promptclimb-run"
VERSION = 2
READS = (1, 2)  # store versions this code opens
LLM = "llm"
# Version 1 recorded these kinds as chat exchanges under a model prefix.
_LEGACY_PREFIXES = {"image": "image:", "judge": "judge:"}

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
""" + """
CREATE TABLE IF NOT EXISTS calls (
  id INTEGER PRIMARY KEY, kind TEXT NOT NULL, key TEXT NOT NULL, sample INTEGER NOT NULL, model TEXT NOT NULL,
  request TEXT NOT NULL, response TEXT, error TEXT, prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0, units INTEGER NOT NULL DEFAULT 0, cost_usd REAL,
  started_at REAL, finished_at REAL, UNIQUE (kind, key, sample));
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
class CallRecord:
    """One recorded outside call of any kind (llm, image, judge): its request and response as the
    JSON of that kind's own records, or the error it failed with; ``units`` counts what it made
    (images)."""

    id: int
    kind: str
    key: str
    sample: int
    model: str
    request: dict[str, Any]
    response: dict[str, Any] | None
    error: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    units: int = 0
    cost_usd: float | None = None
    started_at: float = 0.0
    finished_at: float = 0.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


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

    def set_val_score(self, number: int, value: float, metrics: dict[str, Any]) -> None:
        """A val score given after the trial was recorded (a selection rule's), with the metrics
        that count its cost."""
        with self._tx() as c:
            c.execute("UPDATE trials SET val_score=?, metrics=? WHERE number=?",
                      (value, json.dumps(metrics), number))

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

    # -- recorded calls ------------------------------------------------------------------
    def add_call(self, kind: str, key: str, sample: int, model: str, request: dict[str, Any],
                 response: dict[str, Any] | None, error: str | None, *, prompt_tokens: int = 0,
                 completion_tokens: int = 0, units: int = 0, cost_usd: float | None = None,
                 started_at: float = 0.0) -> int:
        """Record one call of ``kind``; its id. Chat LLM calls go to ``exchanges``, the rest to ``calls``."""
        table = _TABLE.get(kind, "calls")
        row = (kind, key, sample, model, json.dumps(request), None if response is None else json.dumps(response),
               error, prompt_tokens, completion_tokens, units, cost_usd, started_at, time.time())
        with self._tx() as c:
            if table == "calls" and not self._has_calls():  # a version-1 store gets it when first written to
                c.execute(_CALLS_TABLE)
            sql, values = _INSERT[table]
            return int(c.execute(sql, values(row)).lastrowid or 0)

    def find_call(self, kind: str, key: str, sample: int) -> CallRecord | None:
        """The recorded outcome of this request and sample index: a response, or an error that did
        not stop the run (replayed as that error, so a resumed run takes the path the killed one
        took); None if not recorded or if it stopped the run."""
        found = [c for c in self._calls_where(kind, "key=? AND sample=?", (key, sample))
                 if c.response is not None or not (c.error or "").startswith(STOPPED)]
        return found[-1] if found else None

    def calls(self, kind: str | None = None) -> list[CallRecord]:
        """Every recorded call of ``kind`` (every kind: None), in recording order within a kind."""
        kinds = [kind] if kind else [LLM, *_LEGACY_PREFIXES, *self._other_kinds()]
        return [c for k in dict.fromkeys(kinds) for c in self._calls_where(k, "1", ())]

    def _calls_where(self, kind: str, where: str, args: tuple[Any, ...]) -> list[CallRecord]:
        with self._lock:
            rows = self._conn.execute(f"SELECT * FROM exchanges WHERE {where} ORDER BY id", args).fetchall()
            typed = self._conn.execute(f"SELECT * FROM calls WHERE kind=? AND {where} ORDER BY id",
                                       (kind, *args)).fetchall() if self._has_calls() else []
        # exchanges hold the chat calls, and a version-1 store's image and judge calls under a prefix
        prefix = _LEGACY_PREFIXES.get(kind)
        mine = (lambda m: m.startswith(prefix)) if prefix else (lambda m: not m.startswith(_LEGACY))
        in_exchanges = [_legacy_call(kind, r) if prefix else _call_from_exchange(r) for r in rows if mine(str(r[3]))]
        return [*(in_exchanges if _TABLE.get(kind) == "exchanges" or prefix else []), *map(_call_from_row, typed)]

    def _has_calls(self) -> bool:
        with self._lock:
            return self._conn.execute("SELECT 1 FROM sqlite_master WHERE name='calls'").fetchone() is not None

    def _other_kinds(self) -> list[str]:
        if not self._has_calls():
            return []
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT DISTINCT kind FROM calls ORDER BY kind")]

    # -- LLM exchanges: the chat calls, typed as chat requests and replies --------------------
    def add_exchange(
        self, key: str, sample: int, model: str, request: ChatRequest, reply: ChatReply | None,
        error: str | None, cost_usd: float | None, started_at: float,
    ) -> int:
        return self.add_call(LLM, key, sample, model, request.to_json(), None if reply is None else reply.to_json(),
                             error, prompt_tokens=reply.prompt_tokens if reply else 0,
                             completion_tokens=reply.completion_tokens if reply else 0, cost_usd=cost_usd,
                             started_at=started_at)

    def find_exchange(self, key: str, sample: int) -> Exchange | None:
        """The recorded chat call of this request and sample index (see find_call)."""
        hit = self.find_call(LLM, key, sample)
        return None if hit is None else _exchange(hit)

    def exchanges(self) -> list[Exchange]:
        """The chat LLM calls (never the image or judge calls a version-1 store kept beside them)."""
        return [_exchange(c) for c in self.calls(LLM)]


_LEGACY = tuple(_LEGACY_PREFIXES.values())
_TABLE = {LLM: "exchanges"}  # where each kind's calls are kept; every other kind: "calls"
_INSERT: dict[str, tuple[str, Any]] = {
    "exchanges": ("INSERT OR REPLACE INTO exchanges (key, sample, model, request, reply, error, prompt_tokens, "
                  "completion_tokens, cost_usd, cached, started_at, finished_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                  lambda r: (*r[1:9], r[10], int('"cached": true' in (r[5] or "")), r[11], r[12])),
    "calls": ("INSERT OR REPLACE INTO calls (kind, key, sample, model, request, response, error, prompt_tokens, "
              "completion_tokens, units, cost_usd, started_at, finished_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
              lambda r: r),
}
_CALLS_TABLE = _SCHEMA[_SCHEMA.index("CREATE TABLE IF NOT EXISTS calls"):]


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
    if not version.isdigit() or int(version) > max(READS):
        raise StoreError(f"{path} was written by a newer promptclimb (store version {version}, this one reads "
                         f"{VERSION}): upgrade promptclimb to read it")
    missing = sorted({*_TRIAL_COLS} - {*columns["trials"]}) + sorted({*_EXCHANGE_COLS} - {*columns["exchanges"]})
    if int(version) not in READS or missing:
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


def _call_from_row(r: tuple[Any, ...]) -> CallRecord:
    (id_, kind, key, sample, model, request, response, error, pt, ct, units, cost, t0, t1) = r
    return CallRecord(id_, kind, key, sample, model, json.loads(request), None if response is None else
                      json.loads(response), error, pt, ct, units, cost, t0 or 0.0, t1 or 0.0)


def _call_from_exchange(r: tuple[Any, ...]) -> CallRecord:
    (id_, key, sample, model, request, reply, error, pt, ct, cost, _cached, t0, t1) = r
    return CallRecord(id_, LLM, key, sample, model, json.loads(request), None if reply is None else json.loads(reply),
                      error, pt, ct, 0, cost, t0 or 0.0, t1 or 0.0)


def _legacy_image(messages: list[str], texts: list[str], request: dict[str, Any]) -> tuple[dict[str, Any], Any, int]:
    return ({"prompt": messages[0] if messages else "", "n": request.get("n", 1), "seed": request.get("seed")},
            {"images": [json.loads(t) for t in texts]}, len(texts))


def _legacy_judge(messages: list[str], texts: list[str], request: dict[str, Any]) -> tuple[dict[str, Any], Any, int]:
    return ({"system": messages[0] if messages else "", "user": messages[-1] if messages else ""},
            {"text": texts[0] if texts else ""}, 0)


# How a version-1 chat exchange of each kind reads as that kind's record: (request, response, units).
_FROM_V1 = {"image": _legacy_image, "judge": _legacy_judge}


def _legacy_call(kind: str, r: tuple[Any, ...]) -> CallRecord:
    """A version-1 image or judge call (a chat exchange under "image:"/"judge:") as its typed record."""
    chat = _call_from_exchange(r)
    messages = [m["content"] for m in chat.request.get("messages", [])]
    texts = list((chat.response or {}).get("texts", []))
    request, response, units = _FROM_V1[kind](messages, texts, chat.request)
    return CallRecord(chat.id, kind, chat.key, chat.sample, chat.model.removeprefix(_LEGACY_PREFIXES[kind]),
                      request, None if chat.response is None else response, chat.error, chat.prompt_tokens,
                      chat.completion_tokens, units, chat.cost_usd, chat.started_at, chat.finished_at)


def _exchange(c: CallRecord) -> Exchange:
    reply = None if c.response is None else ChatReply.from_json(c.response)
    return Exchange(c.id, c.key, c.sample, c.model, ChatRequest.from_json(c.request), reply, c.error,
                    c.prompt_tokens, c.completion_tokens, c.cost_usd, bool(reply and reply.cached),
                    c.started_at, c.finished_at)
