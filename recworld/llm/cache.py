"""Content-addressed response cache in SQLite, shared safely by several processes."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS llm_response (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    purpose TEXT NOT NULL,
    text TEXT NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    created REAL NOT NULL
)
"""


@dataclass(frozen=True)
class CachedResponse:
    """A stored answer and the tokens it cost when it was made."""

    text: str
    tokens_in: int
    tokens_out: int


def cache_key(
    *,
    model: str,
    api_mode: str,
    messages: list[dict[str, Any]],
    temperature: float,
    max_tokens: int,
    schema: dict[str, Any] | None,
    seed: int,
    purpose: str,
) -> str:
    """sha256 over everything that decides an answer, in canonical JSON.

    ``user_id`` and ``tick`` are deliberately left out: identical prompts get
    identical answers, which is what makes a replay reproduce its events.
    """
    payload = {
        "model": model,
        "api_mode": api_mode,
        "messages": messages,
        "temperature": round(float(temperature), 6),
        "max_tokens": int(max_tokens),
        "schema": schema,
        "seed": int(seed),
        "purpose": purpose,
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """A SQLite table of answers keyed by :func:`cache_key`.

    WAL mode lets readers and one writer in different processes proceed
    together; ``busy_timeout`` makes a second writer wait instead of failing.
    One connection per cache, guarded by a lock, so any thread may use it.

    Args:
        path: The SQLite file; its parent directory is created.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._conn.execute(_SCHEMA)

    def get_many(self, keys: list[str]) -> dict[str, CachedResponse]:
        """The stored answers among ``keys``."""
        found: dict[str, CachedResponse] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            # SQLite limits bound parameters per statement; 500 is safely under it.
            for i in range(0, len(unique), 500):
                chunk = unique[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(f"SELECT key, text, tokens_in, tokens_out FROM llm_response WHERE key IN ({marks})", chunk).fetchall()
                for key, text, t_in, t_out in rows:
                    found[key] = CachedResponse(text, int(t_in), int(t_out))
        return found

    def get(self, key: str) -> CachedResponse | None:
        """The stored answer for ``key``, or None."""
        return self.get_many([key]).get(key)

    def put_many(self, entries: list[tuple[str, str, str, CachedResponse]]) -> None:
        """Store ``(key, model, purpose, response)`` entries in one transaction."""
        if not entries:
            return
        now = time.time()
        rows = [(k, m, p, r.text, r.tokens_in, r.tokens_out, now) for k, m, p, r in entries]
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany("INSERT OR REPLACE INTO llm_response VALUES (?,?,?,?,?,?,?)", rows)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM llm_response").fetchone()[0])

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            try:
                self._conn.close()
            except sqlite3.ProgrammingError:
                pass
