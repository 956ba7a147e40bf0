"""Coalesce concurrent per-sample calls into batches for one batch function, flushing when the calls go quiet.

verl's reward loop calls the reward once per sample, from many asyncio tasks (and, for a sync reward
function, from executor threads). Scoring one sample at a time would send the verifier batches of one and
start one sandbox round trip per sample. :class:`QuietFlushBatcher` collects the calls on a background thread
and runs the batch function when ``max_batch`` items are waiting or when no new item arrived for ``quiet_s``
(a few milliseconds; ``max_wait_s`` caps how long a steady trickle can hold a batch back), so callers see
per-sample calls and the verifier sees batches. While a batch is being scored, new calls queue up and form
the next batch: batches grow on their own while the judge is slow. (``verifier.server`` has a different
batcher, which flushes on a fixed time window.)

Thread-based rather than tied to one event loop: sync callers (executor threads) and async callers (any
loop) share the same batches. A failing batch fails every call in it with the same exception (callers see
it; nothing is turned into a number here).

Shutdown always ends: :meth:`QuietFlushBatcher.close` waits at most ``timeout`` seconds for queued and running
batches, then fails every call still outstanding with :class:`BatcherClosed` (callers turn that into an
undecided result). A forked child inherits the object but not its thread: there, every call fails at once
with :class:`BatcherClosed` instead of waiting forever (build a new batcher in the child).
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class BatcherClosed(RuntimeError):
    """The batcher was closed (or inherited across fork) before this call was scored."""


@dataclass(slots=True)
class BatcherStats:
    calls: int = 0
    batches: int = 0
    largest: int = 0


_LIVE: weakref.WeakSet[QuietFlushBatcher] = weakref.WeakSet()  # type: ignore[type-arg]


class QuietFlushBatcher(Generic[T, R]):
    """``submit(item)`` -> future of ``fn([... item ...])[k]``; batches of at most ``max_batch``."""

    def __init__(self, fn: Callable[[Sequence[T]], Sequence[R]], *, max_batch: int = 512,
                 quiet_s: float = 0.005, max_wait_s: float = 0.5, name: str = "verinstruct-batcher") -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if quiet_s < 0 or max_wait_s < quiet_s:
            raise ValueError(f"need 0 <= quiet_s <= max_wait_s, got quiet_s={quiet_s}, max_wait_s={max_wait_s}")
        self.fn = fn
        self.max_batch = max_batch
        self.quiet_s = quiet_s
        self.max_wait_s = max_wait_s
        self.stats = BatcherStats()
        self._items: list[tuple[T, cf.Future[R]]] = []
        self._running: list[cf.Future[R]] = []
        self._cond = threading.Condition()
        self._last = 0.0
        self._closed: str | None = None
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()
        _LIVE.add(self)

    def submit(self, item: T) -> cf.Future[R]:
        fut: cf.Future[R] = cf.Future()
        with self._cond:
            if self._closed is not None:
                raise BatcherClosed(f"QuietFlushBatcher.submit(): {self._closed}")
            self._items.append((item, fut))
            self._last = time.monotonic()
            self.stats.calls += 1
            self._cond.notify()
        return fut

    def __call__(self, item: T) -> R:
        """Blocking per-sample call (from a thread)."""
        return self.submit(item).result()

    async def acall(self, item: T) -> R:
        """Per-sample call from a coroutine: the loop keeps running while the batch is scored."""
        return await asyncio.wrap_future(self.submit(item))

    def close(self, timeout: float = 30.0) -> None:
        """Score what is queued, waiting at most ``timeout`` seconds; then fail what is left with BatcherClosed."""
        with self._cond:
            if self._closed is None:
                self._closed = "called after close()"
            self._cond.notify()
        if self._pid == os.getpid() and self._thread is not threading.current_thread():
            self._thread.join(max(0.0, timeout))
        with self._cond:
            left = [f for _, f in self._items] + self._running
            self._items, self._running = [], []
        for f in left:
            _fail(f, BatcherClosed(f"the batcher was closed before this call was scored (waited {timeout:g} s)"))

    def _after_fork_in_child(self) -> None:
        """The thread did not survive the fork: refuse calls at once (the parent's futures are not ours to keep)."""
        self._cond = threading.Condition()
        self._items, self._running = [], []
        self._closed = f"inherited across fork from process {self._pid}; build a new batcher in the child"

    def _take(self) -> list[tuple[T, cf.Future[R]]] | None:
        with self._cond:
            while True:
                while not self._items and self._closed is None:
                    self._cond.wait()
                if not self._items:
                    return None  # closed and drained
                first = time.monotonic()
                while len(self._items) < self.max_batch and self._closed is None:
                    now = time.monotonic()
                    quiet_left = self._last + self.quiet_s - now
                    total_left = first + self.max_wait_s - now
                    if quiet_left <= 0 or total_left <= 0:
                        break
                    self._cond.wait(min(quiet_left, total_left))
                batch, self._items = self._items[: self.max_batch], self._items[self.max_batch:]
                self._running = [f for _, f in batch]
                return batch

    def _loop(self) -> None:
        while (batch := self._take()) is not None:
            self.stats.batches += 1
            self.stats.largest = max(self.stats.largest, len(batch))
            live = [(x, f) for x, f in batch if f.set_running_or_notify_cancel()]
            if not live:
                continue
            try:
                results = list(self.fn([x for x, _ in live]))
                if len(results) != len(live):
                    raise RuntimeError(f"batch function returned {len(results)} results for {len(live)} items")
            except BaseException as e:  # every caller of the batch sees the failure
                for _, f in live:
                    _fail(f, e)
                continue
            finally:
                with self._cond:
                    self._running = []
            for (_, f), r in zip(live, results, strict=True):
                with contextlib.suppress(cf.InvalidStateError):  # close() gave up on it already
                    f.set_result(r)


def _fail(f: cf.Future[R], e: BaseException) -> None:
    try:
        if not f.done():
            if not f.running():
                f.set_running_or_notify_cancel()
            f.set_exception(e)
    except (cf.InvalidStateError, RuntimeError):
        pass


def _reset_after_fork() -> None:
    for b in list(_LIVE):
        b._after_fork_in_child()


os.register_at_fork(after_in_child=_reset_after_fork)
