"""On-disk caches: image features per (backbone, data set, split contents, preprocessing), and
text embeddings per (backbone, text). Both are rebuilt, never trusted, when a file is corrupt or
was written by another version or for another key.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path

import numpy as np

CACHE_VERSION = 1


def cache_key(**parts: object) -> str:
    blob = json.dumps({"version": CACHE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class FeatureCache:
    """Image feature matrices as .npz files named by their key; the key is stored inside too,
    and a file whose stored key or ids do not match is recomputed."""

    def __init__(self, root: Path) -> None:
        self.root = root / "features"
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / f"{key[:32]}.npz"

    def load(self, key: str, ids: list[str]) -> np.ndarray | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["key"]) != key or data["ids"].tolist() != ids:
                    return None
                feats = np.array(data["features"], dtype=np.float32)
        except Exception:  # a torn or foreign file: recompute
            return None
        return feats if feats.shape[0] == len(ids) else None

    def save(self, key: str, ids: list[str], features: np.ndarray) -> None:
        path = self.path(key)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, key=np.array(key), ids=np.array(ids), features=features.astype(np.float32))
        tmp.replace(path)  # atomic: a reader never sees half a file


class TextEmbeddingCache:
    """(backbone, text) -> embedding, in SQLite, with an in-memory layer for hot texts."""

    def __init__(self, root: Path, backbone: str) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.backbone = backbone
        self.path = root / "text_embeddings.sqlite"
        self._memory: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError as err:
            self._conn = self._rebuild(None, err)

    def _rebuild(self, conn: sqlite3.Connection | None, err: sqlite3.DatabaseError) -> sqlite3.Connection:
        """A corrupt file (found on open or on a later read or write) is replaced by an empty one.
        Operational errors (locked, I/O) are not corruption: they propagate."""
        if isinstance(err, sqlite3.OperationalError):
            raise err
        if conn is not None:
            conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        return self._open()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS emb (backbone TEXT, version INTEGER, text TEXT, "
                      "vec BLOB, PRIMARY KEY (backbone, text))")
        return conn

    def get_many(self, texts: list[str]) -> dict[str, np.ndarray]:
        with self._lock:
            found = {t: self._memory[t] for t in texts if t in self._memory}
            missing = [t for t in texts if t not in found]
            for i in range(0, len(missing), 500):
                chunk = missing[i: i + 500]
                try:
                    rows = self._conn.execute(
                        f"SELECT text, vec FROM emb WHERE backbone=? AND version=? AND text IN "
                        f"({','.join('?' * len(chunk))})", (self.backbone, CACHE_VERSION, *chunk)).fetchall()
                except sqlite3.DatabaseError as err:
                    self._conn = self._rebuild(self._conn, err)
                    break
                for text, blob in rows:
                    vec = np.frombuffer(blob, dtype=np.float32)
                    self._memory[text] = found[text] = vec
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        rows = [(self.backbone, CACHE_VERSION, t, np.asarray(v, dtype=np.float32).tobytes()) for t, v in items.items()]
        with self._lock:
            self._memory.update(items)
            try:
                with self._conn:
                    self._conn.executemany("INSERT OR REPLACE INTO emb VALUES (?,?,?,?)", rows)
            except sqlite3.DatabaseError as err:
                self._conn = self._rebuild(self._conn, err)
                with self._conn:
                    self._conn.executemany("INSERT OR REPLACE INTO emb VALUES (?,?,?,?)", rows)
