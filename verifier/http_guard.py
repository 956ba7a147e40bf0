"""The guards every verinstruct HTTP service shares (``verif serve`` and ``verif rl serve``), in one place.

A server built with :func:`guarded_app` and run with :func:`uvicorn_config` / :func:`serve_in_thread` is
closed by default:

* **auth through one dependency**: the key check is an app-level FastAPI dependency, so every route gets
  it, including routes added later; only the paths in ``open_paths`` (``/health``) skip it. The docs,
  redoc and OpenAPI-schema routes are off (they would describe the API to anyone).
* **bodies** are read by :func:`read_json`: at most ``max_body_bytes`` (413), within ``body_timeout_s``
  (408: a client that trickles its body cannot hold a worker), and at most ``max_json_depth`` levels of
  nesting (400: a ``[[[[...`` body would otherwise raise ``RecursionError`` deep in the parser or later
  in code that walks it, a 500).
* **connections**: a connection must finish its request headers within ``header_timeout_s`` of opening
  (or of its previous response), or it is closed (slow-loris: uvicorn itself has no header timeout); at
  most ``max_connections`` connections are served at once (uvicorn's ``limit_concurrency``: 503 beyond).

Errors use the OpenAI error schema (``{"error": {"message", "type", "param", "code"}}``), which the
official clients parse.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from verifier.serve_limits import (
    BODY_TIMEOUT_S,
    HEADER_TIMEOUT_S,
    MAX_BODY_BYTES,
    MAX_CONNECTIONS,
    MAX_JSON_DEPTH,
    MAX_QUEUE,
    RETRY_AFTER_S,
)

#: the paths that answer without a key (load balancers and container probes need them)
OPEN_PATHS = frozenset({"/health"})
#: the query parameter that carries the key for clients that cannot send headers (OpenRLHF's remote RM)
QUERY_KEY = "api_key"


class RequestError(ValueError):
    """A request the server rejects (400 unless ``status`` says otherwise); ``param`` names the field."""

    def __init__(
        self, message: str, param: str | None = None, *, status: int = 400, code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status
        self.code = code
        self.headers = headers


def error_body(
    message: str, *, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The OpenAI error schema, which the official clients parse into their exception messages."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(e: RequestError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(e.message, param=e.param, code=e.code), status_code=e.status,
                        headers=headers or e.headers)


@dataclass(frozen=True, slots=True)
class Guards:
    """The limits of one server (see the module docs); ``api_key`` None or empty leaves it open."""

    api_key: str | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    max_queue: int = MAX_QUEUE
    retry_after_s: int = RETRY_AFTER_S
    header_timeout_s: float = HEADER_TIMEOUT_S
    body_timeout_s: float = BODY_TIMEOUT_S
    max_connections: int = MAX_CONNECTIONS
    max_json_depth: int = MAX_JSON_DEPTH
    #: the option prefix named in error messages (``verif serve`` / ``verif rl serve``)
    command: str = "verif serve"

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1 or self.max_queue < 1 or self.max_connections < 1 or self.max_json_depth < 1:
            raise ValueError("max_body_bytes, max_queue, max_connections and max_json_depth must be >= 1")
        if self.retry_after_s < 0 or self.header_timeout_s <= 0 or self.body_timeout_s <= 0:
            raise ValueError("retry_after_s must be >= 0, header_timeout_s and body_timeout_s > 0")

    def busy(self, message: str) -> RequestError:
        """503 with ``Retry-After``: the clients of this project wait that long and retry."""
        return RequestError(message, status=503, code="server_busy",
                            headers={"Retry-After": str(self.retry_after_s)})


def guarded_app(title: str, guards: Guards, *, lifespan: Any = None,
                query_key_paths: Sequence[str] = ()) -> FastAPI:
    """A FastAPI app with the key check on every route but :data:`OPEN_PATHS`, no docs/schema routes and
    :class:`RequestError` answered in the OpenAI error schema.

    ``query_key_paths``: routes that also accept the key as ``?api_key=`` (for clients that cannot set a
    header); the access log redacts it.
    """
    expected = f"Bearer {guards.api_key}".encode() if guards.api_key else None
    query_paths = frozenset(query_key_paths)

    def require_key(request: Request) -> None:
        if expected is None or request.url.path in OPEN_PATHS:
            return
        given = request.headers.get("authorization", "").encode()
        if hmac.compare_digest(given, expected):
            return
        if request.url.path in query_paths:
            q = request.query_params.get(QUERY_KEY)
            if q is not None and hmac.compare_digest(f"Bearer {q}".encode(), expected):
                return
        raise RequestError(
            f"missing or wrong API key: send 'Authorization: Bearer <key>' ({guards.command} --api-key)",
            status=401, code="invalid_api_key",
        )

    app = FastAPI(title=title, lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(require_key)])

    @app.exception_handler(RequestError)
    async def _request_error(_: Request, e: RequestError) -> JSONResponse:
        return error_response(e)

    app.state.guards = guards
    return app


def _depth_ok(value: Any, limit: int) -> bool:
    """Whether ``value`` nests at most ``limit`` containers deep (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            children: Any = v.values()
        elif isinstance(v, list):
            children = v
        else:
            continue
        if d > limit:
            return False
        stack.extend((c, d + 1) for c in children if isinstance(c, (dict, list)))
    return True


async def read_json(request: Request, guards: Guards) -> Any:
    """The request's JSON body under the size, time and nesting limits (see the module docs)."""
    too_big = RequestError(
        f"request body is larger than this server's limit of {guards.max_body_bytes} bytes "
        f"({guards.command} --max-body-bytes)", status=413, code="request_too_large",
    )
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > guards.max_body_bytes:
        raise too_big

    async def collect() -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > guards.max_body_bytes:
                raise too_big
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        raw = await asyncio.wait_for(collect(), guards.body_timeout_s)
    except asyncio.TimeoutError:
        raise RequestError(f"request body not received within {guards.body_timeout_s:g} s",
                           status=408, code="request_timeout") from None
    too_deep = RequestError(f"request body nests deeper than {guards.max_json_depth} levels", code="too_deep")
    try:
        body = json.loads(raw)
    except RecursionError:
        raise too_deep from None
    except ValueError:
        raise RequestError("request body is not valid JSON") from None
    if not _depth_ok(body, guards.max_json_depth):
        raise too_deep
    return body


def _header_timeout_protocol(timeout_s: float) -> type:
    """uvicorn's h11 protocol, closing a connection that has not sent complete request headers within
    ``timeout_s`` of opening or of its last response (uvicorn only times out idle keep-alive connections)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(timeout_s, self._header_timeout)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_timeout(self) -> None:
            self._header_timer = None
            if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and not self.cycle.response_complete:
                self._disarm()  # a request is in (its body has its own timeout)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

    return HeaderTimeoutH11Protocol


class _RedactKey(logging.Filter):
    """Hide ``?api_key=...`` in uvicorn's access log."""

    _re = re.compile(rf"({QUERY_KEY}=)[^&\s\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._re.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        return True


def uvicorn_config(app: FastAPI, guards: Guards, *, host: str = "127.0.0.1", port: int = 0,
                   log_level: str = "info", **extra: Any) -> Any:
    """A ``uvicorn.Config`` that enforces the connection guards (header timeout, connection cap)."""
    import uvicorn

    logging.getLogger("uvicorn.access").addFilter(_RedactKey())
    return uvicorn.Config(app, host=host, port=port, log_level=log_level,
                          http=_header_timeout_protocol(guards.header_timeout_s),
                          limit_concurrency=guards.max_connections, **extra)


def _guards_of(app: FastAPI) -> Guards:
    guards = getattr(app.state, "guards", None)
    return guards if isinstance(guards, Guards) else Guards()


@contextlib.contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = 0, *,
                    start_timeout: float = 10.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread; yield its root URL (``http://host:port``); always stop.

    For a trainer that hosts its own verifier in-process, and for tests over real HTTP. ``port=0`` picks a
    free port: the socket is bound here, before the server starts, so no other process can take it meanwhile.
    The app's own :class:`Guards` (set by :func:`guarded_app`) apply.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    config = uvicorn_config(app, _guards_of(app), host=host, port=bound, log_level="warning",
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    try:
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {host}:{bound} did not start")
            time.sleep(0.01)
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
