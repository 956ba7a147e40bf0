"""A verl 0.9 reward manager (``reward.reward_manager.source=importlib``) for the VerIF reward.

Config::

    reward.reward_manager.source=importlib
    reward.reward_manager.name=VerIFRewardManager
    reward.reward_manager.module.path=pkg://rl.verl_manager
    +reward.reward_kwargs.verifier=openai:IF-Verifier-7B
    +reward.reward_kwargs.base_url='http://h1:8000/v1,http://h2:8000/v1'

``run_single`` is called once per sample, concurrently, by ``RewardLoopWorker.compute_score_batch``; it
decodes the response and hands (instance, text) to the process's micro-batcher, so the ``Scorer`` sees the
worker's whole share of the batch at once. Unlike ``reward.custom_reward_function`` this needs no function
file and reads its options from ``reward.reward_kwargs`` (a custom function's ``reward_kwargs`` also work).
"""

from __future__ import annotations

from typing import Any

from verl import DataProto
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from rl.reward import BatchedReward, _plain, instance_for, shared_reward, split_options


class VerIFRewardManager(RewardManagerBase):
    """Per-sample ``run_single`` over a shared, batching :class:`rl.reward.BatchedReward`."""

    def __init__(self, config: Any, tokenizer: Any, compute_score: Any = None, reward_router_address: Any = None,
                 reward_model_tokenizer: Any = None, **_: Any) -> None:
        super().__init__(config, tokenizer, compute_score)
        reward_cfg = config.reward
        opts: dict[str, Any] = {}
        custom = reward_cfg.get("custom_reward_function") or {}
        opts.update(_plain(custom.get("reward_kwargs") or {}))
        opts.update(_plain(reward_cfg.get("reward_kwargs") or {}))
        self.options = split_options(opts)
        self.reward: BatchedReward = shared_reward(**self.options)

    async def run_single(self, data: DataProto) -> dict:
        item = data[-1]  # multi-sequence outputs: the last sequence is the answer
        response_ids = item.batch["responses"]
        valid = int(item.batch["attention_mask"][-response_ids.shape[-1]:].sum())
        ids = response_ids[:valid]
        text = await self.loop.run_in_executor(None, lambda: self.tokenizer.decode(ids, skip_special_tokens=True))
        nt = item.non_tensor_batch
        extra = nt.get("extra_info")
        inst = instance_for(nt["reward_model"]["ground_truth"], extra if isinstance(extra, dict) else None)
        result = await self.reward.batcher.acall((inst, text))
        parts = self.reward.parts(result)
        return {"reward_score": parts["score"], "reward_extra_info": parts}
