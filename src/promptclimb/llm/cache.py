"""A request-hash cache for LLM calls, kept in SQLite and shared across runs.

Each request is keyed by the hash of its full content (model name included) plus a sample index:
the n-th identical request in a run is sample n, so several samples at temperature > 0 are
distinct entries and a rerun with the same seed replays them exactly. ``replay_only`` turns a
cache miss into a clear error instead of a call to the model.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter
from dataclasses import replace
from pathlib import Path

from promptclimb.llm.base import CacheMiss, ChatLLM, ChatReply, ChatRequest


class LLMCache:
    """(request key, sample index) -> reply, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        try:
            self._conn = self._open(path)
        except sqlite3.DatabaseError:
            # A cache is only a cache: a corrupt file is replaced, never trusted.
            path.unlink(missing_ok=True)
            self._conn = self._open(path)

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS replies (key TEXT, sample INTEGER, model TEXT, reply TEXT,"
            " PRIMARY KEY (key, sample))")
        return conn

    def get(self, key: str, sample: int) -> ChatReply | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT reply FROM replies WHERE key=? AND sample=?", (key, sample)).fetchone()
        return None if row is None else ChatReply.from_json(json.loads(row[0]))

    def put(self, key: str, sample: int, model: str, reply: ChatReply) -> None:
        with self._lock, self._conn:
            self._conn.execute("INSERT OR REPLACE INTO replies VALUES (?,?,?,?)",
                               (key, sample, model, json.dumps(reply.to_json())))

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM replies").fetchone()[0])


class CachedLLM:
    """Wraps a ChatLLM; answers from the cache when it can."""

    def __init__(self, inner: ChatLLM, cache: LLMCache | None, replay_only: bool = False) -> None:
        self.inner = inner
        self.name = inner.name
        # What replies depend on besides the request (backend options): part of every key.
        self.cache_id: str = getattr(inner, "cache_id", inner.name)
        self.cache = cache
        self.replay_only = replay_only
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()

    def next_sample(self, key: str) -> int:
        with self._lock:
            self._seen[key] += 1
            return self._seen[key] - 1

    def chat(self, request: ChatRequest) -> ChatReply:
        key = request.key(self.cache_id)
        return self.chat_at(request, key, self.next_sample(key))

    def chat_at(self, request: ChatRequest, key: str, sample: int) -> ChatReply:
        hit = self.cache.get(key, sample) if self.cache else None
        if hit is not None:
            return replace(hit, cached=True)
        if self.replay_only:
            raise CacheMiss(
                f"--replay-only: request {key[:12]} (sample {sample}) is not in the LLM cache; "
                "run without --replay-only to call the model")
        reply = self.inner.chat(request)
        if self.cache is not None and reply.texts:
            self.cache.put(key, sample, self.name, reply)
        return reply
