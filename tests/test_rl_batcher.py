"""rl.batcher.MicroBatcher: concurrent per-sample calls (threads and coroutines) become batches, in order."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from rl.batcher import MicroBatcher


def test_concurrent_async_calls_are_coalesced_and_keep_their_results() -> None:
    seen: list[list[int]] = []
    b = MicroBatcher(lambda xs: (seen.append(list(xs)), [x * 10 for x in xs])[1], quiet_s=0.05, max_wait_s=5)

    async def main() -> list[int]:
        return await asyncio.gather(*(b.acall(i) for i in range(100)))

    assert asyncio.run(main()) == [i * 10 for i in range(100)]
    b.close()
    assert sorted(x for batch in seen for x in batch) == list(range(100))
    assert len(seen) < 100 and b.stats.largest == max(map(len, seen)) and b.stats.calls == 100


def test_thread_calls_and_max_batch() -> None:
    sizes: list[int] = []
    gate = threading.Event()

    def fn(xs):  # type: ignore[no-untyped-def]
        gate.wait(5)
        sizes.append(len(xs))
        return [-x for x in xs]

    b = MicroBatcher(fn, max_batch=8, quiet_s=0.05, max_wait_s=5)
    with ThreadPoolExecutor(32) as ex:
        futs = [ex.submit(b, i) for i in range(40)]
        gate.set()
        assert [f.result() for f in futs] == [-i for i in range(40)]
    b.close()
    assert max(sizes) <= 8 and sum(sizes) == 40


def test_a_failing_batch_fails_each_of_its_calls_and_the_batcher_goes_on() -> None:
    calls = {"n": 0}

    def fn(xs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("backend down")
        return xs

    b = MicroBatcher(fn, quiet_s=0.0)
    with pytest.raises(RuntimeError, match="backend down"):
        b(1)
    assert b(2) == 2
    b.close()
    with pytest.raises(RuntimeError, match="after close"):
        b.submit(3)


def test_wrong_result_count_is_an_error() -> None:
    b = MicroBatcher(lambda xs: [], quiet_s=0.0)
    with pytest.raises(RuntimeError, match="returned 0 results for 1"):
        b("x")
    b.close()
