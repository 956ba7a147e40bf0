"""Coalesce concurrent per-sample calls into batches for one batch function.

verl's reward loop calls the reward once per sample, from many asyncio tasks (and, for a sync reward
function, from executor threads). Scoring one sample at a time would send the verifier batches of one and
start one sandbox round trip per sample. :class:`MicroBatcher` collects the calls on a background thread and
runs the batch function when ``max_batch`` items are waiting or when no new item arrived for ``quiet_s``
(a few milliseconds), so callers see per-sample calls and the verifier sees batches.

Thread-based rather than tied to one event loop: sync callers (executor threads) and async callers (any
loop) share the same batches. A failing batch fails every call in it with the same exception (callers see
it; nothing is turned into a number here).
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(slots=True)
class BatcherStats:
    calls: int = 0
    batches: int = 0
    largest: int = 0


class MicroBatcher(Generic[T, R]):
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
        self._cond = threading.Condition()
        self._last = 0.0
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> cf.Future[R]:
        fut: cf.Future[R] = cf.Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("MicroBatcher.submit() after close()")
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

    def close(self) -> None:
        """Score what is queued, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def _take(self) -> list[tuple[T, cf.Future[R]]] | None:
        with self._cond:
            while True:
                while not self._items and not self._closed:
                    self._cond.wait()
                if not self._items:
                    return None  # closed and drained
                first = time.monotonic()
                while len(self._items) < self.max_batch and not self._closed:
                    now = time.monotonic()
                    quiet_left = self._last + self.quiet_s - now
                    total_left = first + self.max_wait_s - now
                    if quiet_left <= 0 or total_left <= 0:
                        break
                    self._cond.wait(min(quiet_left, total_left))
                batch, self._items = self._items[: self.max_batch], self._items[self.max_batch:]
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
                    f.set_exception(e)
                continue
            for (_, f), r in zip(live, results, strict=True):
                f.set_result(r)
