"""Clients of the reward service (:mod:`rl.service`, ``verif rl serve``): verl, TRL and plain Python.

* :class:`RewardClient` posts samples to ``POST /v1/reward`` of one service or several replicas
  (``reward_url`` comma-separated: requests take turns and fail over): async, chunks sent concurrently,
  retried with exponential backoff on 502/503/504 (honouring ``Retry-After``), 500 and connection errors (a
  restarted or failed-over service), until each sample's deadline. Scoring is a pure function of the sample, so a retry
  after a server died mid-batch gives the same result once: results are kept per sample, in order.
* :func:`compute_score_async` / :func:`compute_score`: a verl ``reward.custom_reward_function``::

      reward.custom_reward_function.path=pkg://rl.remote
      reward.custom_reward_function.name=compute_score_async
      +reward.custom_reward_function.reward_kwargs.reward_url=http://reward-svc:8100
      +reward.custom_reward_function.reward_kwargs.formula=verif        # the in-process reward's options

  (the reward manager is :class:`rl.remote_verl.RemoteRewardManager`).
* :class:`RemoteReward`: what :class:`rl.trl.VerIFReward` scores through:
  ``VerIFReward(reward=RemoteReward("http://reward-svc:8100"))``.

Options: ``reward_url`` (or ``$VERIF_REWARD_URL``), ``api_key`` (or ``$VERIF_REWARD_API_KEY``),
``timeout_s`` (one HTTP request; default the larger of 600 s and ``sample_timeout_s`` + 60 s), ``deadline_s``
(one sample, retries included: past it the client raises), and the in-process reward's options, checked by its
own code (:func:`rl.reward.split_options`: an unknown one is an error naming it): ``mask_value`` here, the
reward's options (``formula``, ``undecided``, ``think_prefilled``, ...) and ``sample_timeout_s`` sent with each
request and applied by the service (a sample not scored in time gets the undecided policy and ``timeout`` 1).
The options that build a verifier (``verifier``, ``base_url``, ``verifier_mode``, ...) are the service's
(``verif rl serve --verifier ...``): given here they are an error, never silently ignored.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import dataclasses
import json
import os
import random
import threading
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from rl.reward import REQUEST_KEYS, SAMPLE_TIMEOUT_S, _plain, request_options, split_options
from verinstruct.reward import RewardResult
from verinstruct.schema import Instance

T = TypeVar("T")

URL_ENV = "VERIF_REWARD_URL"
KEY_ENV = "VERIF_REWARD_API_KEY"
#: status codes worth retrying: the service restarting, failing over or busy (503 says for how long)
RETRY_STATUS = frozenset({500, 502, 503, 504})


class RewardServiceError(RuntimeError):
    """The service refused a request (4xx), or gave no answer before the deadline."""


class RemoteSampleError(ValueError):
    """The service could not read this sample (its ground truth or response); the message names why."""


def reward_options(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The per-request options among the in-process reward's options ``kwargs`` (verl's own keys left out),
    checked as the in-process reward and the service check them: an unknown key, a bad value or a verifier
    option (the service's own) raises :class:`rl.reward.RewardOptionError` naming it."""
    opts = {k: v for k, v in split_options(kwargs).items() if k != "mask_value" and v is not None}
    request_options(opts)
    return {k: v for k, v in opts.items() if k in REQUEST_KEYS}


def default_timeout(options: Mapping[str, Any]) -> float:
    """One HTTP request's timeout: long enough for the service to answer a slow sample with ``timeout`` 1."""
    return max(600.0, float(options.get("sample_timeout_s") or SAMPLE_TIMEOUT_S) + 60.0)


class RewardClient:
    """Posts samples to a reward service (see the module docs); one per process and configuration."""

    def __init__(self, url: str | Sequence[str] | None = None, *, api_key: str | None = None,
                 options: Mapping[str, Any] | None = None, timeout_s: float | None = None, deadline_s: float = 1800.0,
                 chunk_size: int = 512, concurrency: int = 8, backoff_s: float = 0.5, max_backoff_s: float = 15.0,
                 max_attempts: int = 50) -> None:
        url = url or os.environ.get(URL_ENV)
        if not url:
            raise ValueError(f"the reward service URL is missing: set reward_url (or ${URL_ENV})")
        urls = [u.strip() for u in url.split(",")] if isinstance(url, str) else [str(u).strip() for u in url]
        urls = [u.rstrip("/") for u in urls if u]
        bad = [u for u in urls if not u.startswith(("http://", "https://"))]
        if bad or not urls:
            raise ValueError(f"reward_url must be http(s) URLs (comma-separated for several), got {url!r}")
        if chunk_size < 1 or concurrency < 1 or (timeout_s is not None and timeout_s <= 0) or deadline_s <= 0 \
                or max_attempts < 1:
            raise ValueError("chunk_size, concurrency, max_attempts >= 1 and timeout_s, deadline_s > 0 are required")
        #: the service replicas: requests start on the next one in turn and fail over to the others
        self.urls = urls
        self._turn = 0
        self.api_key = api_key if api_key is not None else os.environ.get(KEY_ENV)
        self.options = reward_options(options or {})
        self.timeout_s = default_timeout(self.options) if timeout_s is None else timeout_s
        self.deadline_s = deadline_s
        self.chunk_size = chunk_size
        self.concurrency = concurrency
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_attempts = max_attempts
        #: requests sent, retries among them
        self.requests = 0
        self.retries = 0
        self._clients: dict[int, Any] = {}
        self._lock = threading.Lock()

    def _http(self) -> Any:
        """One httpx client per event loop (a client is bound to the loop it was made on)."""
        import httpx

        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.get(id(loop))
            if client is None:
                headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
                client = self._clients[id(loop)] = httpx.AsyncClient(
                    headers=headers, limits=httpx.Limits(max_connections=self.concurrency * 2))
            return client

    async def _post(self, items: list[dict[str, Any]], deadline: float) -> list[dict[str, Any]]:
        import httpx

        loop = asyncio.get_running_loop()
        body = {"items": items, "options": self.options}
        wait = self.backoff_s
        last = "no attempt"
        first, self._turn = self._turn, self._turn + 1
        for attempt in range(1, self.max_attempts + 1):
            left = deadline - loop.time()
            if left <= 0:
                break
            endpoint = self.urls[(first + attempt - 1) % len(self.urls)] + "/v1/reward"
            self.requests += 1
            retry_after = None
            try:
                r = await self._http().post(endpoint, json=body, timeout=min(self.timeout_s, left))
            except httpx.TransportError as e:  # refused (restarting), reset (killed mid-batch), timed out
                last = f"{endpoint}: {type(e).__name__}: {e}"
            else:
                if r.status_code == 200:
                    results = r.json().get("results")
                    if not isinstance(results, list) or len(results) != len(items):
                        raise RewardServiceError(f"{endpoint} returned {len(results or [])} results for "
                                                 f"{len(items)} samples")
                    return results
                last = f"{endpoint}: HTTP {r.status_code}: {_message(r)}"
                if r.status_code not in RETRY_STATUS:
                    raise RewardServiceError(last)
                ra = r.headers.get("retry-after", "")
                retry_after = float(ra) if ra.replace(".", "", 1).isdigit() else None
            pause = max(retry_after or 0.0, wait * (0.5 + random.random()))  # jitter: clients do not retry in step
            if loop.time() + pause >= deadline or attempt == self.max_attempts:
                break
            self.retries += 1
            await asyncio.sleep(pause)
            wait = min(wait * 2, self.max_backoff_s)
        raise RewardServiceError(f"no reward from {', '.join(self.urls)} within the deadline ({self.deadline_s:g} s, "
                                 f"{attempt} attempts); last: {last}")

    async def ascore(self, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """One result per item, in order (``{"id", "score", <parts>, "error"}``); chunks go out concurrently."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.deadline_s
        plain = [dict(it) for it in items]
        chunks = [plain[i:i + self.chunk_size] for i in range(0, len(plain), self.chunk_size)]
        gate = asyncio.Semaphore(self.concurrency)

        async def one(chunk: list[dict[str, Any]]) -> list[dict[str, Any]]:
            async with gate:
                return await self._post(chunk, deadline)

        parts = await asyncio.gather(*(one(c) for c in chunks))
        return [r for p in parts for r in p]

    def score(self, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Blocking :meth:`ascore` (from any thread, with or without a running loop)."""
        return _background().run(self.ascore(items))

    async def aclose(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            await c.aclose()


def _message(r: Any) -> str:
    try:
        err = r.json().get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    except ValueError:
        pass
    return r.text[:300]


class _Loop:
    """One background event loop for blocking callers (verl's executor threads, TRL): they share one
    connection pool instead of each making a loop and a client per call."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="verinstruct-remote", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def submit(self, coro: Coroutine[Any, Any, T]) -> cf.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)


_BG: _Loop | None = None
_BG_LOCK = threading.Lock()


def _background() -> _Loop:
    global _BG
    with _BG_LOCK:
        if _BG is None or not _BG.thread.is_alive():
            _BG = _Loop()
        return _BG


def _reset_after_fork() -> None:  # a forked child has no loop thread: make a new one on first use
    global _BG, _BG_LOCK
    _BG, _BG_LOCK = None, threading.Lock()
    _CLIENTS.clear()


# ---- verl -------------------------------------------------------------------------------------------------

_CLIENTS: dict[str, RewardClient] = {}
_CLIENTS_LOCK = threading.Lock()
_OWN = ("reward_url", "api_key", "timeout_s", "deadline_s")


def shared_client(**kwargs: Any) -> tuple[RewardClient, float]:
    """(the process's client for these options, mask_value): options as verl passes ``reward_kwargs``."""
    own = {k: _plain(kwargs[k]) for k in _OWN if kwargs.get(k) is not None}
    opts = reward_options({k: v for k, v in kwargs.items() if k not in _OWN})
    key = json.dumps([own, opts], sort_keys=True, default=str)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            client = _CLIENTS[key] = RewardClient(own.get("reward_url"), api_key=own.get("api_key"), options=opts,
                                                  **{k: float(own[k]) for k in ("timeout_s", "deadline_s") if k in own})
    return client, float(kwargs.get("mask_value") or 0.0)


def sample_item(ground_truth: Any, response: str, extra_info: Mapping[str, Any] | None, *,
                prefilled: bool | None = None, truncated: bool = False) -> dict[str, Any]:
    """One ``/v1/reward`` item from verl's per-sample arguments (``prefilled``/``truncated``: what the manager
    read from the prompt ids and the response length, as the in-process manager passes them on)."""
    extra = extra_info or {}
    item: dict[str, Any] = {"ground_truth": _plain(ground_truth), "response": response}
    if prefilled is not None:
        item["prefilled"] = bool(prefilled)
    if truncated:
        item["truncated"] = True
    rid = extra.get("id", extra.get("index"))
    if rid is not None:
        item["id"] = str(rid)
    if isinstance(extra.get("prompt"), str):
        item["prompt"] = extra["prompt"]
    return item


def result_parts(result: Mapping[str, Any], mask_value: float) -> dict[str, Any]:
    """A ``/v1/reward`` result as the in-process reward's parts (``score`` masked -> ``mask_value``)."""
    if result.get("error") is not None:
        raise RemoteSampleError(str(result["error"]))
    parts = {k: v for k, v in result.items() if k not in ("id", "error")}
    if parts.get("score") is None:
        parts["score"] = mask_value
    return parts


async def compute_score_async(data_source: str, solution_str: str, ground_truth: Any,
                              extra_info: Mapping[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    """Per-sample reward for verl's event loop, scored by the service (concurrent calls go out together)."""
    client, mask = shared_client(**kwargs)
    fut = _background().submit(client.ascore([sample_item(ground_truth, solution_str, extra_info)]))
    [res] = await asyncio.wrap_future(fut)
    return result_parts(res, mask)


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None,
                  **kwargs: Any) -> dict[str, Any]:
    """Blocking per-sample reward (verl calls it from executor threads, concurrently)."""
    client, mask = shared_client(**kwargs)
    [res] = client.score([sample_item(ground_truth, solution_str, extra_info)])
    return result_parts(res, mask)


# ---- TRL / Python ---------------------------------------------------------------------------------------------


class RemoteReward:
    """The in-process :class:`rl.reward.BatchedReward`'s scoring interface, served by the service:
    ``VerIFReward(reward=RemoteReward(url, formula="verif"))`` for TRL."""

    def __init__(self, url: str | None = None, *, api_key: str | None = None, mask_value: float = 0.0,
                 **options: Any) -> None:
        self.client = RewardClient(url, api_key=api_key, options=options)  # checked as in-process options
        self.mask_value = float(mask_value)

    def score_batch(self, instances: Sequence[Instance], responses: Sequence[str], *,
                    prefilled: Sequence[bool | None] | None = None,
                    truncated: Sequence[bool] | None = None) -> list[RewardResult]:
        from verinstruct.dataset import to_row

        n = len(responses)
        pre = list(prefilled) if prefilled is not None else [None] * n
        cut = list(truncated) if truncated is not None else [False] * n
        items = [{"instance": to_row(i), "response": r, "id": i.id, "prefilled": p, "truncated": bool(t)}
                 for i, r, p, t in zip(instances, responses, pre, cut, strict=True)]
        return [to_result(res) for res in self.client.score(items)]

    def parts(self, result: RewardResult) -> dict[str, Any]:
        return result.to_dict(self.mask_value)

    def close(self) -> None:
        _background().run(self.client.aclose())


def to_result(res: Mapping[str, Any]) -> RewardResult:
    """A ``/v1/reward`` result -> :class:`RewardResult` (by its field names); an item error raises."""
    if res.get("error") is not None:
        raise RemoteSampleError(str(res["error"]))
    values = {f.name: res[f.name] for f in dataclasses.fields(RewardResult) if f.name in res}
    for flag in ("format_ok", "truncated", "timeout"):
        if flag in values:
            values[flag] = bool(values[flag])
    return RewardResult(**values)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
