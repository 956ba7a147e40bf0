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
verifier client or cache: those live in the service. It reads each sample as that manager does
(:class:`rl.verl_manager.VerlSampleReader`: the prompt ids tell a prefilled ``<think>``, the response length and
EOS a truncation) and sends both along, so the service scores exactly what the in-process reward would.
"""

from __future__ import annotations

import asyncio
from typing import Any

from verl import DataProto

from rl.remote import _background, result_parts, sample_item, shared_client
from rl.verl_manager import VerlSampleReader


class RemoteRewardManager(VerlSampleReader):
    """Per-sample ``run_single`` over :class:`rl.remote.RewardClient`."""

    def __init__(self, config: Any, tokenizer: Any, compute_score: Any = None, reward_router_address: Any = None,
                 reward_model_tokenizer: Any = None, **_: Any) -> None:
        super().__init__(config, tokenizer, compute_score)
        self.client, self.mask_value = shared_client(**self.reward_kwargs)

    async def run_single(self, data: DataProto) -> dict:
        s = await self.read(data)
        sample = sample_item(s.ground_truth, s.text, s.extra_info, prefilled=s.prefilled, truncated=s.truncated)
        [res] = await asyncio.wrap_future(_background().submit(self.client.ascore([sample])))
        parts = result_parts(res, self.mask_value)
        return {"reward_score": parts["score"], "reward_extra_info": parts}
