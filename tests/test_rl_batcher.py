"""rl.batcher.QuietFlushBatcher (flushes when calls go quiet): concurrent per-sample calls (threads and coroutines) become batches, in order."""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from rl.batcher import BatcherClosed, QuietFlushBatcher


def test_concurrent_async_calls_are_coalesced_and_keep_their_results() -> None:
    seen: list[list[int]] = []
    b = QuietFlushBatcher(lambda xs: (seen.append(list(xs)), [x * 10 for x in xs])[1], quiet_s=0.05, max_wait_s=5)

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

    b = QuietFlushBatcher(fn, max_batch=8, quiet_s=0.05, max_wait_s=5)
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

    b = QuietFlushBatcher(fn, quiet_s=0.0)
    with pytest.raises(RuntimeError, match="backend down"):
        b(1)
    assert b(2) == 2
    b.close()
    with pytest.raises(RuntimeError, match="after close"):
        b.submit(3)


def test_wrong_result_count_is_an_error() -> None:
    b = QuietFlushBatcher(lambda xs: [], quiet_s=0.0)
    with pytest.raises(RuntimeError, match="returned 0 results for 1"):
        b("x")
    b.close()


def test_close_ends_while_a_batch_hangs_and_fails_what_is_outstanding() -> None:
    """A batch function that never returns (a judge that accepts and never answers): close() still returns,
    and the caller waiting on the hung batch and the one queued behind it both get BatcherClosed."""
    release = threading.Event()
    started = threading.Event()

    def hang(xs):  # type: ignore[no-untyped-def]
        started.set()
        release.wait()  # set only at the end of the test
        return xs

    b = QuietFlushBatcher(hang, quiet_s=0.0)
    running = b.submit(1)
    assert started.wait(30)
    queued = b.submit(2)
    b.close(timeout=0.2)
    for f in (running, queued):
        with pytest.raises(BatcherClosed, match="closed before"):
            f.result(timeout=30)
    with pytest.raises(BatcherClosed, match="after close"):
        b.submit(3)
    release.set()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_forked_child_fails_at_once_instead_of_hanging() -> None:
    """The child inherits the batcher object but not its thread: submit() raises at once (it used to hang)."""
    b = QuietFlushBatcher(lambda xs: list(xs), quiet_s=0.0)
    assert b(1) == 1
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report what submit() did, then leave without running the parent's atexit handlers
        try:
            b.submit(2).result(timeout=20)
            msg = b"scored"
        except BatcherClosed as e:
            msg = b"closed: " + str(e).encode()
        except BaseException as e:  # noqa: BLE001
            msg = b"other: " + repr(e).encode()
        os.write(w, msg)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        out = fh.read().decode()
    os.waitpid(pid, 0)
    assert out.startswith("closed: ") and "fork" in out, out
    assert b(3) == 3  # the parent's batcher is untouched
    b.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_forked_child_gets_fresh_shared_rewards() -> None:
    """rl.reward's module-level rewards are forgotten in a child: the inherited one refuses at once, a new one
    (shared_reward in the child) scores."""
    from rl.reward import Sample, close_shared, shared_reward
    from verinstruct.convert import from_ifeval

    inst = from_ifeval({"key": 1, "prompt": "Do not use any commas.", "instruction_id_list": ["punctuation:no_comma"],
                        "kwargs": [{}]})
    parent = shared_reward(verifier="none", log_batches=False)
    assert parent(Sample(inst, "no commas")).score == 1.0
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        out = []
        try:
            parent(Sample(inst, "x"))
            out.append("inherited scored")
        except BatcherClosed:
            out.append("inherited refused")
        except BaseException as e:  # noqa: BLE001
            out.append(f"inherited {e!r}")
        try:
            child = shared_reward(verifier="none", log_batches=False)
            out.append(f"fresh {child is not parent} {child(Sample(inst, 'a, b')).score}")
        except BaseException as e:  # noqa: BLE001
            out.append(f"fresh {e!r}")
        os.write(w, "; ".join(out).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        got = fh.read().decode()
    os.waitpid(pid, 0)
    close_shared()
    assert got == "inherited refused; fresh True 0.0", got
