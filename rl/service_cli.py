"""`verif rl serve`: the reward service (:mod:`rl.service`) from the command line.

Closed by default like ``verif serve`` (the same checks and guards): a non-loopback ``--host`` needs
``--api-key`` (``VERIF_REWARD_API_KEY``; ``VERIF_API_KEY`` stays the key the service itself sends to the
verifier) or an explicit ``--no-auth``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from verifier.serve_limits import (
    BODY_TIMEOUT_S,
    HEADER_TIMEOUT_S,
    MAX_BODY_BYTES,
    MAX_CONNECTIONS,
    RETRY_AFTER_S,
)

#: judgements are cached in memory by default (shared by every client while the service runs); --cache PATH
#: keeps them across restarts (the container sets it to its one writable volume)
DEFAULT_CACHE = ":memory:"
#: samples waiting or being scored before 503 (a GRPO step is 512; several trainers share the service)
MAX_QUEUE_SAMPLES = 65536


def _fail(msg: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {msg}", err=True)
    return typer.Exit(code=code)


def _options(pairs: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _fail(f"--option must be KEY=VALUE (a reward option such as formula=verif), got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def serve_cmd(
    verifier: Annotated[str | None, typer.Option(help="verifier spec: openai:MODEL (with --base-url), "
                                                      "transformers:default, or none (soft constraints undecided; "
                                                      "must be said); default $VERINSTRUCT_VERIFIER")] = None,
    base_url: Annotated[list[str] | None, typer.Option("--base-url", help="OpenAI-compatible verifier server "
                                                                          "(repeat)")] = None,
    verifier_mode: Annotated[str | None, typer.Option(help="score or generate (the verifier's decision mode)")] = None,
    cache: Annotated[str, typer.Option(envvar="VERIF_REWARD_CACHE", help="judge cache shared by every client: "
                                       "':memory:' (default), a SQLite file (kept across restarts), or '' for none"
                                       )] = DEFAULT_CACHE,
    sandbox_workers: Annotated[int | None, typer.Option(min=1, help="sandbox worker processes for dataset code")] = None,
    sandbox_process_per: Annotated[str, typer.Option(help="row (one process per dataset row and batch) or call "
                                                          "(one per check: stricter, ~3 ms each)")] = "row",
    option: Annotated[list[str] | None, typer.Option("--option", help="default reward option KEY=VALUE (repeat), "
                                                                      "e.g. formula=prob, undecided=mask, "
                                                                      "sample_timeout_s=300")] = None,
    mask_value: Annotated[float, typer.Option(help="OpenRLHF's reward for a masked or unreadable sample "
                                                   "(flagged in extra_logs)")] = 0.0,
    eos_token: Annotated[list[str] | None, typer.Option("--eos-token", help="the policy's end-of-sequence token "
                                                        "text, if not a usual one (repeat): an OpenRLHF query that "
                                                        "does not end with one was cut at the length limit")] = None,
    host: Annotated[str, typer.Option(help="address to listen on (0.0.0.0 for every interface)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8100,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="VERIF_REWARD_API_KEY", show_envvar=True,
                                                help="require 'Authorization: Bearer KEY' (or ?api_key= on "
                                                     "/get_reward) on every endpoint but /health")] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="serve a non-loopback --host without a key")] = False,
    max_batch_size: Annotated[int, typer.Option(min=1, help="most requests scored together")] = 1024,
    batch_wait_ms: Annotated[float, typer.Option(min=0.0, help="how long a batch waits for more requests")] = 20.0,
    max_queue: Annotated[int, typer.Option(min=1, help="samples waiting or running; beyond it 503 with "
                                                       "Retry-After")] = MAX_QUEUE_SAMPLES,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="largest request body (413)")] = MAX_BODY_BYTES * 8,
    retry_after: Annotated[int, typer.Option(min=0, help="seconds a client is told to wait when busy")] = RETRY_AFTER_S,
    header_timeout: Annotated[float, typer.Option(min=0.001, help="seconds to send request headers")] = HEADER_TIMEOUT_S,
    body_timeout: Annotated[float, typer.Option(min=0.001, help="seconds to send a body (408)")] = BODY_TIMEOUT_S,
    max_connections: Annotated[int, typer.Option(min=1, help="connections served at once (503)")] = MAX_CONNECTIONS,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve the VerIF reward over HTTP (POST /v1/reward, OpenRLHF's POST /get_reward, GET /health)."""
    from verinstruct.cli.serve import check_exposure

    check_exposure(host, api_key, no_auth, "verif rl serve", "VERIF_REWARD_API_KEY")
    from rl.reward import RewardOptionError, check_verifier_mode, request_options, verifier_spec
    from rl.service import typed_options

    # the in-process reward's own checks: the same options, the same verifier requirement
    defaults = typed_options(_options(option))
    try:
        config, _ = request_options(defaults)
        spec = verifier_spec(verifier, config, option="--verifier")
        mode = check_verifier_mode(verifier_mode) if verifier_mode else None
    except RewardOptionError as e:
        raise _fail(f"{e} (--option / --verifier)") from None
    kwargs: dict[str, Any] = {}
    if base_url:
        kwargs["base_url"] = list(base_url)
    if mode:
        kwargs["verifier_mode"] = mode
    if spec is None and kwargs:
        raise _fail(f"{', '.join('--' + k.replace('_', '-') for k in kwargs)} need --verifier (openai:MODEL, ...)")
    if cache and spec is not None:
        kwargs["cache_path"] = cache

    from verifier.http_guard import Guards
    guards = Guards(api_key=api_key or None, max_body_bytes=max_body_bytes, max_queue=max_queue,
                    retry_after_s=retry_after, header_timeout_s=header_timeout, body_timeout_s=body_timeout,
                    max_connections=max_connections, command="verif rl serve")

    import uvicorn

    from rl.service import EOS_MARKERS, create_reward_app
    from verifier.http_guard import uvicorn_config
    from verinstruct.scorer import Scorer

    if sandbox_process_per not in ("row", "call"):
        raise _fail(f"--sandbox-process-per {sandbox_process_per!r}: must be row or call")
    try:
        scorer = Scorer(spec, sandbox_workers=sandbox_workers, sandbox_process_per=sandbox_process_per, **kwargs)
    except (ValueError, ImportError, OSError) as e:
        raise _fail(f"cannot build the verifier {verifier!r}: {e}") from None
    app = create_reward_app(scorer, guards=guards, defaults=defaults, max_batch_size=max_batch_size,
                            batch_wait_ms=batch_wait_ms, mask_value=mask_value, close_scorer=True,
                            eos=EOS_MARKERS + tuple(t for t in eos_token or () if t))
    typer.echo(f"reward service at http://{host}:{port} (POST /v1/reward, POST /get_reward); verifier "
               f"{spec or 'none'}; defaults {json.dumps(defaults)}", err=True)
    if no_auth and host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"warning: listening on {host} with --no-auth: anyone who can reach the port can use it", err=True)
    import logging

    # one line per scored batch (the means of the parts), as the in-process reward prints
    level = getattr(logging, log_level.upper(), logging.DEBUG)  # uvicorn's 'trace' is below DEBUG
    logging.basicConfig(level=level if isinstance(level, int) else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        uvicorn.Server(uvicorn_config(app, guards, host=host, port=port, log_level=log_level)).run()
    finally:
        scorer.close()
