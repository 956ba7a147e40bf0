"""The per-process batched reward shared by the verl function, the verl manager, TRL and the benchmark.

One :class:`BatchedReward` per process and configuration: it owns a :class:`verinstruct.Scorer` (sandbox
workers + verifier, built once) and a :class:`rl.batcher.MicroBatcher` in front of it. Samples arrive as
(ground_truth, response) pairs; ground truths are parsed once (cached) into ``Instance`` objects.

Configuration comes as keyword arguments (verl: ``reward.custom_reward_function.reward_kwargs`` or
``reward.reward_kwargs``; TRL / Python: constructor arguments):

* ``formula``, ``undecided``, ``unfinished_think``, ``soft_code``, ``mode``: see :mod:`verinstruct.reward`;
* ``verifier``: a verifier spec (``openai:IF-Verifier-7B``, ``transformers:default``, ``none``); default from
  ``$VERINSTRUCT_VERIFIER``, else ``none`` (soft constraints undecided: the policy then decides);
* ``base_url``: one URL or a list (or a comma-separated string) of OpenAI-compatible servers;
* ``verifier_kwargs``: a dict for ``build_verifier`` (``mode``, ``template``, ``max_tokens``, ...);
* ``sandbox_workers``; ``max_batch``, ``quiet_ms`` (micro-batching); ``mask_value`` (verl's score for a
  masked sample, default 0.0, always flagged by ``masked=1``); ``log_batches`` (default True: one line per
  scored batch on stderr with the means of the parts; verl's trainer logs only ``score`` per step).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from rl.batcher import MicroBatcher
from verinstruct.reward import RewardConfig, RewardResult, reward_batch
from verinstruct.schema import Instance

_REWARD_KEYS = ("formula", "undecided", "unfinished_think", "soft_code", "mode")
_OWN_KEYS = ("verifier", "base_url", "verifier_kwargs", "sandbox_workers", "max_batch", "quiet_ms", "mask_value",
             "log_batches")


class RewardInputError(ValueError):
    """A sample's ground truth cannot be read; the message names the sample and the field."""


@functools.lru_cache(maxsize=16384)
def parse_ground_truth(ground_truth: str, fallback_id: str = "", prompt: str | None = None) -> Instance:
    """``reward_model.ground_truth`` -> Instance: the typed row ``verif rl prepare`` writes, or VerIF's own
    ``{"checkers", "functions"}`` (then ``prompt`` is needed: VerIF's Parquet keeps it outside the ground truth)."""
    from verinstruct.convert import from_verif
    from verinstruct.dataset import from_row

    label = f"sample {fallback_id!r}" if fallback_id else "sample"
    try:
        gt = json.loads(ground_truth)
    except (TypeError, json.JSONDecodeError) as e:
        raise RewardInputError(f"{label}: reward_model.ground_truth is not JSON ({e}); "
                               "prepare the data with `verif rl prepare`") from None
    if not isinstance(gt, dict):
        raise RewardInputError(f"{label}: reward_model.ground_truth must be a JSON object, got {type(gt).__name__}")
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

    def __init__(self, *, verifier: Any = None, base_url: Any = None, verifier_kwargs: Mapping[str, Any] | None = None,
                 sandbox_workers: int | None = None, max_batch: int = 1024, quiet_ms: float = 5.0,
                 mask_value: float = 0.0, log_batches: bool = True, **reward: Any) -> None:
        from verinstruct.scorer import Scorer

        unknown = sorted(set(reward) - set(_REWARD_KEYS))
        if unknown:
            raise TypeError(f"unknown reward option(s) {', '.join(unknown)}; expected "
                            f"{', '.join(_REWARD_KEYS + _OWN_KEYS)}")
        self.config = RewardConfig(**reward)
        self.mask_value = float(mask_value)
        self.log_batches = bool(log_batches)
        spec = verifier if verifier is not None else os.environ.get("VERINSTRUCT_VERIFIER", "none")
        if isinstance(spec, str) and spec.lower() in ("none", ""):
            spec = None
        kwargs = dict(verifier_kwargs or {})
        urls = _urls(base_url)
        if urls:
            kwargs["base_url"] = urls
        if spec is None and kwargs:
            raise ValueError(f"reward options {', '.join(sorted(kwargs))} need a verifier spec (verifier=openai:MODEL, ...)")
        self.scorer = Scorer(spec, sandbox_workers=sandbox_workers, **(kwargs if isinstance(spec, str) else {}))
        self.batcher: MicroBatcher[tuple[Instance, str], RewardResult] = MicroBatcher(
            self._score, max_batch=max_batch, quiet_s=quiet_ms / 1000.0, max_wait_s=max(0.5, quiet_ms / 1000.0))

    def _score(self, items: Sequence[tuple[Instance, str]]) -> list[RewardResult]:
        out = reward_batch(self.scorer, [i for i, _ in items], [r for _, r in items], self.config)
        if self.log_batches:
            print(summary_line(out), file=sys.stderr, flush=True)
        return out

    def score_batch(self, instances: Sequence[Instance], responses: Sequence[str]) -> list[RewardResult]:
        """A whole batch at once (TRL, benchmarks): no micro-batching needed."""
        return reward_batch(self.scorer, instances, responses, self.config)

    def parts(self, result: RewardResult) -> dict[str, Any]:
        return result.to_dict(self.mask_value)

    def close(self) -> None:
        self.batcher.close()
        self.scorer.close()


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


def close_shared() -> None:
    with _LOCK:
        rewards = list(_REWARDS.values())
        _REWARDS.clear()
    for r in rewards:
        r.close()


def split_options(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The reward options among verl's keyword arguments (verl adds its own, e.g. reward_router_address)."""
    return {k: _plain(v) for k, v in kwargs.items() if k in _REWARD_KEYS + _OWN_KEYS}


def _plain(v: Any) -> Any:
    """OmegaConf containers (from verl's config) -> plain Python."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(v, (DictConfig, ListConfig)):
            return OmegaConf.to_container(v, resolve=True)
    except ImportError:
        pass
    return v
