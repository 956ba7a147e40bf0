"""A fake yes/no judge served over loopback HTTP (OpenAI-compatible), for the rl tests.

Not a test module (no ``test_`` prefix); the tests ``import rl_fakes`` (pytest's ``pythonpath`` holds tests/).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence

from verifier.backends.base import GenerationConfig, GenResult, Messages, ScoreResult, TokenLogprob
from verifier.server import create_app, serve_in_thread

BAD = "BAD"


class FakeJudge:
    """Answers "Yes" (P(yes) ~ 0.95) unless the last message holds BAD ("No", P(yes) ~ 0.08); "[[1]]"/"[[0]]"
    when the prompt asks for that form (the item-level templates).

    ``latency`` seconds per backend call (all requests of a call wait together: unlimited concurrency).
    """

    kind = "fake"

    def __init__(self, model: str = "fake-judge", latency: float = 0.0) -> None:
        self.model = model
        self.latency = latency
        self.requests = 0
        self.calls = 0
        self.largest = 0
        #: the last message of every conversation judged (generate or score), in arrival order
        self.seen: list[str] = []
        self.lock = threading.Lock()

    def _arrive(self, batch: Sequence[Messages]) -> None:
        """Count one backend call of ``batch`` and wait out the latency."""
        with self.lock:
            self.requests += len(batch)
            self.calls += 1
            self.largest = max(self.largest, len(batch))
            self.seen += [m[-1]["content"] for m in batch]
        if self.latency:
            time.sleep(self.latency)

    def generate(self, batch: Sequence[Messages], config: GenerationConfig) -> list[GenResult]:
        self._arrive(batch)
        out = []
        for messages in batch:
            last = messages[-1]["content"]
            yes = BAD not in last
            y, n = ("[[1]]", "[[0]]") if "[[1]]" in last else ("Yes", "No")
            text = y if yes else n
            logprobs = None
            if config.top_logprobs:
                top = ((y, -0.05), (n, -3.0)) if yes else ((n, -0.08), (y, -2.5))
                logprobs = (TokenLogprob(text, top[0][1], top[: config.top_logprobs]),)
            out.append(GenResult(text, finish_reason="stop", logprobs=logprobs, prompt_tokens=7, completion_tokens=1))
        return out

    def score(self, batch: Sequence[Messages], candidates: Sequence[str]) -> list[ScoreResult]:
        """Whole-answer scoring (what score mode asks of `verif serve`): the same decisions as generate."""
        self._arrive(batch)
        out = []
        for messages in batch:
            yes = BAD not in messages[-1]["content"]
            lp = {}
            for c in candidates:
                says_yes = c.strip().lower() in ("yes", "[[1]]", "是")
                lp[c] = (-0.05 if says_yes else -3.0) if yes else (-2.5 if says_yes else -0.08)
            out.append(ScoreResult(lp))
        return out

    def close(self) -> None:
        pass


@contextlib.contextmanager
def judge_server(latency: float = 0.0, *, max_batch_size: int = 100_000,
                 batch_wait_ms: float = 1.0) -> Iterator[tuple[str, FakeJudge]]:
    """(base URL ending in /v1, the judge) for a loopback server; stopped on exit."""
    judge = FakeJudge(latency=latency)
    with serve_in_thread(create_app(judge, max_batch_size=max_batch_size, batch_wait_ms=batch_wait_ms)) as root:
        yield root + "/v1", judge
