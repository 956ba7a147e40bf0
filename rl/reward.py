"""The per-process batched reward shared by the verl function, the verl manager, TRL and the benchmark.

One :class:`BatchedReward` per process and configuration: it owns a :class:`verinstruct.Scorer` (sandbox
workers + verifier, built once) and a :class:`rl.batcher.QuietFlushBatcher` in front of it. Samples arrive as
(ground_truth, response) pairs; ground truths are parsed once (cached) into ``Instance`` objects.

Configuration comes as keyword arguments (verl: ``reward.custom_reward_function.reward_kwargs`` or
``reward.reward_kwargs``, each with a ``+`` on the command line; TRL / Python: constructor arguments). An
unknown option is an error naming it and the allowed ones (verl's own extra keys aside):

* ``formula``, ``undecided``, ``unfinished_think``, ``soft_code``, ``mode`` (registry checkers: strict/loose),
  ``think_prefilled``, and the authors' choices ``soft_when_none``, ``rule_llm_code``, ``judge_sees``: see
  :mod:`verinstruct.reward`;
* ``verifier``: a verifier spec (``openai:IF-Verifier-7B``, ``transformers:default``) or ``none``; default from
  ``$VERINSTRUCT_VERIFIER``. Required: with neither, construction fails (``none`` must be said explicitly,
  because every soft constraint then comes back undecided and ``undecided=fail`` scores it 0);
* ``verifier_mode``: the verifier's decision mode, ``score`` (one forward pass, P(yes)) or ``generate`` (it
  reasons first); the same name as ``Scorer(verifier_mode=...)``. (``mode`` is the checkers' strict/loose.)
* ``base_url``: one URL or a list (or a comma-separated string) of OpenAI-compatible servers;
* ``verifier_kwargs``: a dict for ``build_verifier`` (``template``, ``max_tokens``, ``concurrency``, ...;
  not ``mode``: that is ``verifier_mode``);
* ``sandbox_workers``; ``sandbox_process_per`` (``row``, default: one process per dataset row for its
  responses in a batch; ``call``: one per check, ~3 ms each, so one response's run of the code cannot reach
  another's); ``max_batch``, ``quiet_ms`` (micro-batching); ``mask_value`` (verl's score for a
  masked sample, default 0.0, always flagged by ``masked=1``); ``log_batches`` (default True: one line per
  scored batch on stderr with the means of the parts; verl's trainer logs only ``score`` per step);
* ``sample_timeout_s`` (default 300, like verl's ``reward.timeout``): a sample not scored by then gets the
  undecided policy and ``timeout=1`` in its parts, so no single row can stall a step.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import dataclasses
import functools
import json
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from rl.batcher import BatcherClosed, QuietFlushBatcher
from rl.claims import Claims
from verinstruct.reward import RewardConfig, RewardResult, reward_batch, undecided_result
from verinstruct.schema import Instance, SchemaError

#: the reward's own options (formula and policies): :class:`RewardConfig`'s fields, so a new one flows everywhere
_REWARD_KEYS = tuple(f.name for f in dataclasses.fields(RewardConfig))
#: options that build the Scorer: on the reward service they are the service's (``verif rl serve --verifier ...``)
SCORER_KEYS = ("verifier", "verifier_mode", "base_url", "verifier_kwargs", "sandbox_workers", "sandbox_process_per")
#: this process's micro-batching and logging (the reward service batches and logs for itself)
BATCH_KEYS = ("max_batch", "quiet_ms", "log_batches")
#: per sample, wherever it is scored: the time budget (the service applies it) and verl's score for a masked sample
SAMPLE_KEYS = ("sample_timeout_s", "mask_value")
_OWN_KEYS = SCORER_KEYS + BATCH_KEYS + SAMPLE_KEYS
#: what a reward service takes per request: the reward's options and the per-sample time budget
REQUEST_KEYS = _REWARD_KEYS + ("sample_timeout_s",)
#: the default per-sample budget (verl's reward.timeout is 300 s too)
SAMPLE_TIMEOUT_S = 300.0
#: distinct samples whose results (or pending futures) a BatchedReward keeps for repeats
_MEMO_SIZE = 65536
#: keyword arguments verl itself passes to a reward function (not ours to check)
VERL_KEYS = ("reward_router_address", "reward_model_tokenizer")


class RewardOptionError(ValueError):
    """A reward option is unknown or has a bad value; the message names it and what is allowed."""


def reward_config(options: Mapping[str, Any], allowed: Sequence[str] = _REWARD_KEYS + _OWN_KEYS) -> RewardConfig:
    """The :class:`RewardConfig` among ``options`` (the other ``allowed`` keys are the caller's); an unknown key or
    a bad value raises :class:`RewardOptionError` naming it. The one check of reward options, in process and on
    the reward service alike."""
    unknown = sorted(str(k) for k in options if k not in allowed)
    if unknown:
        raise RewardOptionError(f"unknown reward option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    try:
        return RewardConfig(**{k: v for k, v in options.items() if k in _REWARD_KEYS})
    except (TypeError, ValueError) as e:
        raise RewardOptionError(str(e)) from None


def sample_timeout(value: Any) -> float:
    """``sample_timeout_s`` as seconds (> 0), or :class:`RewardOptionError`."""
    try:
        t = float(SAMPLE_TIMEOUT_S if value is None else value)
    except (TypeError, ValueError):
        t = float("nan")
    if not t > 0 or t == float("inf"):
        raise RewardOptionError(f"reward sample_timeout_s must be > 0 seconds, got {value!r}")
    return t


def verifier_spec(verifier: Any, config: RewardConfig, *, option: str = "verifier") -> Any:
    """The verifier spec to build (None for ``none``): ``verifier``, else ``$VERINSTRUCT_VERIFIER``. Neither is an
    error: ``none`` must be said, since every soft constraint then comes back undecided (``undecided=fail``: 0)."""
    spec = verifier if verifier is not None else os.environ.get("VERINSTRUCT_VERIFIER")
    if spec is None or spec == "":
        raise RewardOptionError(
            f"reward option {option} is not set: give a verifier spec ({option}=openai:MODEL with base_url=...), "
            f"or {option}=none to leave soft constraints undecided (scored by undecided="
            f"{config.undecided}: {'0' if config.undecided == 'fail' else 'masked'})")
    return None if isinstance(spec, str) and spec.lower() == "none" else spec


def check_verifier_mode(verifier_mode: Any) -> str:
    if verifier_mode not in ("score", "generate"):
        raise RewardOptionError(f"reward verifier_mode must be score or generate, got {verifier_mode!r}")
    return str(verifier_mode)


def request_options(options: Mapping[str, Any]) -> tuple[RewardConfig, float]:
    """(config, sample_timeout_s) of a reward service request's options. The options that build a Scorer are the
    service's own: asking for them per request is an error naming them (never silently another verifier)."""
    scorer = sorted(k for k in options if k in SCORER_KEYS + BATCH_KEYS)
    if scorer:
        raise RewardOptionError(
            f"reward option(s) {', '.join(scorer)} configure a reward process, not a request: the reward service "
            "has its own (verif rl serve --verifier, --base-url, --verifier-mode, --sandbox-workers); "
            f"per request: {', '.join(sorted(REQUEST_KEYS))}")
    config = reward_config(options, REQUEST_KEYS)
    return config, sample_timeout(options.get("sample_timeout_s"))


class Sample(NamedTuple):
    """One response to score: ``prefilled`` (the rendered prompt left ``<think>`` open; None: unknown) and
    ``truncated`` (cut at the length limit without EOS) come from the adapter."""

    instance: Instance
    response: str
    prefilled: bool | None = None
    truncated: bool = False


class RewardInputError(ValueError):
    """A sample's ground truth cannot be read; the message names the sample and the field."""


@functools.lru_cache(maxsize=16384)
def parse_ground_truth(ground_truth: str, fallback_id: str = "", prompt: str | None = None) -> Instance:
    """``reward_model.ground_truth`` -> Instance: the typed row ``verif rl prepare`` writes, or VerIF's own
    ``{"checkers", "functions"}`` (then ``prompt`` is needed: VerIF's Parquet keeps it outside the ground truth)."""
    label = f"sample {fallback_id!r}" if fallback_id else "sample"
    try:
        gt = json.loads(ground_truth)
    except (TypeError, json.JSONDecodeError) as e:
        raise RewardInputError(f"{label}: reward_model.ground_truth is not JSON ({e}); "
                               "prepare the data with `verif rl prepare`") from None
    if not isinstance(gt, dict):
        raise RewardInputError(f"{label}: reward_model.ground_truth must be a JSON object, got {type(gt).__name__}")
    try:
        return _instance_from_ground_truth(gt, label, fallback_id, prompt)
    except SchemaError as e:  # conversion names the sample and field; any failure of one row's data is that row's
        raise RewardInputError(str(e)) from None


def _instance_from_ground_truth(gt: dict[str, Any], label: str, fallback_id: str, prompt: str | None) -> Instance:
    from verinstruct.convert import from_verif
    from verinstruct.dataset import from_row

    if "constraints" in gt:
        return from_row(gt, label)
    if "checkers" in gt:
        if prompt is None:
            prompt = gt.get("prompt") or gt.get("instruction")
        if prompt is None:
            raise RewardInputError(f"{label}: a VerIF ground truth (checkers/functions) needs the prompt: put it in "
                                   "extra_info['prompt'], or convert the data with `verif rl prepare`")
        return from_verif({"id": gt.get("id", fallback_id or "0"), "prompt": prompt, "checkers": gt["checkers"],
                           "functions": gt.get("functions", [])}, label)
    raise RewardInputError(f"{label}: reward_model.ground_truth has neither 'constraints' (typed) nor 'checkers' "
                           f"(VerIF); keys: {sorted(gt)[:8]}")


def instance_for(ground_truth: Any, extra_info: Mapping[str, Any] | None) -> Instance:
    extra = extra_info or {}
    if isinstance(ground_truth, Mapping):
        ground_truth = json.dumps(ground_truth, ensure_ascii=False, sort_keys=True)
    fallback = str(extra.get("id", extra.get("index", "")))
    prompt = extra.get("prompt")
    return parse_ground_truth(ground_truth, fallback, prompt if isinstance(prompt, str) else None)


def _urls(v: Any) -> list[str] | None:
    if v is None or v == "":
        return None
    if isinstance(v, str):
        return [u.strip() for u in v.split(",") if u.strip()]
    return [str(u) for u in v]


class BatchedReward:
    """A Scorer + a micro-batcher, scoring (instance, response) samples with one reward configuration."""

    def __init__(self, *, verifier: Any = None, verifier_mode: str | None = None, base_url: Any = None,
                 verifier_kwargs: Mapping[str, Any] | None = None, sandbox_workers: int | None = None,
                 sandbox_process_per: str = "row", max_batch: int = 1024, quiet_ms: float = 5.0, mask_value: float = 0.0, log_batches: bool = True,
                 sample_timeout_s: float = SAMPLE_TIMEOUT_S, **reward: Any) -> None:
        from verinstruct.scorer import Scorer

        self.config = reward_config(reward)  # the explicit keyword arguments above took the other options
        self.mask_value = float(mask_value)
        self.log_batches = bool(log_batches)
        self.sample_timeout_s = sample_timeout(sample_timeout_s)
        spec = verifier_spec(verifier, self.config)
        kwargs = dict(verifier_kwargs or {})
        if "mode" in kwargs:
            raise RewardOptionError(
                f"reward option verifier_kwargs.mode={kwargs['mode']!r}: the verifier's decision mode is the option "
                "verifier_mode (score/generate); mode is the registry checkers' strict/loose")
        if verifier_mode is not None:
            kwargs["verifier_mode"] = check_verifier_mode(verifier_mode)
        urls = _urls(base_url)
        if urls:
            kwargs["base_url"] = urls
        if spec is None and kwargs:
            raise RewardOptionError(f"reward options {', '.join(sorted(kwargs))} need a verifier spec "
                                    "(verifier=openai:MODEL, ...), not verifier=none")
        if sandbox_process_per not in ("row", "call"):
            raise RewardOptionError(f"reward option sandbox_process_per={sandbox_process_per!r}: must be row or call")
        try:
            self.scorer = Scorer(spec, sandbox_workers=sandbox_workers, sandbox_process_per=sandbox_process_per,
                                 **(kwargs if isinstance(spec, str) else {}))
        except TypeError as e:  # an unknown verifier_kwargs key reaches build_verifier / the backend
            raise RewardOptionError(f"reward verifier_kwargs: {e}") from None
        self.batcher: QuietFlushBatcher[Sample, RewardResult] = QuietFlushBatcher(
            self._score, max_batch=max_batch, quiet_s=quiet_ms / 1000.0, max_wait_s=max(0.5, quiet_ms / 1000.0))
        self._memo: OrderedDict[tuple[int, str, bool | None, bool], tuple[Instance, cf.Future[RewardResult]]] = \
            OrderedDict()
        self._memo_lock = threading.Lock()
        self.memo_hits = 0
        # judgements in flight on this machine's other reward workers: next to their shared verifier cache
        cache_path = kwargs.get("cache_path")
        self.claims = (Claims(Path(str(cache_path)).expanduser().with_suffix(".claims.sqlite"))
                       if spec is not None and cache_path else None)

    def _submit(self, sample: Sample) -> cf.Future[RewardResult]:
        """The sample's future: the one of an identical sample already scored or in flight, else a new one.

        verl scores each trajectory as it finishes, one sample per call, so a GRPO group's repeated answers reach
        the reward in different micro-batches; the Verifier deduplicates only inside a batch. Sharing the future
        sends each distinct (row, answer) to the judge once per process, even while the first is still waiting."""
        key = self._memo_key(sample)
        with self._memo_lock:
            hit = self._memo.get(key)
            if hit is not None and hit[0] is sample.instance and _reusable(hit[1]):
                self._memo.move_to_end(key)
                self.memo_hits += 1
                return hit[1]
            fut = self.batcher.submit(sample)  # after close (or in a forked child): fails at once
            self._memo[key] = (sample.instance, fut)
            if len(self._memo) > _MEMO_SIZE:
                self._memo.popitem(last=False)
            return fut

    @staticmethod
    def _memo_key(sample: Sample) -> tuple[int, str, bool | None, bool]:
        # ground truths are parsed once per process (parse_ground_truth's cache): one Instance object per row, kept
        # alive by the memo entry, so its id names the row while the entry exists
        return (id(sample.instance), sample.response, sample.prefilled, sample.truncated)

    def _in_memo(self, sample: Sample) -> bool:
        with self._memo_lock:
            hit = self._memo.get(self._memo_key(sample))
            return hit is not None and hit[0] is sample.instance and _reusable(hit[1])

    def _claim_key(self, sample: Sample) -> str | None:
        """The node-wide claim for this judgement (None: no claims, nothing to judge, or already in the memo)."""
        judged = sample.instance.counts()["soft"] or self.config.soft_when_none == "judge"  # the judge is asked
        if self.claims is None or not judged or self._in_memo(sample):
            return None
        inst = sample.instance
        return self.claims.key(inst.id, inst.prompt, repr(inst.constraints), sample.response, sample.prefilled,
                               sample.truncated, self.config)

    def _claimed(self, key: str | None, fut: cf.Future[RewardResult]) -> cf.Future[RewardResult]:
        if key is not None:
            claims = self.claims
            assert claims is not None
            fut.add_done_callback(lambda _: claims.release(key))
        return fut

    def _score(self, items: Sequence[Sample]) -> list[RewardResult]:
        out = reward_batch(self.scorer, [s.instance for s in items], [s.response for s in items], self.config,
                           prefilled=[s.prefilled for s in items], truncated=[s.truncated for s in items])
        if self.log_batches:
            print(summary_line(out), file=sys.stderr, flush=True)
        return out

    def score_batch(self, instances: Sequence[Instance], responses: Sequence[str], *,
                    prefilled: Sequence[bool | None] | None = None,
                    truncated: Sequence[bool] | None = None) -> list[RewardResult]:
        """A whole batch at once (TRL, benchmarks): no micro-batching needed."""
        return reward_batch(self.scorer, instances, responses, self.config, prefilled=prefilled, truncated=truncated)

    def __call__(self, sample: Sample) -> RewardResult:
        """One sample, from a thread: micro-batched; undecided (``timeout=1``) once ``sample_timeout_s`` passed."""
        key = self._claim_key(sample)
        if key is not None and not self.claims.claim(key):  # type: ignore[union-attr]
            self.claims.wait(key, self.sample_timeout_s)  # type: ignore[union-attr]
            self.claims.claim(key)  # type: ignore[union-attr]
        fut = self._claimed(key, self._submit(sample))
        try:
            return fut.result(timeout=self.sample_timeout_s)
        except cf.TimeoutError:
            return undecided_result(sample.instance, self.config, timeout=True)
        except BatcherClosed:
            return undecided_result(sample.instance, self.config)

    async def acall(self, sample: Sample) -> RewardResult:
        """One sample, from a coroutine (verl's reward loop): as :meth:`__call__`, without blocking the loop."""
        key = self._claim_key(sample)
        if key is not None and not self.claims.claim(key):  # type: ignore[union-attr]
            await self.claims.await_released(key, self.sample_timeout_s)  # type: ignore[union-attr]
            self.claims.claim(key)  # type: ignore[union-attr]
        fut = self._claimed(key, self._submit(sample))
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(fut)), self.sample_timeout_s)
        except (asyncio.TimeoutError, cf.TimeoutError):
            return undecided_result(sample.instance, self.config, timeout=True)
        except BatcherClosed:
            return undecided_result(sample.instance, self.config)

    def parts(self, result: RewardResult) -> dict[str, Any]:
        return result.to_dict(self.mask_value)

    def close(self, timeout: float = 30.0) -> None:
        """Ends within about ``timeout`` seconds even if a batch hangs: calls still waiting get undecided results."""
        self.batcher.close(timeout)
        if self.claims is not None:
            self.claims.close()
        closer = threading.Thread(target=self.scorer.close, name="verinstruct-scorer-close", daemon=True)
        closer.start()
        closer.join(max(1.0, timeout))


def _reusable(fut: cf.Future[Any]) -> bool:
    """A pending future, or one that holds a result (a failed or cancelled one is asked again)."""
    return not fut.done() or (not fut.cancelled() and fut.exception() is None)


def summary_line(results: Sequence[RewardResult]) -> str:
    """One log line per scored batch: the mean of each part (masked samples left out of ``score``)."""
    n = len(results)
    scored = [r.score for r in results if r.score is not None]

    def mean(xs: Sequence[float]) -> float:
        return sum(xs) / len(xs) if xs else float("nan")

    return (f"verinstruct reward: n={n} score={mean(scored):.4f} "
            f"hard_pass_rate={mean([r.hard_pass_rate for r in results]):.4f} "
            f"soft_score={mean([r.soft_score for r in results]):.4f} undecided={sum(r.undecided for r in results)} "
            f"masked={n - len(scored)} format_fail={sum(not r.format_ok for r in results)}")


_REWARDS: dict[str, BatchedReward] = {}
_LOCK = threading.Lock()


def shared_reward(**options: Any) -> BatchedReward:
    """The process-wide :class:`BatchedReward` for these options (built on first use, then reused)."""
    options = {k: v for k, v in options.items() if v is not None}
    key = json.dumps(options, sort_keys=True, default=str)
    with _LOCK:
        r = _REWARDS.get(key)
        if r is None:
            r = _REWARDS[key] = BatchedReward(**options)
        return r


def close_shared(timeout: float = 30.0) -> None:
    with _LOCK:
        rewards = list(_REWARDS.values())
        _REWARDS.clear()
    for r in rewards:
        r.close(timeout)


def _forget_after_fork() -> None:
    """A forked child (TRL/accelerate, user code) builds its own rewards: the parent's threads, sandbox workers and
    connections did not come along, and the lock may have been held by a thread that no longer exists."""
    global _LOCK
    _LOCK = threading.Lock()
    _REWARDS.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def split_options(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The reward options among verl's keyword arguments: verl's own keys (:data:`VERL_KEYS`) are left out, any
    other unknown key is an error naming it (a misspelt ``formla=mean`` must not train with the defaults)."""
    allowed = _REWARD_KEYS + _OWN_KEYS
    reward_config({k: v for k, v in kwargs.items() if k not in VERL_KEYS and k not in _REWARD_KEYS}, allowed)
    return {k: _plain(v) for k, v in kwargs.items() if k in allowed}


def _plain(v: Any) -> Any:
    """OmegaConf containers (from verl's config) -> plain Python."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(v, (DictConfig, ListConfig)):
            return OmegaConf.to_container(v, resolve=True)
    except ImportError:
        pass
    return v
