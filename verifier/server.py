"""An OpenAI-compatible HTTP front for any verifier Backend, so several trainers can share one model.

Only the chat-completions subset that :class:`verifier.backends.openai_backend.OpenAIBackend` uses is served
(``POST /v1/chat/completions`` with n=1, no streaming), plus ``GET /health`` and ``GET /v1/models``.
Requests that arrive together are micro-batched into one ``backend.generate`` call: a single worker task
drains an asyncio queue (up to ``max_batch_size`` requests, waiting at most ``batch_wait_ms`` for more) and
runs the backend in a thread, one batch at a time, so the event loop stays free and the backend is never
called concurrently.

Defaults that differ from OpenAI's: ``temperature`` defaults to 0 (a verifier should be deterministic) and
``max_tokens`` to 512. The ``model`` field is required but any name is accepted; responses name the served
model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from verifier.backends.base import Backend, GenerationConfig, GenResult, Messages, TokenLogprob

log = logging.getLogger(__name__)

#: the most alternatives per token we return (OpenAI's own limit)
MAX_TOP_LOGPROBS = 20
#: the most stop sequences per request (OpenAI's own limit)
MAX_STOP = 4
_ROLES = {"system", "user", "assistant", "developer"}


class RequestError(ValueError):
    """A request the server rejects with 400; ``param`` names the offending field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated chat-completions request, reduced to what a Backend needs."""

    messages: Messages
    config: GenerationConfig
    #: return per-token logprobs (``logprobs: true``)
    logprobs: bool
    #: alternatives to return per token (``top_logprobs``)
    top_logprobs: int


def error_body(
    message: str, *, type_: str = "invalid_request_error", param: str | None = None
) -> dict[str, Any]:
    """The OpenAI error schema, which the official clients parse into their exception messages."""
    return {"error": {"message": message, "type": type_, "param": param, "code": None}}


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


def parse_chat_request(body: Any) -> ChatRequest:
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
    return ChatRequest(messages=messages, config=config, logprobs=logprobs, top_logprobs=top)


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


_Item = tuple[Messages, GenerationConfig, "asyncio.Future[GenResult]"]


class MicroBatcher:
    """Collects concurrent requests and runs them through ``backend.generate`` in batches, one batch at a time."""

    def __init__(self, backend: Backend, max_batch_size: int, batch_wait_ms: float) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if batch_wait_ms < 0:
            raise ValueError(f"batch_wait_ms must be >= 0, got {batch_wait_ms}")
        self.backend = backend
        self.max_batch_size = max_batch_size
        self.batch_wait = batch_wait_ms / 1000.0
        self.requests = 0
        self.batches = 0
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task[None] | None = None

    def _ensure_started(self) -> asyncio.Queue[_Item]:
        if self._task is None or self._task.done():
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._worker(self._queue))
        assert self._queue is not None
        return self._queue

    async def submit(self, messages: Messages, config: GenerationConfig) -> GenResult:
        queue = self._ensure_started()
        fut: asyncio.Future[GenResult] = asyncio.get_running_loop().create_future()
        await queue.put((messages, config, fut))
        return await fut

    async def _collect(self, queue: asyncio.Queue[_Item]) -> list[_Item]:
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

    async def _worker(self, queue: asyncio.Queue[_Item]) -> None:
        while True:
            items = await self._collect(queue)
            # one generate call per distinct config, in arrival order
            groups: dict[GenerationConfig, list[_Item]] = {}
            for item in items:
                groups.setdefault(item[1], []).append(item)
            for config, group in groups.items():
                live = [it for it in group if not it[2].done()]  # drop requests whose client went away
                if not live:
                    continue
                self.batches += 1
                self.requests += len(live)
                results = await self._run_backend([it[0] for it in live], config)
                for (_, _, fut), res in zip(live, results, strict=True):
                    if not fut.done():
                        fut.set_result(res)

    async def _run_backend(self, batch: list[Messages], config: GenerationConfig) -> list[GenResult]:
        try:
            results = await asyncio.to_thread(self.backend.generate, batch, config)
            if len(results) != len(batch):
                raise RuntimeError(f"backend returned {len(results)} results for {len(batch)} requests")
            return list(results)
        except Exception as e:  # a backend bug must not kill the worker or hang the waiting requests
            log.exception("backend.generate failed on a batch of %d", len(batch))
            return [GenResult(None, error=f"backend failed: {type(e).__name__}: {e}") for _ in batch]

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        queue, self._queue = self._queue, None
        while queue is not None and not queue.empty():
            _, _, fut = queue.get_nowait()
            if not fut.done():
                fut.set_result(GenResult(None, error="server shutting down"))


def create_app(
    backend: Backend, *, max_batch_size: int = 32, batch_wait_ms: float = 5, model_name: str | None = None
) -> FastAPI:
    """Build the app serving ``backend``; ``model_name`` (default ``backend.model``) is the id it reports."""
    served = model_name or backend.model
    batcher = MicroBatcher(backend, max_batch_size, batch_wait_ms)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await batcher.close()

    app = FastAPI(title="verinstruct verifier", lifespan=lifespan)
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
        }

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        card = {"id": served, "object": "model", "created": 0, "owned_by": "verinstruct"}
        return {"object": "list", "data": [card]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse(error_body("request body is not valid JSON"), status_code=400)
        try:
            req = parse_chat_request(body)
        except RequestError as e:
            return JSONResponse(error_body(e.message, param=e.param), status_code=400)
        result = await batcher.submit(req.messages, req.config)
        if result.error is not None or result.text is None:
            msg = result.error or "backend returned no text"
            return JSONResponse(error_body(msg, type_="server_error"), status_code=500)
        return JSONResponse(completion_json(result, req, served))

    return app


@contextlib.contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = 0, *, start_timeout: float = 10.0):  # type: ignore[no-untyped-def]
    """Serve ``app`` with uvicorn in a background thread; yield its root URL (``http://host:port``); always stop.

    For a trainer that hosts its own verifier in-process, and for tests over real HTTP. ``port=0`` picks a
    free port: the socket is bound here, before the server starts, so no other process can take it meanwhile.
    """
    import socket
    import threading

    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    try:
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the verifier server on {host}:{bound} did not start")
            time.sleep(0.01)
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
