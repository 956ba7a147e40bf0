"""An OpenAI-compatible HTTP front for any verifier Backend, so several trainers can share one model.

Only the chat-completions subset that :class:`verifier.backends.openai_backend.OpenAIBackend` uses is served
(``POST /v1/chat/completions`` with n=1, no streaming), plus ``GET /health`` and ``GET /v1/models``.
Requests that arrive together are micro-batched into one backend call by a :class:`WindowBatcher` (fixed
window): a single worker task drains an asyncio queue (up to ``max_batch_size`` requests, waiting at most
``batch_wait_ms`` after the first for more) and runs the backend in a thread, one batch at a time, so the
event loop stays free and the backend is never called concurrently.

Scoring (what the ``openai`` backend's default ``score_method="sequence"`` sends), as vLLM's server does it:
a request whose last message is an assistant message, with ``add_generation_prompt: false``,
``continue_final_message: true`` and ``prompt_logprobs: 0``, is answered with the log-probability of that
message's text after the rest of the conversation, computed by ``backend.score`` (exact sequence
log-probabilities on the transformers and vLLM backends). Unlike vLLM, nothing is generated (the message
content is empty) and ``prompt_logprobs`` holds ``null`` for the conversation followed by ONE entry that spans
the whole continued message: ``{"<n>": {"logprob": ..., "rank": null, "decoded_token": <the message text>}}``
(n = -1: the entry is not a single vocabulary token). Other uses of these three fields are refused (400).

Guards, all set by :func:`create_app` (and ``verif serve`` options), shared with the reward service through
:mod:`verifier.http_guard`:

* ``api_key``: every endpoint but ``/health`` needs ``Authorization: Bearer <key>`` (401 otherwise, an
  OpenAI-style body with code ``invalid_api_key``), checked by one app-level dependency; ``/health`` stays
  open for load balancers and probes; no docs or OpenAPI schema routes.
* ``header_timeout_s``, ``body_timeout_s``, ``max_connections``: slow-loris guards (see ``http_guard``); a
  body nested deeper than ``http_guard``'s limit is a 400.
* ``max_body_bytes``: a larger request body is refused with 413 before it is parsed.
* ``max_queue``: requests admitted but not yet answered; beyond it 503 with ``Retry-After`` (the ``openai``
  backend retries 503 and waits at least that long).
* ``max_tokens_limit``: a larger ``max_tokens`` is refused with 400 naming the limit (not clamped: a clamped
  answer would be cut short without the client knowing why).
* the ``model`` field must name the served model: otherwise 404 with code ``model_not_found``.
* a backend error that is the request's own fault (``bad_request``: a prompt longer than the context window,
  a prompt the chat template cannot build) is a 400, which clients do not retry; other backend failures 500.

Defaults that differ from OpenAI's: ``temperature`` defaults to 0 (a verifier should be deterministic) and
``max_tokens`` to 512.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from verifier.backends.base import Backend, GenerationConfig, GenResult, Messages, ScoreResult, TokenLogprob
from verifier.http_guard import (
    Guards,
    RequestError,
    error_body,
    error_response,
    guarded_app,
    read_json,
    serve_in_thread,
)
from verifier.serve_limits import (
    BODY_TIMEOUT_S,
    HEADER_TIMEOUT_S,
    MAX_BODY_BYTES,
    MAX_CONNECTIONS,
    MAX_QUEUE,
    MAX_TOKENS_LIMIT,
    RETRY_AFTER_S,
)

__all__ = ["BackendBatcher", "QueueFull", "RequestError", "WindowBatcher", "create_app", "error_body",
           "error_response", "parse_chat_request", "serve_in_thread"]

log = logging.getLogger(__name__)

#: the most alternatives per token we return (OpenAI's own limit)
MAX_TOP_LOGPROBS = 20
#: the most stop sequences per request (OpenAI's own limit)
MAX_STOP = 4
_ROLES = {"system", "user", "assistant", "developer"}


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated chat-completions request, reduced to what a Backend needs."""

    messages: Messages
    config: GenerationConfig
    #: return per-token logprobs (``logprobs: true``)
    logprobs: bool
    #: alternatives to return per token (``top_logprobs``)
    top_logprobs: int
    #: the model the request names
    model: str = ""
    #: a scoring request (see the module docs): the continued assistant text; ``messages`` is what precedes it
    continuation: str | None = None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _content_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for j, part in enumerate(content):
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise RequestError(
                    f"{where}[{j}] must be a text part {{'type': 'text', 'text': '...'}}; only text is supported",
                    f"{where}[{j}]",
                )
            parts.append(part["text"])
        return "".join(parts)
    raise RequestError(
        f"{where} must be a string or a list of text parts, got {type(content).__name__}", where
    )


def _flag(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise RequestError(f"'{name}' must be a boolean, got {value!r}", name)
    return value


def _continuation(body: dict[str, Any], messages: Messages) -> str | None:
    """The assistant text a scoring request continues, or None for a plain request (see the module docs)."""
    add_prompt = _flag(body, "add_generation_prompt", True)
    cont = _flag(body, "continue_final_message", False)
    plp = body.get("prompt_logprobs")
    if plp is None:
        if cont or not add_prompt:
            raise RequestError(
                "'continue_final_message' and 'add_generation_prompt: false' are only supported to score a "
                "final assistant message, with 'prompt_logprobs': 0",
                "continue_final_message" if cont else "add_generation_prompt",
            )
        return None
    if not _is_int(plp) or plp != 0:
        raise RequestError(
            f"'prompt_logprobs' must be 0 (the continued message's own log-probability), got {plp!r}",
            "prompt_logprobs",
        )
    if not cont or add_prompt:
        raise RequestError(
            "'prompt_logprobs' is only supported to score a final assistant message: set "
            "'continue_final_message': true and 'add_generation_prompt': false",
            "prompt_logprobs",
        )
    last = messages[-1]
    where = f"messages[{len(messages) - 1}]"
    if last["role"] != "assistant" or not last["content"]:
        raise RequestError(
            f"{where} must be a non-empty assistant message: it is the text to score", where
        )
    if len(messages) < 2:
        raise RequestError("a scored assistant message needs the conversation before it", "messages")
    return last["content"]


def parse_chat_request(body: Any, *, max_tokens_limit: int | None = None) -> ChatRequest:
    """Validate a chat-completions body; raise RequestError naming the first bad field."""
    if not isinstance(body, dict):
        raise RequestError("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("'model' is required and must be a non-empty string", "model")

    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise RequestError("'messages' is required and must be a non-empty list", "messages")
    messages: Messages = []
    for i, m in enumerate(raw_messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise RequestError(f"{where} must be an object with 'role' and 'content'", where)
        role = m.get("role")
        if role not in _ROLES:
            raise RequestError(f"{where}.role must be one of {sorted(_ROLES)}, got {role!r}", f"{where}.role")
        if "content" not in m:
            raise RequestError(f"{where}.content is required", f"{where}.content")
        text = _content_text(m["content"], f"{where}.content")
        messages.append({"role": "system" if role == "developer" else role, "content": text})

    n = body.get("n", 1)
    if n is not None and n != 1:
        raise RequestError(f"only n=1 is supported, got {n!r}", "n")
    if body.get("stream"):
        raise RequestError("streaming is not supported", "stream")

    max_tokens = body.get("max_tokens")
    param = "max_tokens"
    if max_tokens is None:
        max_tokens, param = body.get("max_completion_tokens"), "max_completion_tokens"
    if max_tokens is None:
        max_tokens = GenerationConfig().max_tokens
    if not _is_int(max_tokens) or max_tokens < 1:
        raise RequestError(f"'{param}' must be a positive integer, got {max_tokens!r}", param)
    if max_tokens_limit is not None and max_tokens > max_tokens_limit:
        raise RequestError(
            f"'{param}' is {max_tokens}, above this server's limit of {max_tokens_limit} "
            "(verif serve --max-tokens-limit)",
            param,
        )

    temperature = body.get("temperature")
    if temperature is None:
        temperature = 0.0
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not math.isfinite(temperature)
        or not 0 <= temperature <= 2
    ):
        raise RequestError(
            f"'temperature' must be a number between 0 and 2, got {temperature!r}", "temperature"
        )

    logprobs = body.get("logprobs")
    if logprobs is None:
        logprobs = False
    if not isinstance(logprobs, bool):
        raise RequestError(f"'logprobs' must be a boolean, got {logprobs!r}", "logprobs")
    top = body.get("top_logprobs")
    if top is None:
        top = 0
    if not _is_int(top) or not 0 <= top <= MAX_TOP_LOGPROBS:
        raise RequestError(
            f"'top_logprobs' must be an integer between 0 and {MAX_TOP_LOGPROBS}, got {top!r}", "top_logprobs"
        )
    if top and not logprobs:
        raise RequestError("'top_logprobs' needs 'logprobs' set to true", "top_logprobs")

    stop = body.get("stop")
    if stop is None:
        stops: tuple[str, ...] = ()
    elif isinstance(stop, str):
        stops = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= MAX_STOP:
        stops = tuple(stop)
    else:
        raise RequestError(
            f"'stop' must be a string or a list of at most {MAX_STOP} strings, got {stop!r}", "stop"
        )
    if any(not s for s in stops):
        raise RequestError("'stop' sequences must be non-empty", "stop")

    config = GenerationConfig(
        max_tokens=max_tokens,
        temperature=float(temperature),
        top_logprobs=top,
        stop=stops,
        logprobs=logprobs,
    )
    continuation = _continuation(body, messages)
    if continuation is not None:
        messages = messages[:-1]
    return ChatRequest(
        messages=messages,
        config=config,
        logprobs=logprobs,
        top_logprobs=top,
        model=model,
        continuation=continuation,
    )


def _token_entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": float(logprob), "bytes": list(token.encode("utf-8"))}


def _logprobs_json(tokens: tuple[TokenLogprob, ...], top: int) -> dict[str, Any]:
    content = []
    for t in tokens:
        entry = _token_entry(t.token, t.logprob)
        entry["top_logprobs"] = [_token_entry(tok, lp) for tok, lp in t.top[:top]]
        content.append(entry)
    return {"content": content}


def completion_json(result: GenResult, req: ChatRequest, model: str) -> dict[str, Any]:
    """A GenResult in the OpenAI ``chat.completion`` schema."""
    logprobs: dict[str, Any] | None = None
    if req.logprobs:
        logprobs = _logprobs_json(result.logprobs or (), req.top_logprobs)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.text},
                "finish_reason": result.finish_reason or "stop",
                "logprobs": logprobs,
            }
        ],
        "usage": {
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "total_tokens": result.prompt_tokens + result.completion_tokens,
        },
    }


def score_json(logprob: float, req: ChatRequest, model: str) -> dict[str, Any]:
    """A scored continuation as a chat.completion with vLLM's ``prompt_logprobs`` (see the module docs)."""
    assert req.continuation is not None
    body = completion_json(GenResult("", finish_reason="length"), req, model)
    entry = {"logprob": float(logprob), "rank": None, "decoded_token": req.continuation}
    body["prompt_logprobs"] = [None, {"-1": entry}]
    return body


@dataclass(slots=True)
class _Job:
    """One queued request: a generation (``config``) or the score of a continuation."""

    messages: Messages
    config: GenerationConfig | None
    continuation: str | None
    future: asyncio.Future[Any]

    def fail(self, message: str) -> None:
        if not self.future.done():
            result = GenResult(None, error=message) if self.continuation is None else ScoreResult(None, message)
            self.future.set_result(result)


class QueueFull(Exception):
    """The server already holds ``max_queue`` unanswered requests."""


class _Pending(Protocol):
    """What a :class:`WindowBatcher` queues: a future for the answer, and how to fail it."""

    future: asyncio.Future[Any]

    def fail(self, message: str) -> None: ...


J = TypeVar("J", bound=_Pending)


class WindowBatcher(Generic[J]):
    """Fixed-window micro-batching on the server's event loop: the first request of a batch opens a window of
    ``batch_wait_ms``; the batch runs when the window closes or ``max_batch_size`` requests are in, whichever
    comes first, one batch at a time (:meth:`_run`, which subclasses define).

    Unlike :mod:`rl.batcher` (a thread that flushes after a quiet gap, for in-process callers), this lives on
    one asyncio loop and bounds the requests it holds: beyond ``max_queue`` unanswered requests
    :meth:`_submit` raises :class:`QueueFull` (the server's 503 with ``Retry-After``).
    """

    def __init__(self, max_batch_size: int, batch_wait_ms: float, max_queue: int | None = None) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if batch_wait_ms < 0:
            raise ValueError(f"batch_wait_ms must be >= 0, got {batch_wait_ms}")
        if max_queue is not None and max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {max_queue}")
        self.max_batch_size = max_batch_size
        self.batch_wait = batch_wait_ms / 1000.0
        self.max_queue = max_queue
        self.requests = 0
        self.batches = 0
        #: requests admitted and not yet answered (queued or running)
        self.pending = 0
        self._queue: asyncio.Queue[J] | None = None
        self._task: asyncio.Task[None] | None = None

    def _ensure_started(self) -> asyncio.Queue[J]:
        if self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._worker(self._queue))
        assert self._queue is not None
        return self._queue

    async def _submit(self, job: J, weight: int = 1) -> Any:
        """Queue ``job`` and wait for its answer; ``weight`` is how many requests it counts for (a batch of
        samples counts as its size against ``max_queue``)."""
        if self.max_queue is not None and self.pending + weight > self.max_queue and self.pending:
            raise QueueFull(f"the server is busy: {self.pending} requests are waiting (max_queue)")
        self.pending += weight
        try:
            await self._ensure_started().put(job)
            return await job.future
        finally:
            self.pending -= weight

    async def _collect(self, queue: asyncio.Queue[J]) -> list[J]:
        items = [await queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.batch_wait
        while len(items) < self.max_batch_size:
            try:
                items.append(queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                items.append(await asyncio.wait_for(queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        return items

    async def _worker(self, queue: asyncio.Queue[J]) -> None:
        while True:
            items = await self._collect(queue)
            try:
                await self._run(items)
            except Exception as e:  # a bug in one batch must not kill the worker or hang its requests
                log.exception("a batch of %d failed", len(items))
                for job in items:
                    job.fail(f"server error: {type(e).__name__}: {e}")

    async def _run(self, items: list[J]) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        queue, self._queue = self._queue, None
        while queue is not None and not queue.empty():
            queue.get_nowait().fail("server shutting down")


class BackendBatcher(WindowBatcher[_Job]):
    """Chat requests through one verifier Backend: one ``generate`` call per distinct config, all scoring
    requests of a batch in one ``score`` call."""

    def __init__(
        self, backend: Backend, max_batch_size: int, batch_wait_ms: float, max_queue: int | None = None
    ) -> None:
        super().__init__(max_batch_size, batch_wait_ms, max_queue)
        self.backend = backend

    async def submit(self, messages: Messages, config: GenerationConfig) -> GenResult:
        """Generate for one conversation; raises QueueFull when the queue is full."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        result: GenResult = await self._submit(_Job(messages, config, None, fut))
        return result

    async def score(self, messages: Messages, continuation: str) -> ScoreResult:
        """log P(continuation | messages + generation prompt) as ``logprobs[continuation]``; may raise QueueFull."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        result: ScoreResult = await self._submit(_Job(messages, None, continuation, fut))
        return result

    async def _run(self, items: list[_Job]) -> None:
        # one generate call per distinct config, in arrival order; all scores in one call
        groups: dict[GenerationConfig, list[_Job]] = {}
        scores: list[_Job] = []
        for job in items:
            if job.config is None:
                scores.append(job)
            else:
                groups.setdefault(job.config, []).append(job)
        for config, group in groups.items():
            await self._run_generate(group, config)
        if scores:
            await self._run_score(scores)

    async def _call(self, method: Any, batch: list[Messages], arg: Any) -> list[Any] | str:
        """``method(batch, arg)`` in a thread; a failure of the whole call comes back as its message."""
        self.batches += 1
        try:
            results = list(await asyncio.to_thread(method, batch, arg))
            if len(results) != len(batch):
                raise RuntimeError(f"backend returned {len(results)} results for {len(batch)} requests")
            return results
        except Exception as e:  # a backend bug must not kill the worker or hang the waiting requests
            log.exception("the backend failed on a batch of %d", len(batch))
            return f"backend failed: {type(e).__name__}: {e}"

    async def _run_generate(self, group: list[_Job], config: GenerationConfig) -> None:
        live = [job for job in group if not job.future.done()]  # drop requests whose client went away
        if not live:
            return
        self.requests += len(live)
        results = await self._call(self.backend.generate, [job.messages for job in live], config)
        for i, job in enumerate(live):
            if isinstance(results, str):
                job.fail(results)
            elif not job.future.done():
                job.future.set_result(results[i])

    async def _run_score(self, jobs: list[_Job]) -> None:
        live = [job for job in jobs if not job.future.done()]
        if not live:
            return
        self.requests += len(live)
        # each distinct conversation once, scored against every continuation asked for in this batch
        prefixes: dict[str, int] = {}
        batch: list[Messages] = []
        for job in live:
            key = json.dumps(job.messages, sort_keys=True, ensure_ascii=False)
            if key not in prefixes:
                prefixes[key] = len(batch)
                batch.append(job.messages)
        candidates = list(dict.fromkeys(job.continuation for job in live))
        results = await self._call(self.backend.score, batch, candidates)
        for job in live:
            if isinstance(results, str):
                job.fail(results)
                continue
            key = json.dumps(job.messages, sort_keys=True, ensure_ascii=False)
            res: ScoreResult = results[prefixes[key]]
            assert job.continuation is not None
            lp = (res.logprobs or {}).get(job.continuation)
            if res.error is not None or lp is None:
                err = res.error or f"backend returned no log-probability for {job.continuation!r}"
                out = ScoreResult(None, err, method=res.method, bad_request=res.bad_request)
            else:
                out = ScoreResult({job.continuation: lp}, method=res.method)
            if not job.future.done():
                job.future.set_result(out)


def create_app(
    backend: Backend,
    *,
    max_batch_size: int = 32,
    batch_wait_ms: float = 5,
    model_name: str | None = None,
    api_key: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_queue: int = MAX_QUEUE,
    max_tokens_limit: int = MAX_TOKENS_LIMIT,
    retry_after_s: int = RETRY_AFTER_S,
    header_timeout_s: float = HEADER_TIMEOUT_S,
    body_timeout_s: float = BODY_TIMEOUT_S,
    max_connections: int = MAX_CONNECTIONS,
) -> FastAPI:
    """Build the app serving ``backend``; ``model_name`` (default ``backend.model``) is the id it serves.

    ``api_key`` None or empty leaves the server open; see the module docs and :mod:`verifier.http_guard`
    for the other guards (the connection guards apply when it is run with ``http_guard.uvicorn_config`` or
    :func:`serve_in_thread`).
    """
    if max_tokens_limit < 1:
        raise ValueError("max_body_bytes and max_tokens_limit must be >= 1, retry_after_s >= 0")
    try:
        guards = Guards(api_key=api_key or None, max_body_bytes=max_body_bytes, max_queue=max_queue,
                        retry_after_s=retry_after_s, header_timeout_s=header_timeout_s,
                        body_timeout_s=body_timeout_s, max_connections=max_connections)
    except ValueError as e:
        raise ValueError(f"max_body_bytes and max_tokens_limit must be >= 1, retry_after_s >= 0 ({e})") from None
    served = model_name or backend.model
    batcher = BackendBatcher(backend, max_batch_size, batch_wait_ms, max_queue)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await batcher.close()

    app = guarded_app("verinstruct verifier", guards, lifespan=lifespan)
    app.state.batcher = batcher
    app.state.backend = backend

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": served,
            "backend": backend.kind,
            "requests": batcher.requests,
            "batches": batcher.batches,
            "pending": batcher.pending,
        }

    @app.get("/v1/models")
    async def models() -> Any:
        card = {"id": served, "object": "model", "created": 0, "owned_by": "verinstruct"}
        return {"object": "list", "data": [card]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> JSONResponse:
        req = parse_chat_request(await read_json(request, guards), max_tokens_limit=max_tokens_limit)
        if req.model != served:
            raise RequestError(
                f"The model `{req.model}` does not exist: this server serves `{served}`",
                "model",
                status=404,
                code="model_not_found",
            )
        try:
            if req.continuation is not None:
                scored = await batcher.score(req.messages, req.continuation)
                if scored.error is None and scored.logprobs is not None:
                    return JSONResponse(score_json(scored.logprobs[req.continuation], req, served))
                error, bad = scored.error or "backend returned no log-probability", scored.bad_request
            else:
                result = await batcher.submit(req.messages, req.config)
                if result.error is None and result.text is not None:
                    return JSONResponse(completion_json(result, req, served))
                error, bad = result.error or "backend returned no text", result.bad_request
        except QueueFull as e:
            raise guards.busy(str(e)) from None
        if bad:
            return error_response(RequestError(error, "messages"))
        return JSONResponse(error_body(error, type_="server_error"), status_code=500)

    return app
