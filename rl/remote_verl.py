"""A verl 0.9 reward manager that scores through the reward service (``verif rl serve``, :mod:`rl.remote`).

Config::

    reward.reward_manager.source=importlib
    reward.reward_manager.name=RemoteRewardManager
    reward.reward_manager.module.path=pkg://rl.remote_verl
    +reward.reward_kwargs.reward_url=http://reward-svc:8100      # or $VERIF_REWARD_URL
    +reward.reward_kwargs.formula=verif                          # any reward option, by name

``run_single`` is called once per sample, concurrently, by ``RewardLoopWorker.compute_score_batch``; each
call posts its sample from the process's one background loop, and the service batches the concurrent
requests of every worker. Unlike :class:`rl.verl_manager.VerIFRewardManager` the worker holds no sandbox,
verifier client or cache: those live in the service.
"""

from __future__ import annotations

import asyncio
from typing import Any

from verl import DataProto
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from rl.remote import _background, result_parts, sample_item, shared_client
from rl.reward import _plain


class RemoteRewardManager(RewardManagerBase):
    """Per-sample ``run_single`` over :class:`rl.remote.RewardClient`."""

    def __init__(self, config: Any, tokenizer: Any, compute_score: Any = None, reward_router_address: Any = None,
                 reward_model_tokenizer: Any = None, **_: Any) -> None:
        super().__init__(config, tokenizer, compute_score)
        reward_cfg = config.reward
        opts: dict[str, Any] = {}
        custom = reward_cfg.get("custom_reward_function") or {}
        opts.update(_plain(custom.get("reward_kwargs") or {}))
        opts.update(_plain(reward_cfg.get("reward_kwargs") or {}))
        self.client, self.mask_value = shared_client(**opts)

    async def run_single(self, data: DataProto) -> dict:
        item = data[-1]  # multi-sequence outputs: the last sequence is the answer
        response_ids = item.batch["responses"]
        valid = int(item.batch["attention_mask"][-response_ids.shape[-1]:].sum())
        ids = response_ids[:valid]
        text = await self.loop.run_in_executor(None, lambda: self.tokenizer.decode(ids, skip_special_tokens=True))
        nt = item.non_tensor_batch
        extra = nt.get("extra_info")
        sample = sample_item(nt["reward_model"]["ground_truth"], text, extra if isinstance(extra, dict) else None)
        [res] = await asyncio.wrap_future(_background().submit(self.client.ascore([sample])))
        parts = result_parts(res, self.mask_value)
        return {"reward_score": parts["score"], "reward_extra_info": parts}
