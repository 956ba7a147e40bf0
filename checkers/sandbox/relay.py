"""The LLM relay of one sandbox run, as a state machine of its own (no processes, no I/O but the answering
thread): which questions are known, which go out in the next batch, which calls are parked until their
answers are in, and each call's budgets.

A call's ``llm_*`` request is answered at once when the answer is known. Otherwise the call is told to
*defer*: it stops, its result is discarded, and it runs again (from the same seeded state, so it takes
the same path) once the batch holding its request has been answered. A call asking k questions in a row
runs k+1 times. It waits for its answer instead (its worker blocks; the wait counts toward no per-run
limit) after ``replays`` re-runs, and also when a re-run asks, at some position, a different question
than its previous run asked there: such code is not deterministic given its answers, and deferring it
again would not converge. Per call, ``llm_max_requests`` distinct questions and ``llm_max_bytes`` of
them over all re-runs, and ``call_budget_s`` of wall time from its first question (waiting for answers
and re-runs included; each run is bounded by ``wall_timeout_s`` on its own), end the call undecided with
the limit's name.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from checkers.sandbox import protocol
from checkers.sandbox.limits import LLMAnswer, LLMCallback, SandboxLimits


class Relay:
    """Answers LLM requests on one thread, a batch at a time (a plain callback: one request at a time, so
    it need not be thread-safe), while the parent's loop keeps serving the workers. The answers of each
    batch wake the loop through a pipe it selects on."""

    def __init__(self, llm: LLMCallback) -> None:
        self.llm = llm
        self.batches: queue.SimpleQueue[list[tuple[str, str, tuple]] | None] = queue.SimpleQueue()
        self.answers: deque[tuple[str, LLMAnswer]] = deque()
        self.rfd, self.wfd = os.pipe()
        os.set_blocking(self.rfd, False)
        os.set_blocking(self.wfd, False)
        self.thread = threading.Thread(target=self._loop, name="sandbox-llm", daemon=True)
        self.thread.start()

    def submit(self, batch: list[tuple[str, str, tuple]]) -> None:
        """``batch``: (key, function name, args) per request."""
        self.batches.put(batch)

    def _loop(self) -> None:
        while (batch := self.batches.get()) is not None:
            answers = answer_batch(self.llm, [(name, args) for _, name, args in batch])
            self.answers.extend(zip([key for key, _, _ in batch], answers, strict=True))
            with contextlib.suppress(BlockingIOError):  # a full pipe already wakes the loop
                os.write(self.wfd, b"!")

    def take(self) -> list[tuple[str, LLMAnswer]]:
        """Answers ready now (key, answer); drains the wake-up pipe first so none is missed."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self.rfd, 4096):
                pass
        out = []
        while self.answers:
            out.append(self.answers.popleft())
        return out

    def close(self) -> None:
        self.batches.put(None)
        self.thread.join(timeout=5.0)
        if not self.thread.is_alive():  # a callback that never returns keeps its pipe: no write to a reused fd
            os.close(self.rfd)
            os.close(self.wfd)


class Gather:
    """The LLM side of one run: the answers so far, requests waiting to go out as one batch, calls parked
    until the answers they asked for are in, and each call's budgets (see the module docs). Call indices
    come from the parent's own bookkeeping (the scheduler tags each request with the index of the call
    whose process sent it), so nothing a call sends is charged to another call."""

    def __init__(self, llm: LLMCallback | None, n_calls: int, replays: int, batch_size: int | None,
                 min_batch: int = 1, limits: SandboxLimits | None = None,
                 clock: Any = time.monotonic) -> None:
        lim = limits or SandboxLimits()
        self.llm = llm
        self.n = n_calls
        self.replays = replays
        self.batch_size = batch_size
        self.min_batch = min_batch
        self.max_requests = lim.llm_max_requests
        self.max_bytes = lim.llm_max_bytes
        self.budget_s = lim.call_budget_s
        self.clock = clock
        self.relay: Relay | None = None
        self.answers: dict[str, LLMAnswer] = {}
        self.names: dict[str, str] = {}
        self.pending: dict[str, tuple[str, tuple]] = {}  # not sent yet
        self.inflight: set[str] = set()  # sent to the relay, not answered yet
        self.blocked: dict[str, list[Any]] = {}  # workers waiting for that answer
        self.asked: dict[int, list[str]] = {}  # requests of each call in its current run
        self.previous: dict[int, list[str]] = {}  # requests of each call in its previous run
        self.parked: dict[int, set[str]] = {}  # deferred calls -> answers they still wait for
        self.reruns: dict[int, int] = {}
        self.first_start: dict[int, float] = {}
        self.distinct: dict[int, set[str]] = {}
        self.sizes: dict[int, int] = {}
        self.over: dict[int, str] = {}  # calls ended by a budget: the error their verdict must carry

    def _valid(self, idx: Any) -> bool:
        return type(idx) is int and 0 <= idx < self.n

    def started(self, idx: int) -> None:
        self.asked[idx] = []

    def request(self, w: Any, name: Any, args: Any, idx: Any) -> dict[str, Any] | None:
        """The reply frame for a worker's request, or None when the worker must wait for the answer."""
        if self.llm is None:
            return {"type": "llm_reply", "ok": False, "needs": True}
        if name not in protocol.LLM_FUNCTIONS or not isinstance(args, list):
            return {"type": "llm_reply", "ok": False, "e": "malformed LLM request"}
        try:
            key = json.dumps([name, args], ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            return {"type": "llm_reply", "ok": False, "e": "malformed LLM request"}
        if not self._valid(idx):
            return {"type": "llm_reply", "ok": False, "e": "request of no known call"}
        self.first_start.setdefault(idx, self.clock())  # its budget runs from its first question
        if self.expired(idx) is not None:
            return {"type": "llm_reply", "ok": False, "e": self.over[idx]}
        seen = self.distinct.setdefault(idx, set())
        if key not in seen:
            seen.add(key)
            self.sizes[idx] = self.sizes.get(idx, 0) + len(key.encode("utf-8", "surrogatepass"))
            over = None
            if len(seen) > self.max_requests:
                over = f"more than {self.max_requests} distinct llm_* requests (SandboxLimits.llm_max_requests)"
            elif self.sizes[idx] > self.max_bytes:
                over = f"llm_* requests of more than {self.max_bytes} bytes (SandboxLimits.llm_max_bytes)"
            if over is not None:
                self.over[idx] = f"{protocol.ERR_LLM_BUDGET}: {over}"
                return {"type": "llm_reply", "ok": False, "e": self.over[idx]}
        mine = self.asked.setdefault(idx, [])
        position = len(mine)
        mine.append(key)
        known = self.answers.get(key)
        if known is not None:
            return _reply(known)
        if key not in self.inflight:
            self.pending.setdefault(key, (name, tuple(args)))
            self.names[key] = name
        before = self.previous.get(idx)
        diverged = before is not None and position < len(before) and before[position] != key
        if self.reruns.get(idx, 0) < self.replays and not diverged:
            return {"type": "llm_reply", "ok": False, "defer": True}
        self.blocked.setdefault(key, []).append(w)
        return None

    def deferred(self, idx: int) -> bool:
        """The call stopped to wait for answers; False when it has been re-run too often already."""
        self.reruns[idx] = self.reruns.get(idx, 0) + 1
        if self.reruns[idx] > self.replays:
            return False
        asked = self.asked.pop(idx, [])
        self.previous[idx] = asked
        self.parked[idx] = {k for k in asked if k not in self.answers}
        return True

    def expired(self, idx: int) -> str | None:
        """The error of a call past its budget (or already ended by one), else None."""
        if idx in self.over:
            return self.over[idx]
        t0 = self.first_start.get(idx)
        if t0 is not None and self.clock() - t0 > self.budget_s:
            self.over[idx] = (f"{protocol.ERR_TIMEOUT}: no verdict within {self.budget_s:g}s of the call's first "
                              "llm_* request, waits and re-runs included (SandboxLimits.call_budget_s)")
            return self.over[idx]
        return None

    def expire_parked(self) -> list[tuple[int, str]]:
        """Parked calls past their budget, unparked, with their error."""
        out = []
        for idx in list(self.parked):
            err = self.expired(idx)
            if err is not None:
                del self.parked[idx]
                out.append((idx, err))
        return out

    def next_deadline(self, idxs: Any) -> float:
        """The earliest budget end (clock time) among the calls ``idxs``."""
        return min((self.first_start[i] + self.budget_s for i in idxs if i in self.first_start), default=float("inf"))

    def prob(self, idx: int, passed: bool | None) -> float | None:
        """P(yes) of the call's one LLM answer when the call's result is exactly that answer."""
        keys = self.asked.get(idx) or []
        if passed is None or len(keys) != 1 or self.names.get(keys[0]) not in ("llm_judge", "llm_score"):
            return None
        a = self.answers.get(keys[0])
        if a is None or a.error is not None or a.prob is None or type(a.value) not in (bool, int):
            return None
        return a.prob if bool(a.value) == passed else None

    def flush(self, stalled: bool) -> bool:
        """Send waiting requests as one batch when none is being answered and either ``min_batch`` have
        gathered or nothing else can progress (``stalled``: no worker is running code, or one waits for an
        answer); True when the relay was created."""
        if not self.pending or self.inflight or self.llm is None:
            return False
        if len(self.pending) < self.min_batch and not stalled and not self.blocked:
            return False
        created = self.relay is None
        if self.relay is None:
            self.relay = Relay(self.llm)
        keys = list(self.pending)[: self.batch_size or None]
        batch = [(k, *self.pending.pop(k)) for k in keys]
        self.inflight.update(keys)
        self.relay.submit(batch)  # type: ignore[arg-type]
        return created

    def absorb(self, answers: list[tuple[str, LLMAnswer]] | None = None) -> list[tuple[Any, dict[str, Any]]]:
        """Take the relay's new answers (or ``answers``); the replies owed to workers waiting for them."""
        if answers is None:
            assert self.relay is not None
            answers = self.relay.take()
        out = []
        for key, ans in answers:
            self.answers[key] = ans
            self.inflight.discard(key)
            for w in self.blocked.pop(key, []):
                out.append((w, _reply(ans)))
            for keys in self.parked.values():
                keys.discard(key)
        return out

    def ready(self, force: bool = False) -> list[int]:
        """Parked calls whose answers are all in (all of them with ``force``), unparked."""
        out = [idx for idx, keys in self.parked.items() if force or not keys]
        for idx in out:
            del self.parked[idx]
        return out

    def idle(self) -> bool:
        return not self.pending and not self.inflight

    def forget(self, w: Any) -> None:
        for ws in self.blocked.values():
            while w in ws:
                ws.remove(w)

    def close(self) -> None:
        if self.relay is not None:
            self.relay.close()


def _reply(ans: LLMAnswer) -> dict[str, Any]:
    if ans.error is not None:
        return {"type": "llm_reply", "ok": False, "e": ans.error}
    return {"type": "llm_reply", "ok": True, "v": ans.value}


def answer_batch(llm: LLMCallback, requests: Sequence[tuple[str, tuple]]) -> list[LLMAnswer]:
    """Answers for (function name, args) requests: through ``llm.answer_batch`` when it has one (see
    :class:`BatchLLM`), else one call at a time. Never raises: a failure is the answer's error."""
    batch_fn = getattr(llm, "answer_batch", None)
    if callable(batch_fn):
        try:
            answers = list(batch_fn(list(requests)))
            if len(answers) != len(requests):
                raise RuntimeError(f"answer_batch returned {len(answers)} answers for {len(requests)} requests")
        except Exception as e:  # noqa: BLE001 - each request's verdict carries it
            return [LLMAnswer.from_exception(e)] * len(requests)
        return [_checked(a) for a in answers]
    out = []
    for name, args in requests:
        try:
            out.append(_checked(LLMAnswer(llm(str(name), tuple(args)))))
        except Exception as e:  # noqa: BLE001
            out.append(LLMAnswer.from_exception(e))
    return out


def _checked(a: Any) -> LLMAnswer:
    if not isinstance(a, LLMAnswer):
        return LLMAnswer(error=f"TypeError: answer_batch gave {type(a).__name__}, expected LLMAnswer")
    if a.error is None:
        try:
            json.dumps(a.value)
        except (TypeError, ValueError) as e:
            return LLMAnswer.from_exception(e)
    return a
