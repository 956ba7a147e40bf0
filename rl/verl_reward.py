"""verl ``reward.custom_reward_function``: the VerIF reward, one call per sample, batched underneath.

Config (verl 0.9)::

    reward.custom_reward_function.path=pkg://rl.verl_reward
    reward.custom_reward_function.name=compute_score_async      # or compute_score
    +reward.custom_reward_function.reward_kwargs.verifier=openai:IF-Verifier-7B
    +reward.custom_reward_function.reward_kwargs.base_url='http://h1:8000/v1,http://h2:8000/v1'
    +reward.custom_reward_function.reward_kwargs.formula=verif

verl's ``RewardLoopWorker.compute_score_batch`` starts one task per sample; the naive manager awaits
``compute_score_async`` (or runs ``compute_score`` in an executor thread). Both go through the process's
:class:`rl.reward.BatchedReward`, whose micro-batcher turns the concurrent calls back into ``Scorer``
batches. The result is a dict with ``score`` and its parts, the same keys for every sample.

A custom function sees only the decoded response: it cannot tell a prefilled ``<think>`` (set
``think_prefilled=true`` for R1-Distill / Qwen3 thinking templates) or a truncated response. The recipes use
:mod:`rl.verl_manager`, which reads both from the token ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rl.reward import Sample, instance_for, shared_reward, split_options


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None,
                  **kwargs: Any) -> dict[str, Any]:
    """Blocking per-sample reward (verl calls it from executor threads, concurrently)."""
    reward = shared_reward(**split_options(kwargs))
    inst = instance_for(ground_truth, extra_info)
    return reward.parts(reward(Sample(inst, solution_str)))


async def compute_score_async(data_source: str, solution_str: str, ground_truth: Any,
                              extra_info: Mapping[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    """Per-sample reward for verl's event loop: waits for its batch without blocking the loop."""
    reward = shared_reward(**split_options(kwargs))
    inst = instance_for(ground_truth, extra_info)
    return reward.parts(await reward.acall(Sample(inst, solution_str)))
