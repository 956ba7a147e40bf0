"""Backend for any OpenAI-compatible chat-completions server: vLLM or SGLang ``serve``, ``verif serve``, hosted APIs.

Requests go out through the official ``openai`` client (``AsyncOpenAI``), at most ``concurrency`` at a time,
spread over one or more base URLs (least requests in flight, round-robin among ties). The client's own retries
are off (``max_retries=0``): this module retries itself so that a retry can move to another URL, so that each
retry is logged, and so that tests can drive it. Connection errors, timeouts, 408/409/429 and 5xx are retried
with exponential backoff and jitter (honouring ``Retry-After`` up to ``backoff_max``); other 4xx and garbage
responses (invalid JSON, no choices, no logprobs) are not retried. A URL that fails ``fail_threshold`` times in a
row is skipped for ``cooldown`` seconds. Whatever still fails becomes an ``error`` on that item only.

All network work runs on a private event loop in a daemon thread, so the HTTP connection pools live across
batches, and the sync ``generate``/``score`` work whether or not the caller is already inside an event loop
(verl's reward loop is); async callers use ``agenerate``/``ascore``.

``score`` has two methods (``score_method``):

* ``"sequence"`` (default): the exact log-probability of each whole candidate answer, the number the
  transformers backend computes. One request per (item, candidate) sends the conversation plus an assistant
  message holding the candidate, with vLLM's extra parameters ``add_generation_prompt: false``,
  ``continue_final_message: true`` and ``prompt_logprobs: 0``; the answer is the sum of the returned prompt
  log-probabilities of the trailing tokens that spell the candidate (:func:`continuation_logprob`). vLLM's
  server and ``verif serve`` support this; hosted APIs do not.
* ``"first_token"``: one request with ``top_logprobs`` (20, the API's limit); candidates are read off the
  first token's alternatives (:func:`first_token_scores`). For servers without prompt log-probabilities. It is
  an approximation (variants such as " Yes" are summed, later tokens ignored), and candidates that share
  their first token (VerIF's ``[[1]]``/``[[0]]``) cannot be told apart: those items are errors, never 0.5.

The API key is ``api_key``, else the environment's ``VERIF_API_KEY`` (what ``verif serve --api-key`` reads),
else ``OPENAI_API_KEY``; it is sent as ``Authorization: Bearer <key>``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import math
import os
import random
import threading
import time
import weakref
from collections import Counter
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from verifier.backends.base import (
    GenerationConfig,
    GenResult,
    Messages,
    ScoreResult,
    TokenLogprob,
    logsumexp,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: statuses worth another try (besides every 5xx)
RETRY_STATUS = frozenset({408, 409, 429})
#: the most alternatives per token the OpenAI API returns
SCORE_TOP_LOGPROBS = 20
#: lower bound on the probability used for a candidate missing from the top-k (log 1e-30)
_TINY = 1e-30
#: how ``score`` obtains candidate log-probabilities (see the module docs)
SCORE_METHODS = ("sequence", "first_token")
#: where the API key comes from when none is given, first found wins
API_KEY_ENV = ("VERIF_API_KEY", "OPENAI_API_KEY")
#: vLLM's chat-completions extensions that score a continued assistant message (see the module docs)
CONTINUATION_PARAMS = {"add_generation_prompt": False, "continue_final_message": True, "prompt_logprobs": 0}


class _Failure(Exception):
    """One failed attempt; ``retry`` says whether another attempt may help."""

    def __init__(self, message: str, *, retry: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry = retry
        self.retry_after = retry_after


@dataclass
class _Endpoint:
    url: str
    client: Any = None
    in_flight: int = 0
    #: consecutive failed attempts (reset by a success)
    failures: int = 0
    #: monotonic time before which the endpoint is skipped
    skip_until: float = 0.0


def normalize_base_url(url: str) -> str:
    """``http://host:8000`` -> ``http://host:8000/v1``; a URL that already has a path is kept as given."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"base URL must look like http://host:port[/v1], got {url!r}")
    return url if parts.path else url + "/v1"


# --------------------------------------------------------------------------- first-token scoring


#: how finely a candidate is compared with tokens, coarsest first: stripped and case-folded, stripped, exact
_LEVELS = (lambda s: s.strip().lower(), lambda s: s.strip(), lambda s: s)


def _match_candidate(
    top: list[tuple[str, float]], candidate: str, level: int
) -> tuple[float, frozenset[int]] | None:
    """The candidate's log-probability and the indices (into ``top``) of the tokens that gave it."""
    norm = _LEVELS[level]
    target = norm(candidate)
    entries = [(i, norm(tok), lp) for i, (tok, lp) in enumerate(top) if norm(tok)]
    exact = [(i, lp) for i, tok, lp in entries if tok == target]
    if not exact:
        # a multi-token candidate: its first token is a prefix of it; take the longest such token
        prefixes = [(i, tok, lp) for i, tok, lp in entries if target.startswith(tok)]
        if not prefixes:
            return None
        longest = max(len(tok) for _, tok, _ in prefixes)
        exact = [(i, lp) for i, tok, lp in prefixes if len(tok) == longest]
    return logsumexp([lp for _, lp in exact]), frozenset(i for i, _ in exact)


def first_token_scores(top: Sequence[tuple[str, float]], candidates: Sequence[str]) -> ScoreResult:
    """Score candidate answers from the top-k alternatives of the first generated token.

    Matching: a token matches a candidate when they are equal after stripping whitespace and folding case,
    and the probabilities of all matching variants are summed (" yes", "yes", "Yes" and "YES" all count for a
    lone candidate "yes": a judge that says "Yes" means yes). When candidates collide at that level (the
    judge's answer lists hold "Yes" and "yes" as separate surface forms, and sums them itself), those are
    compared case-sensitively, and if they still collide, exactly; so no probability is counted for two
    candidates. If no token equals the candidate, the longest token that is a prefix of it matches (its first
    token, for a multi-token candidate).

    A candidate absent from the top-k gets a floor: an upper bound on its true probability, the smaller of the
    lowest top-k probability and the mass left outside the top-k. If no candidate appears at all the item is an
    error, and so is an item where two candidates are read off the same token (``[[1]]`` and ``[[0]]`` both
    start with ``[[``): that token says nothing about which of them follows. ``method`` is always
    "first_token".
    """
    entries = [
        (tok, float(lp))
        for tok, lp in top
        if isinstance(tok, str)
        and isinstance(lp, (int, float))
        and not isinstance(lp, bool)
        and math.isfinite(lp)
    ]
    counts = [Counter(norm(c) for c in candidates) for norm in _LEVELS]
    scores: dict[str, float] = {}
    used: dict[int, str] = {}
    for c in candidates:
        level = next((i for i, norm in enumerate(_LEVELS) if counts[i][norm(c)] == 1), len(_LEVELS) - 1)
        match = _match_candidate(entries, c, level)
        if match is None:
            continue
        lp, tokens = match
        for i in tokens:
            other = used.setdefault(i, c)
            if other != c:
                return ScoreResult(
                    None,
                    error=(
                        f"candidates {other!r} and {c!r} share their first token {entries[i][0]!r}: "
                        "first-token scoring cannot tell them apart (use score_method='sequence' with a "
                        "server that returns prompt_logprobs, such as vLLM or verif serve)"
                    ),
                    method="first_token",
                )
        scores[c] = min(lp, 0.0)
    if not scores:
        shown = ", ".join(repr(tok) for tok, _ in list(top)[:10])
        return ScoreResult(
            None,
            error=f"none of the candidates {list(candidates)!r} is among the top-{len(top)} first tokens [{shown}]",
            method="first_token",
        )
    lowest = min(lp for _, lp in entries)
    outside = 1.0 - sum(math.exp(lp) for _, lp in entries)
    floor = min(lowest, math.log(max(outside, _TINY)))
    for c in candidates:
        scores.setdefault(c, floor)
    return ScoreResult(scores, method="first_token")


# --------------------------------------------------------------------------- response parsing


def _first_choice(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _Failure(f"response is not a JSON object: {str(data)[:200]!r}", retry=False)
    if isinstance(data.get("error"), dict):
        raise _Failure(f"server error: {data['error'].get('message', data['error'])}", retry=False)
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _Failure(f"response has no choices: {json.dumps(data)[:200]}", retry=False)
    return choices[0]


def _token_logprobs(choice: dict[str, Any]) -> list[dict[str, Any]]:
    lp = choice.get("logprobs")
    content = lp.get("content") if isinstance(lp, dict) else None
    if not isinstance(content, list) or not all(isinstance(t, dict) for t in content):
        raise _Failure(
            "response has no logprobs (does the server support logprobs/top_logprobs?)", retry=False
        )
    return content


def _pair(entry: Any) -> tuple[str, float]:
    if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
        raise _Failure(f"malformed logprob entry {entry!r}", retry=False)
    value = entry.get("logprob")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Failure(f"malformed logprob entry {entry!r}", retry=False)
    return entry["token"], float(value)


def parse_generation(data: Any, want_logprobs: bool) -> GenResult:
    """A chat-completion JSON body -> GenResult (raises _Failure on garbage)."""
    choice = _first_choice(data)
    message = choice.get("message")
    text = message.get("content") if isinstance(message, dict) else None
    if not isinstance(text, str):
        raise _Failure(f"response choice has no message content: {json.dumps(choice)[:200]}", retry=False)
    logprobs: tuple[TokenLogprob, ...] | None = None
    if want_logprobs:
        tokens = []
        for t in _token_logprobs(choice):
            token, value = _pair(t)
            alts = t.get("top_logprobs") or []
            if not isinstance(alts, list):
                raise _Failure(f"malformed top_logprobs {alts!r}", retry=False)
            tokens.append(TokenLogprob(token, value, tuple(_pair(a) for a in alts)))
        logprobs = tuple(tokens)
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    prompt_tokens = usage.get("prompt_tokens")
    completion_tokens = usage.get("completion_tokens")
    finish = choice.get("finish_reason")
    return GenResult(
        text,
        finish_reason=finish if isinstance(finish, str) else None,
        logprobs=logprobs,
        prompt_tokens=prompt_tokens if isinstance(prompt_tokens, int) else 0,
        completion_tokens=completion_tokens if isinstance(completion_tokens, int) else 0,
    )


def parse_first_token_top(data: Any) -> list[tuple[str, float]]:
    """The first generated token and its alternatives, from a chat-completion JSON body."""
    content = _token_logprobs(_first_choice(data))
    if not content:
        raise _Failure("response logprobs are empty (no token was generated)", retry=False)
    first = content[0]
    alts = first.get("top_logprobs")
    if not isinstance(alts, list):
        raise _Failure("response has no top_logprobs for the first token", retry=False)
    pairs = [_pair(a) for a in alts]
    chosen = _pair(first)
    if chosen[0] not in {tok for tok, _ in pairs}:
        pairs.append(chosen)
    return pairs


def continuation_logprob(data: Any, candidate: str) -> float:
    """log P(candidate) from a continued-assistant-message response: the sum of the prompt log-probabilities
    of its trailing tokens, which must spell the candidate exactly (raises _Failure otherwise)."""
    _first_choice(data)  # the same checks for error bodies and garbage as every other response
    entries = data.get("prompt_logprobs")
    if not isinstance(entries, list) or not entries:
        raise _Failure(
            "response has no prompt_logprobs: score_method='sequence' needs a server that scores a continued "
            "assistant message (vLLM, verif serve); use score_method='first_token' for other servers",
            retry=False,
        )
    text, total = "", 0.0
    for entry in reversed(entries):
        if not isinstance(entry, dict) or len(entry) != 1:
            raise _Failure(f"malformed prompt_logprobs entry {entry!r} (expected one token)", retry=False)
        (info,) = entry.values()
        token = info.get("decoded_token") if isinstance(info, dict) else None
        value = info.get("logprob") if isinstance(info, dict) else None
        if (
            not isinstance(token, str)
            or isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise _Failure(f"malformed prompt_logprobs entry {entry!r}", retry=False)
        text, total = token + text, total + float(value)
        if text == candidate:
            return min(total, 0.0)
        if not candidate.endswith(text):
            break
    raise _Failure(
        f"the server's last prompt tokens ({text!r}) do not spell the candidate {candidate!r}", retry=False
    )


# --------------------------------------------------------------------------- the backend

#: seconds :meth:`OpenAIBackend.close` waits for each step of its clean-up (cancelling, closing clients,
#: joining the loop thread); waiting callers are released before any of it
CLOSE_TIMEOUT = 5.0


class BackendClosedError(RuntimeError):
    """The backend was closed: the request was not (or will not be) answered."""


def _settle(fut: concurrent.futures.Future[Any], *, source: concurrent.futures.Future[Any] | None = None,
            exc: BaseException | None = None) -> None:
    """Give ``fut`` the outcome of ``source`` (or ``exc``) unless it already has one (close() got there first)."""
    if fut.done():
        return
    try:
        if source is None:
            fut.set_exception(exc or BackendClosedError("closed"))
        elif source.cancelled():
            fut.set_exception(BackendClosedError("the request was cancelled: the backend was closed"))
        elif source.exception() is not None:
            fut.set_exception(source.exception())
        else:
            fut.set_result(source.result())
    except concurrent.futures.InvalidStateError:  # settled by the other side in between
        pass


_LIVE: weakref.WeakSet[OpenAIBackend] = weakref.WeakSet()


def _reset_in_child() -> None:
    for backend in list(_LIVE):
        backend._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)


class OpenAIBackend:
    """Verifier backend speaking the OpenAI chat-completions API to one or more servers."""

    kind = "openai"

    def __init__(
        self,
        model: str,
        base_urls: Sequence[str] | str,
        api_key: str | None = None,
        concurrency: int = 32,
        timeout: float = 120.0,
        max_retries: int = 3,
        *,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        fail_threshold: int = 3,
        cooldown: float = 30.0,
        score_top_logprobs: int = SCORE_TOP_LOGPROBS,
        score_method: str = "sequence",
        seed: int | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ValueError("model must be a non-empty string (the name the server serves)")
        urls = [u for u in base_urls.split(",")] if isinstance(base_urls, str) else list(base_urls)
        urls = [u for u in urls if u.strip()]
        if not urls:
            raise ValueError("base_urls must name at least one server, e.g. http://127.0.0.1:8000/v1")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if not 1 <= score_top_logprobs <= 20:
            raise ValueError(f"score_top_logprobs must be between 1 and 20, got {score_top_logprobs}")
        if score_method not in SCORE_METHODS:
            raise ValueError(f"score_method must be one of {', '.join(SCORE_METHODS)}, got {score_method!r}")
        self.model = model
        self.base_urls = [normalize_base_url(u) for u in urls]
        self.api_key = api_key or next(filter(None, map(os.environ.get, API_KEY_ENV)), None) or "EMPTY"
        self.score_method = score_method
        self.concurrency = concurrency
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.fail_threshold = max(1, fail_threshold)
        self.cooldown = cooldown
        self.score_top_logprobs = score_top_logprobs
        self.seed = seed
        self.extra_body = dict(extra_body) if extra_body else None
        self._endpoints = [_Endpoint(u) for u in self.base_urls]
        self._rr = 0
        self._rng = random.Random()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sem: asyncio.Semaphore | None = None
        self._closed = False
        self._pending: set[concurrent.futures.Future[Any]] = set()
        _LIVE.add(self)

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_urls={self.base_urls!r})"

    # ---- public API

    def generate(self, batch: Sequence[Messages], config: GenerationConfig) -> list[GenResult]:
        if not batch:
            return []
        return self._submit(self._generate_all(list(batch), config)).result()

    def score(self, batch: Sequence[Messages], candidates: Sequence[str]) -> list[ScoreResult]:
        cands = self._check_candidates(candidates)
        if not batch:
            return []
        return self._submit(self._score_all(list(batch), cands)).result()

    async def agenerate(self, batch: Sequence[Messages], config: GenerationConfig) -> list[GenResult]:
        if not batch:
            return []
        return await asyncio.wrap_future(self._submit(self._generate_all(list(batch), config)))

    async def ascore(self, batch: Sequence[Messages], candidates: Sequence[str]) -> list[ScoreResult]:
        cands = self._check_candidates(candidates)
        if not batch:
            return []
        return await asyncio.wrap_future(self._submit(self._score_all(list(batch), cands)))

    def close(self) -> None:
        """Stop the backend, from any thread, in bounded time: every request still waiting is failed at once
        with :class:`BackendClosedError` (the verifier turns that into undecided verdicts), the loop's tasks
        are cancelled and its clients closed (best effort, at most :data:`CLOSE_TIMEOUT` seconds each).
        Later calls raise BackendClosedError. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
            pending, self._pending = self._pending, set()
        for fut in pending:  # one exception each: the waiting threads raise them at the same time
            _settle(fut, exc=BackendClosedError(f"{self!r} was closed before the request was answered"))
        if loop is None or thread is None:
            return
        if thread is not threading.current_thread():  # from the loop's own thread, waiting would deadlock
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=CLOSE_TIMEOUT)
            except Exception:  # closing is best effort
                log.debug("closing openai clients failed", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not threading.current_thread():
            thread.join(timeout=CLOSE_TIMEOUT)
            if not thread.is_alive():
                loop.close()

    def __enter__(self) -> OpenAIBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the private loop

    @staticmethod
    def _check_candidates(candidates: Sequence[str]) -> list[str]:
        cands = list(candidates)
        if not cands or not all(isinstance(c, str) and c.strip() for c in cands):
            raise ValueError(f"candidates must be a non-empty list of non-blank strings, got {cands!r}")
        return cands

    def _submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the private loop; the caller waits on a future of our own that :meth:`close` can
        settle (the loop's own future may never be, once the loop is stopped)."""
        out: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                coro.close()
                raise BackendClosedError(f"{self!r} is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="openai-backend-loop", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            loop = self._loop
            self._pending.add(out)
        out.add_done_callback(self._forget)
        inner = asyncio.run_coroutine_threadsafe(coro, loop)
        inner.add_done_callback(lambda f: _settle(out, source=f))
        return out

    def _forget(self, fut: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._pending.discard(fut)

    async def _shutdown(self) -> None:
        """On the loop: cancel every request task, then close the HTTP clients."""
        me = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not me]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT)
        await self._close_clients()

    def _after_fork_in_child(self) -> None:
        """A forked child has no loop thread (only the forking thread survives) and must not share the
        parent's sockets: start afresh on first use, as a new backend would."""
        self._lock = threading.Lock()
        self._loop, self._thread, self._sem = None, None, None
        self._pending = set()
        for ep in self._endpoints:
            ep.client, ep.in_flight = None, 0

    async def _close_clients(self) -> None:
        for ep in self._endpoints:
            if ep.client is not None:
                await ep.client.close()
                ep.client = None

    def _client(self, ep: _Endpoint) -> Any:
        if ep.client is None:
            from openai import AsyncOpenAI  # lazy: the package is only needed for this backend

            ep.client = AsyncOpenAI(
                api_key=self.api_key, base_url=ep.url, timeout=self.timeout, max_retries=0
            )
        return ep.client

    # ---- batches

    async def _generate_all(self, batch: list[Messages], config: GenerationConfig) -> list[GenResult]:
        want = config.logprobs or config.top_logprobs > 0

        async def one(messages: Messages) -> GenResult:
            body: dict[str, Any] = {
                "messages": messages,
                "max_tokens": config.max_tokens,
                "temperature": config.temperature,
            }
            if config.top_p < 1.0:
                body["top_p"] = config.top_p
            if config.stop:
                body["stop"] = list(config.stop)
            if want:
                body["logprobs"] = True
            if config.top_logprobs > 0:
                body["top_logprobs"] = config.top_logprobs
            try:
                return parse_generation(await self._request(body), want)
            except _Failure as e:
                return GenResult(None, error=str(e))

        return list(await asyncio.gather(*(one(m) for m in batch)))

    async def _score_all(self, batch: list[Messages], candidates: list[str]) -> list[ScoreResult]:
        if self.score_method == "sequence":
            return list(await asyncio.gather(*(self._score_sequence(m, candidates) for m in batch)))

        async def one(messages: Messages) -> ScoreResult:
            body: dict[str, Any] = {
                "messages": messages,
                "max_tokens": 1,
                "temperature": 0.0,
                "logprobs": True,
                "top_logprobs": self.score_top_logprobs,
            }
            try:
                top = parse_first_token_top(await self._request(body))
            except _Failure as e:
                return ScoreResult(None, error=str(e), method="first_token")
            return first_token_scores(top, candidates)

        return list(await asyncio.gather(*(one(m) for m in batch)))

    async def _score_sequence(self, messages: Messages, candidates: list[str]) -> ScoreResult:
        async def one(candidate: str) -> float:
            body: dict[str, Any] = {
                "messages": [*messages, {"role": "assistant", "content": candidate}],
                "max_tokens": 1,
                "temperature": 0.0,
                "extra_body": dict(CONTINUATION_PARAMS),
            }
            return continuation_logprob(await self._request(body), candidate)

        cands = list(dict.fromkeys(candidates))
        results = await asyncio.gather(*(one(c) for c in cands), return_exceptions=True)
        for c, r in zip(cands, results, strict=True):
            if isinstance(r, _Failure):
                hint = ""
                if str(r).startswith(("HTTP 400", "HTTP 422")):  # e.g. a hosted API refusing vLLM's parameters
                    hint = (
                        " (score_method='sequence' needs a server that scores a continued assistant message: "
                        "vLLM, verif serve; use score_method='first_token' for others)"
                    )
                return ScoreResult(None, error=f"scoring {c!r}: {r}{hint}")
            if isinstance(r, BaseException):
                raise r
        return ScoreResult(dict(zip(cands, results, strict=True)), method="sequence")  # type: ignore[arg-type]

    # ---- one request, with retries over endpoints

    def _pick(self, avoid: _Endpoint | None) -> _Endpoint:
        now = time.monotonic()
        pool = [ep for ep in self._endpoints if ep.skip_until <= now]
        if not pool:  # all cooling down: try the one that comes back first rather than fail outright
            pool = [min(self._endpoints, key=lambda ep: ep.skip_until)]
        if avoid is not None and len(pool) > 1:
            pool = [ep for ep in pool if ep is not avoid]
        self._rr += 1
        n = len(pool)
        best = min(range(n), key=lambda i: (pool[i].in_flight, (i - self._rr) % n))
        return pool[best]

    def _record(self, ep: _Endpoint, ok: bool) -> None:
        if ok:
            ep.failures, ep.skip_until = 0, 0.0
            return
        ep.failures += 1
        if ep.failures >= self.fail_threshold:
            if ep.skip_until <= time.monotonic():
                log.warning(
                    "openai backend: %s failed %d times in a row; skipping it for %gs",
                    ep.url,
                    ep.failures,
                    self.cooldown,
                )
            ep.skip_until = time.monotonic() + self.cooldown

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        cap = min(self.backoff_max, self.backoff_base * (2**attempt))
        delay = cap / 2 + self._rng.uniform(0, cap / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max))
        return delay

    async def _request(self, body: dict[str, Any]) -> Any:
        """Send one chat completion (retrying over endpoints); return the parsed JSON body or raise _Failure."""
        body = {"model": self.model, **body}
        if self.seed is not None:
            body["seed"] = self.seed
        extra = {**(self.extra_body or {}), **body.pop("extra_body", {})}
        if extra:
            body["extra_body"] = extra
        attempts = self.max_retries + 1
        last: _Endpoint | None = None
        for attempt in range(attempts):
            ep = self._pick(avoid=last)
            try:
                data = await self._attempt(ep, body)
            except _Failure as e:
                if not e.retry:
                    raise
                self._record(ep, ok=False)
                if attempt + 1 >= attempts:
                    raise _Failure(
                        f"{ep.url}: {e} (gave up after {attempts} attempts)", retry=False
                    ) from None
                delay = self._backoff(attempt, e.retry_after)
                log.warning(
                    "openai backend: %s: %s (attempt %d/%d); retrying in %.2fs",
                    ep.url,
                    e,
                    attempt + 1,
                    attempts,
                    delay,
                )
                last = ep
                await asyncio.sleep(delay)
                continue
            self._record(ep, ok=True)
            return data
        raise AssertionError("unreachable")

    async def _attempt(self, ep: _Endpoint, body: dict[str, Any]) -> Any:
        import openai

        if self._sem is None:
            self._sem = asyncio.Semaphore(self.concurrency)
        async with self._sem:
            ep.in_flight += 1
            try:
                raw = await self._client(ep).chat.completions.with_raw_response.create(**body)
                text = raw.text
            except openai.APITimeoutError:
                raise _Failure(f"timed out after {self.timeout:g}s", retry=True) from None
            except openai.APIConnectionError as e:
                cause = e.__cause__ or e
                raise _Failure(f"connection error: {type(cause).__name__}: {cause}", retry=True) from None
            except openai.APIStatusError as e:
                status = e.status_code
                msg = f"HTTP {status}: {_status_message(e)}"
                if status in RETRY_STATUS or status >= 500:
                    raise _Failure(msg, retry=True, retry_after=_retry_after(e)) from None
                raise _Failure(msg, retry=False) from None
            finally:
                ep.in_flight -= 1
        try:
            return json.loads(text)
        except ValueError:
            raise _Failure(f"response is not valid JSON: {text[:200]!r}", retry=False) from None


def _status_message(e: Any) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"][:300]
    return str(getattr(e, "message", e))[:300]


def _retry_after(e: Any) -> float | None:
    try:
        value = e.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None
