"""Node-local claims on judgements in flight, shared by the reward workers of one machine through SQLite.

verl sends each finished trajectory to a random reward worker (a separate process). A GRPO group's repeated
answers therefore reach different workers, sometimes at the same moment: the verifier cache (shared SQLite file)
answers a repeat only once the first verdict is stored, so two workers judging the same answer concurrently
would both ask the judge. A claim closes that gap: the first worker to claim a judgement asks the judge; another
worker that finds the claim waits (bounded) until the claim is released, then scores with the verdict already in
the cache. A claim whose owner died or overran ``stale_s`` is taken over, so waiting never blocks a step.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sqlite3
import threading
import time
from pathlib import Path

_POLL_S = 0.02


class Claims:
    """``claim(key)`` before asking the judge, ``release(key)`` once the verdict is stored (or failed)."""

    def __init__(self, path: str | Path, *, stale_s: float = 60.0) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.stale_s = stale_s
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, pid INTEGER, at REAL, done INTEGER)")
        self.waits = 0
        self._pid = os.getpid()  # an SQLite connection must not be used across fork: a child skips the claims

    @staticmethod
    def key(*parts: object) -> str:
        return hashlib.sha256(repr(parts).encode()).hexdigest()

    def claim(self, key: str) -> bool:
        """True: ours to judge (new, taken over, or already done: the cache answers). False: another worker is
        judging it right now."""
        if os.getpid() != self._pid:
            return True
        now = time.time()
        with self._lock:
            cur = self._conn.execute("INSERT OR IGNORE INTO claims VALUES (?, ?, ?, 0)", (key, os.getpid(), now))
            if cur.rowcount == 1:
                return True
            row = self._conn.execute("SELECT pid, at, done FROM claims WHERE key = ?", (key,)).fetchone()
            if row is not None and not row[2] and now - row[1] <= self.stale_s and _alive(row[0]):
                return False
            self._conn.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, 0)", (key, os.getpid(), now))
            return True

    def release(self, key: str) -> None:
        if os.getpid() != self._pid:
            return
        with self._lock, contextlib.suppress(sqlite3.Error):  # closed meanwhile: its waiters time out (bounded)
            self._conn.execute("UPDATE claims SET done = 1 WHERE key = ?", (key,))

    def _settled(self, key: str) -> bool:
        if os.getpid() != self._pid:
            return True
        with self._lock:
            row = self._conn.execute("SELECT pid, at, done FROM claims WHERE key = ?", (key,)).fetchone()
        return row is None or bool(row[2]) or time.time() - row[1] > self.stale_s or not _alive(row[0])

    def wait(self, key: str, timeout: float) -> None:
        """Until the claim is released (or stale, or ``timeout`` passed)."""
        self.waits += 1
        end = time.monotonic() + timeout
        while not self._settled(key) and time.monotonic() < end:
            time.sleep(_POLL_S)

    async def await_released(self, key: str, timeout: float) -> None:
        self.waits += 1
        end = time.monotonic() + timeout
        while not self._settled(key) and time.monotonic() < end:
            await asyncio.sleep(_POLL_S)

    def close(self) -> None:
        if os.getpid() != self._pid:
            return
        with self._lock:
            self._conn.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
