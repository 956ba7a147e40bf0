"""`verif serve`: share one verifier model over an OpenAI-compatible HTTP endpoint.

Trainers then point the `openai` verifier backend at it (``--verifier openai:MODEL --base-url http://HOST:PORT/v1``);
requests from all of them are micro-batched into the one model. Closed by default: listening on anything but
a loopback address needs ``--api-key`` (or ``VERIF_API_KEY``; clients send it with ``verif score --api-key``
or the same environment variable), or an explicit ``--no-auth``.
"""

from __future__ import annotations

from typing import Any

import typer

from verifier.serve_limits import (
    BODY_TIMEOUT_S,
    HEADER_TIMEOUT_S,
    MAX_BODY_BYTES,
    MAX_CONNECTIONS,
    MAX_QUEUE,
    MAX_TOKENS_LIMIT,
)
from verinstruct.cli.errors import fail as _fail

BACKENDS = ("transformers", "vllm")


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def check_exposure(host: str, api_key: str | None, no_auth: bool, command: str, envvar: str = "VERIF_API_KEY") -> None:
    """Closed by default: a server reachable from the network needs a key, or the operator's explicit
    ``--no-auth`` (shared by ``verif serve`` and ``verif rl serve``)."""
    if api_key and no_auth:
        raise _fail("--api-key and --no-auth contradict each other: pick one")
    if not api_key and not no_auth and host not in LOOPBACK:
        raise _fail(f"{command} --host {host} would accept requests from the network without a key: set "
                    f"--api-key (or {envvar}), or pass --no-auth to serve it open on purpose")


def build_backend(kind: str, model: str, device: str) -> Any:
    """The backend to serve (through the verifier factory); heavy imports happen here, after argument checks."""
    from verifier.factory import build_backend as factory_build

    options = {"device": device} if kind == "transformers" else {}
    return factory_build(f"{kind}:{model}", **options)


def serve(
    model: str = typer.Option(
        "default",
        "--model",
        "-m",
        help="Verifier model: 'default' (the bundled SmolLM2-135M), a Hugging Face id or a local path.",
    ),
    backend: str = typer.Option(
        "transformers", "--backend", help="Engine: transformers (CPU/GPU) or vllm (GPU)."
    ),
    device: str = typer.Option("auto", "--device", help="transformers device: auto, cpu, cuda, cuda:1, ..."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on (0.0.0.0 for every interface)."
    ),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port."),
    max_batch_size: int = typer.Option(32, "--max-batch-size", min=1, help="Most requests per model call."),
    batch_wait_ms: float = typer.Option(
        5.0, "--batch-wait-ms", min=0.0, help="How long a batch waits for more requests before it runs."
    ),
    served_model_name: str | None = typer.Option(
        None, "--served-model-name", help="Model id reported to clients (default: --model)."
    ),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
    api_key: str | None = typer.Option(
        None,
        "--api-key",
        envvar="VERIF_API_KEY",
        help="Require 'Authorization: Bearer KEY' on every endpoint but /health (401 otherwise); needed to "
        "listen beyond loopback.",
        show_envvar=True,
    ),
    no_auth: bool = typer.Option(
        False, "--no-auth", help="Serve a non-loopback --host without a key (anyone who reaches it can use it)."
    ),
    max_body_bytes: int = typer.Option(
        MAX_BODY_BYTES, "--max-body-bytes", min=1, help="Largest request body accepted (413 beyond it)."
    ),
    max_queue: int = typer.Option(
        MAX_QUEUE,
        "--max-queue",
        min=1,
        help="Most requests waiting or running at once; beyond it 503 with Retry-After.",
    ),
    max_tokens_limit: int = typer.Option(
        MAX_TOKENS_LIMIT,
        "--max-tokens-limit",
        min=1,
        help="Largest max_tokens a request may ask for (400 beyond it; not clamped).",
    ),
    header_timeout: float = typer.Option(
        HEADER_TIMEOUT_S, "--header-timeout", min=0.001,
        help="Seconds a connection has to send its request headers (closed otherwise).",
    ),
    body_timeout: float = typer.Option(
        BODY_TIMEOUT_S, "--body-timeout", min=0.001, help="Seconds a request has to send its body (408 otherwise)."
    ),
    max_connections: int = typer.Option(
        MAX_CONNECTIONS, "--max-connections", min=1, help="Connections served at once (503 beyond it)."
    ),
) -> None:
    """Serve the verifier over an OpenAI-compatible API (POST /v1/chat/completions, GET /v1/models, GET /health)."""
    if backend not in BACKENDS:
        raise _fail(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    check_exposure(host, api_key, no_auth, "verif serve")
    try:
        engine = build_backend(backend, model, device)
    except ImportError as e:
        raise _fail(f"cannot load the {backend} backend: {e}") from None
    except Exception as e:  # bad model id/path, unusable device, ...
        raise _fail(f"cannot load model {model!r} with the {backend} backend: {e}") from None

    import uvicorn

    from verifier.http_guard import uvicorn_config
    from verifier.server import create_app

    try:
        app = create_app(
            engine,
            max_batch_size=max_batch_size,
            batch_wait_ms=batch_wait_ms,
            model_name=served_model_name,
            api_key=api_key or None,
            max_body_bytes=max_body_bytes,
            max_queue=max_queue,
            max_tokens_limit=max_tokens_limit,
            header_timeout_s=header_timeout,
            body_timeout_s=body_timeout,
            max_connections=max_connections,
        )
        typer.echo(
            f"serving {served_model_name or engine.model} ({backend}) at http://{host}:{port}/v1", err=True
        )
        if no_auth and host not in LOOPBACK:
            typer.echo(
                f"warning: listening on {host} with --no-auth: anyone who can reach the port can use it", err=True
            )
        uvicorn.Server(uvicorn_config(app, app.state.guards, host=host, port=port, log_level=log_level)).run()
    finally:
        engine.close()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
