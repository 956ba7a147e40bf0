"""The VerIF reward over HTTP: one service per cluster, for any trainer (``verif rl serve``).

Each verl reward worker otherwise holds its own sandbox pool, verifier client and cache on the GPU nodes.
This service holds ONE :class:`verinstruct.Scorer` (sandbox workers + verifier client + judge cache) on CPU
machines, and micro-batches concurrent requests from every worker and trainer into shared ``Scorer``
batches, so identical (instance, answer) pairs from different clients are judged once
(:func:`verinstruct.reward.reward_batch` deduplicates within a batch; ``--cache`` across batches and restarts).

Endpoints (auth, body limits, slow-loris guards and the bounded queue are :mod:`verifier.http_guard`'s, the
same as ``verif serve``):

``POST /v1/reward``
    ``{"items": [{"ground_truth" | "instance", "response", "prompt"?, "id"?, "prefilled"?, "truncated"?}, ...],
    "options": {...}?}``. ``ground_truth`` is what ``verif rl prepare`` writes (the typed row as JSON, a string
    or an object) or VerIF's ``{"checkers", "functions"}`` (then ``prompt`` is needed); ``instance`` is a typed
    row object. ``prefilled`` (the rendered prompt left ``<think>`` open; null: unknown) and ``truncated`` (cut
    at the length limit without EOS) are what the in-process adapters pass to ``reward_batch``. ``options``
    are the in-process reward's per-sample options by name (:data:`rl.reward.REQUEST_KEYS`: the
    :class:`verinstruct.reward.RewardConfig` fields and ``sample_timeout_s``), over the server's defaults
    (``--option``), checked by the same code (an unknown one is a 400 naming it; the verifier options are the
    service's own). Answer: ``{"results": [...], "options": {...}}``, one result per item in order: ``{"id",
    "score", <parts>, "error": null}`` (the parts are :data:`verinstruct.reward.PARTS`), ``score`` null when
    the sample is masked; a sample not scored within ``sample_timeout_s`` gets the undecided policy and
    ``timeout`` 1, as in process; an item that cannot be read gets ``{"id", "score": null, "error": "..."}``
    and the rest of the batch is scored.
``POST /get_reward``
    OpenRLHF's remote reward protocol (``--remote_rm_url http://HOST:PORT/get_reward``), as
    ``openrlhf.utils.agent.SingleTurnAgentExecutor`` 0.11 sends it: ``{"query": [prompt + response, decoded
    with special tokens], "prompts": [...], "labels": [ground truth, ...]}`` -> ``{"rewards": [...],
    "scores": [...], "extra_logs": {part: [...]}}``. The prompt is the rendered chat prompt, so a template
    that prefills ``<think>`` is seen; a query that does not end with an end-of-sequence marker was cut at
    the length limit (``truncated``). OpenRLHF sends no headers of its own: the key goes in the
    URL (``/get_reward?api_key=KEY``), and reward options may too (``&formula=prob``). OpenRLHF needs a
    number per sample: a masked or unreadable sample gets ``--mask-value`` with ``masked``/``error`` 1 in
    ``extra_logs`` (logged per step), and the reasons in ``errors``.
``GET /health``
    open (probes): counters.

Requests beyond ``max_queue`` samples waiting get 503 with ``Retry-After``; :mod:`rl.remote` retries them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request

from rl.reward import RewardOptionError, Sample, instance_for, request_options, summary_line
from verifier.http_guard import Guards, RequestError, guarded_app, read_json
from verifier.reasoning import prompt_prefills_think
from verifier.server import QueueFull, WindowBatcher
from verinstruct.reward import PARTS, RewardConfig, RewardResult, reward_batch, undecided_result
from verinstruct.schema import Instance

log = logging.getLogger(__name__)

#: end-of-sequence markers OpenRLHF leaves at the end of a query (it decodes with special tokens)
EOS_MARKERS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end_of_text|>", "</s>", "<eos>", "<end_of_turn>",
               "<｜end▁of▁sentence｜>")
OPENRLHF_PATH = "/get_reward"


def typed_options(pairs: Mapping[str, str]) -> dict[str, Any]:
    """Options given as text (URL query, ``--option KEY=VALUE``) with their JSON types: ``true`` -> True,
    ``300`` -> 300, ``null`` -> None; anything else stays text (``formula=prob``)."""
    out: dict[str, Any] = {}
    for k, v in pairs.items():
        try:
            typed = json.loads(v)
        except ValueError:
            typed = v
        out[k] = typed if typed is None or isinstance(typed, (bool, int, float)) else v
    return out


def reward_config(defaults: Mapping[str, Any], options: Any, where: str = "options") -> tuple[RewardConfig, float]:
    """(config, sample_timeout_s) from the server's defaults and a request's options, checked by the in-process
    reward's own rule (:func:`rl.reward.request_options`); a bad one is a 400 naming it."""
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise RequestError(f"'{where}' must be an object of reward options", where)
    try:
        return request_options({**defaults, **options})
    except RewardOptionError as e:
        raise RequestError(f"'{where}': {e}", where) from None


def parse_item(item: Any, k: int) -> tuple[Any, Instance, str, bool | None, bool]:
    """(id, instance, response, prefilled, truncated) of ``items[k]``; raises ValueError naming the item and
    field."""
    if not isinstance(item, Mapping):
        raise ValueError(f"items[{k}] must be an object with 'ground_truth' (or 'instance') and 'response'")
    rid = item.get("id", k)
    response = item.get("response")
    if not isinstance(response, str):
        raise ValueError(f"items[{k}].response must be a string, got {type(response).__name__}")
    gt = item.get("ground_truth", item.get("instance"))
    if gt is None:
        raise ValueError(f"items[{k}] needs 'ground_truth' (or 'instance')")
    if not isinstance(gt, (str, Mapping)):
        raise ValueError(f"items[{k}].ground_truth must be a JSON string or an object, got {type(gt).__name__}")
    prompt = item.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise ValueError(f"items[{k}].prompt must be a string")
    prefilled = item.get("prefilled")
    if prefilled is not None and not isinstance(prefilled, bool):
        raise ValueError(f"items[{k}].prefilled must be true, false or null, got {prefilled!r}")
    truncated = item.get("truncated", False)
    if not isinstance(truncated, bool):
        raise ValueError(f"items[{k}].truncated must be true or false, got {truncated!r}")
    extra = {"id": "" if rid is None else str(rid), "prompt": prompt}
    try:
        inst = instance_for(gt, extra)
    except Exception as e:  # noqa: BLE001 - untrusted data: any failure (MemoryError, RecursionError ...) is this item's
        raise ValueError(f"items[{k}] (id {rid!r}): {type(e).__name__}: {e}") from None
    return rid, inst, response, prefilled, truncated


def openrlhf_response(query: str, prompt: str, eos: Sequence[str]) -> tuple[str, bool]:
    """(the response inside an OpenRLHF query (prompt + response decoded together) with its end markers removed,
    whether it ended with one). No end marker: generation stopped at the length limit (OpenRLHF decodes with
    special tokens, so a finished response keeps its EOS)."""
    if not query.startswith(prompt):
        raise ValueError("the query does not start with its prompt (was the prompt truncated?)")
    text = query[len(prompt):]
    ended, stripped = False, True
    while stripped:
        stripped = False
        text = text.rstrip()
        for marker in eos:
            if marker and text.endswith(marker):
                text, stripped, ended = text[: -len(marker)], True, True
    return text, ended


class _EosWatch:
    """Says once, loudly, when the first OpenRLHF queries all lack a known end-of-sequence marker: a policy whose
    EOS is not in the list would have every answer counted as truncated (score 0) without a word otherwise."""

    WINDOW = 32

    def __init__(self, eos: Sequence[str]) -> None:
        self.eos, self.count, self.ended, self.warned = tuple(eos), 0, 0, False

    def saw(self, ended: bool) -> None:
        self.count += 1
        self.ended += ended
        if not self.warned and self.count >= self.WINDOW and not self.ended:
            self.warned = True
            log.warning("none of the first %d OpenRLHF queries ended with a known end-of-sequence marker (%s): "
                        "each counts as truncated at the length limit and scores by unfinished_think. If the "
                        "policy's EOS token is another one, pass it with --eos-token", self.count, ", ".join(self.eos))


@dataclass(slots=True)
class _Job:
    """One request's readable samples under one reward configuration."""

    config: RewardConfig
    samples: list[Sample]
    future: asyncio.Future[Any] = field(repr=False)

    def fail(self, message: str) -> None:
        if not self.future.done():
            self.future.set_exception(RuntimeError(message))


class RewardBatcher(WindowBatcher[_Job]):
    """Samples from concurrent requests scored together: one ``reward_batch`` per reward configuration per
    window, at most ``max_batch_size`` requests per window, run in a thread off the event loop."""

    def __init__(self, scorer: Any, max_batch_size: int, batch_wait_ms: float, max_queue: int | None) -> None:
        super().__init__(max_batch_size, batch_wait_ms, max_queue)
        self.scorer = scorer
        self.samples = 0
        self.timeouts = 0

    async def reward(self, config: RewardConfig, samples: list[Sample], timeout_s: float) -> list[RewardResult]:
        """The samples' rewards; past ``timeout_s`` (the in-process ``sample_timeout_s``) each gets the undecided
        policy with ``timeout`` 1, and a job not yet scored leaves its batch."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        try:
            out: list[RewardResult] = await asyncio.wait_for(
                self._submit(_Job(config, samples, fut), max(1, len(samples))), timeout_s)
        except asyncio.TimeoutError:
            self.timeouts += len(samples)
            return [undecided_result(s.instance, config, timeout=True) for s in samples]
        return out

    async def _run(self, items: list[_Job]) -> None:
        groups: dict[RewardConfig, list[_Job]] = {}
        for job in items:
            if not job.future.done():  # a client that went away
                groups.setdefault(job.config, []).append(job)
        for config, jobs in groups.items():
            samples = [s for j in jobs for s in j.samples]
            resps = [s.response for s in samples]
            self.batches += 1
            self.requests += len(jobs)
            self.samples += len(resps)
            try:
                results = await asyncio.to_thread(
                    functools.partial(reward_batch, self.scorer, [s.instance for s in samples], resps, config,
                                      prefilled=[s.prefilled for s in samples],
                                      truncated=[s.truncated for s in samples]))
            except Exception as e:  # the whole batch failed (a scorer bug, a closed scorer): every request sees it
                log.exception("reward batch of %d samples failed", len(resps))
                for j in jobs:
                    j.fail(f"reward batch failed: {type(e).__name__}: {e}")
                continue
            log.info("%s (%d requests)", summary_line(results), len(jobs))
            at = 0
            for j in jobs:
                n = len(j.samples)
                if not j.future.done():
                    j.future.set_result(results[at:at + n])
                at += n


def create_reward_app(scorer: Any, *, guards: Guards | None = None, defaults: Mapping[str, Any] | None = None,
                      max_batch_size: int = 1024, batch_wait_ms: float = 20.0, mask_value: float = 0.0,
                      eos: Sequence[str] = EOS_MARKERS, close_scorer: bool = False) -> FastAPI:
    """The reward app over ``scorer`` (a :class:`verinstruct.Scorer`); see the module docs.

    ``defaults``: reward options used when a request names none (validated here). ``max_batch_size`` is in
    requests per window. ``close_scorer``: close the scorer when the app shuts down.
    """
    guards = guards or Guards(command="verif rl serve")
    defaults = dict(defaults or {})
    try:
        reward_config({}, defaults, "--option")
    except RequestError as e:
        raise ValueError(e.message) from None
    batcher = RewardBatcher(scorer, max_batch_size, batch_wait_ms, guards.max_queue)
    eos_seen = _EosWatch(eos)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await batcher.close()
        if close_scorer:
            await asyncio.to_thread(scorer.close)

    app = guarded_app("verinstruct reward", guards, lifespan=lifespan, query_key_paths=(OPENRLHF_PATH,))
    app.state.batcher = batcher

    async def score(config: RewardConfig, timeout_s: float, ids: list[Any],
                    parsed: list[Sample | str]) -> list[dict[str, Any]]:
        ok = [k for k, p in enumerate(parsed) if not isinstance(p, str)]
        results: list[RewardResult] = []
        if ok:
            try:
                results = await batcher.reward(config, [parsed[k] for k in ok], timeout_s)  # type: ignore[misc]
            except QueueFull as e:
                raise guards.busy(str(e)) from None
            except RuntimeError as e:
                raise RequestError(str(e), status=500, code="reward_failed") from None
        by_k = dict(zip(ok, results, strict=True))
        out = []
        for k, p in enumerate(parsed):
            if isinstance(p, str):
                out.append({"id": ids[k], "score": None, "error": p})
            else:
                out.append({"id": ids[k], **by_k[k].to_dict(None), "error": None})
        return out

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "requests": batcher.requests, "samples": batcher.samples,
                "batches": batcher.batches, "pending": batcher.pending, "timeouts": batcher.timeouts}

    @app.post("/v1/reward")
    async def reward(request: Request) -> dict[str, Any]:
        body = await read_json(request, guards)
        if not isinstance(body, dict):
            raise RequestError("request body must be a JSON object with 'items'")
        items = body.get("items")
        if not isinstance(items, list):
            raise RequestError("'items' is required and must be a list", "items")
        config, timeout_s = reward_config(defaults, body.get("options"))

        def parse_all() -> tuple[list[Any], list[Sample | str]]:
            ids: list[Any] = []
            parsed: list[Sample | str] = []
            for k, item in enumerate(items):
                ids.append(item.get("id", k) if isinstance(item, Mapping) else k)
                try:
                    _, inst, resp, prefilled, truncated = parse_item(item, k)
                    parsed.append(Sample(inst, resp, prefilled, truncated))
                except ValueError as e:
                    parsed.append(str(e))
            return ids, parsed

        ids, parsed = await asyncio.to_thread(parse_all)
        return {"results": await score(config, timeout_s, ids, parsed),
                "options": {**dataclasses.asdict(config), "sample_timeout_s": timeout_s}}

    @app.post(OPENRLHF_PATH)
    async def openrlhf(request: Request) -> dict[str, Any]:
        body = await read_json(request, guards)
        if not isinstance(body, dict):
            raise RequestError("request body must be a JSON object with 'query', 'prompts' and 'labels'")
        queries, prompts, labels = body.get("query"), body.get("prompts"), body.get("labels")
        if not isinstance(queries, list):
            raise RequestError("'query' is required and must be a list of strings", "query")
        n = len(queries)
        for name, v in (("prompts", prompts), ("labels", labels)):
            if not isinstance(v, list) or len(v) != n:
                raise RequestError(f"'{name}' must be a list with one entry per query ({n})", name)
        assert isinstance(prompts, list) and isinstance(labels, list)
        options = typed_options({k: v for k, v in request.query_params.items() if k != "api_key"})
        config, timeout_s = reward_config(defaults, options, "query parameters")

        def parse_all() -> list[Sample | str]:
            parsed: list[Sample | str] = []
            for k in range(n):
                try:
                    q, p = queries[k], prompts[k]
                    if not isinstance(q, str) or not isinstance(p, str):
                        raise ValueError(f"query[{k}] and prompts[{k}] must be strings")
                    resp, ended = openrlhf_response(q, p, eos)
                    _, inst, _, _, _ = parse_item({"ground_truth": labels[k], "response": resp, "prompt": p}, k)
                    # as verl's manager does from the prompt ids and the response's end: OpenRLHF's prompt is the
                    # rendered chat prompt, and its query keeps EOS unless generation hit the length limit
                    parsed.append(Sample(inst, resp, prompt_prefills_think(p), not ended))
                    eos_seen.saw(ended)
                except ValueError as e:
                    parsed.append(f"sample {k}: {e}")
            return parsed

        parsed = await asyncio.to_thread(parse_all)
        results = await score(config, timeout_s, list(range(n)), parsed)
        rewards = [mask_value if r["score"] is None else r["score"] for r in results]
        # the same keys for every sample (OpenRLHF stacks them per key), numbers only
        extra: dict[str, list[float]] = {p: [float(r.get(p) or 0) for r in results] for p in PARTS if p != "score"}
        extra["masked"] = [float(r["score"] is None) for r in results]
        extra["error"] = [float(r["error"] is not None) for r in results]
        errors = [r["error"] for r in results]
        for e in errors:
            if e is not None:
                log.warning("OpenRLHF %s", e)
        return {"rewards": rewards, "scores": rewards, "extra_logs": extra, "errors": errors}

    return app
