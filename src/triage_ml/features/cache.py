"""A disk cache of embeddings keyed by a hash of (encoder fingerprint, text), in one SQLite file."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

_CHUNK = 500  # SQLite's default limit on bound parameters is 999


def _key(fingerprint: str, text: str) -> bytes:
    return hashlib.sha256(f"{fingerprint}\x00{text}".encode()).digest()


class EmbeddingCache:
    """Embeddings on disk; safe for several processes (SQLite WAL), float32 vectors stored as bytes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("CREATE TABLE IF NOT EXISTS embedding (key BLOB PRIMARY KEY, vector BLOB NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def get_many(self, fingerprint: str, texts: Iterable[str]) -> dict[str, np.ndarray]:
        by_key = {_key(fingerprint, t): t for t in set(texts)}
        keys = list(by_key)
        found: dict[str, np.ndarray] = {}
        with self._connect() as con:
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start:start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, blob in con.execute(f"SELECT key, vector FROM embedding WHERE key IN ({marks})", chunk):
                    found[by_key[key]] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, fingerprint: str, vectors: Mapping[str, np.ndarray]) -> None:
        rows = [(_key(fingerprint, t), np.asarray(v, dtype=np.float32).tobytes()) for t, v in vectors.items()]
        with self._connect() as con:
            con.executemany("INSERT OR REPLACE INTO embedding (key, vector) VALUES (?, ?)", rows)

    def __len__(self) -> int:
        with self._connect() as con:
            return int(con.execute("SELECT COUNT(*) FROM embedding").fetchone()[0])
