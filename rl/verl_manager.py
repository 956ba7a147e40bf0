"""A verl 0.9 reward manager (``reward.reward_manager.source=importlib``) for the VerIF reward.

Config::

    reward.reward_manager.source=importlib
    reward.reward_manager.name=VerIFRewardManager
    reward.reward_manager.module.path=pkg://rl.verl_manager
    +reward.reward_kwargs.verifier=openai:IF-Verifier-7B
    +reward.reward_kwargs.base_url='http://h1:8000/v1,http://h2:8000/v1'

With no reward model, verl 0.9.1 scores each trajectory as it finishes: ``AgentLoopWorker._compute_score`` sends a
one-sample ``DataProto`` to a random ``RewardLoopWorker`` (``compute_score`` -> ``run_single``);
``compute_score_batch`` (many concurrent ``run_single``) is used only with a colocated reward model. Either way
``run_single`` decodes the response and hands it to the process's micro-batcher, which turns the samples that
arrive close together into one ``Scorer`` batch.

It also reads what the text alone cannot tell: whether the rendered prompt left ``<think>`` open (R1-Distill's
and Qwen3's templates end the generation prompt with ``<think>\n``; the prompt ids are in the sample) and
whether the response was cut at ``actor_rollout_ref.rollout.response_length`` without the EOS token. Unlike ``reward.custom_reward_function`` this needs no function
file and reads its options from ``reward.reward_kwargs`` (a custom function's ``reward_kwargs`` also work).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from verl import DataProto
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from rl.reward import BatchedReward, Sample, _plain, instance_for, shared_reward, split_options
from verifier.reasoning import prompt_prefills_think


class VerlSample(NamedTuple):
    """One trajectory as the reward sees it: the decoded response and what only the token ids tell."""

    text: str
    prefilled: bool
    truncated: bool
    ground_truth: Any
    extra_info: dict[str, Any] | None


class VerlSampleReader(RewardManagerBase):
    """What a VerIF reward manager reads from verl's one-sample ``DataProto``, in process or through the reward
    service (:class:`rl.remote_verl.RemoteRewardManager`): one rule, so both score the same samples alike."""

    def __init__(self, config: Any, tokenizer: Any, compute_score: Any = None) -> None:
        super().__init__(config, tokenizer, compute_score)
        reward_cfg = config.reward
        opts: dict[str, Any] = {}
        custom = reward_cfg.get("custom_reward_function") or {}
        opts.update(_plain(custom.get("reward_kwargs") or {}))
        opts.update(_plain(reward_cfg.get("reward_kwargs") or {}))
        #: the reward options as given (reward.reward_kwargs over a custom function's reward_kwargs)
        self.reward_kwargs = opts
        rollout = (config.get("actor_rollout_ref") or {}).get("rollout") or {}
        length = rollout.get("response_length") or (config.get("data") or {}).get("max_response_length")
        self.max_response_length = int(length) if length else None
        eos = getattr(tokenizer, "eos_token_id", None)
        self.eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}
        self._prefilled_cache: dict[tuple[int, ...], bool] = {}

    def _prefilled(self, prompt_ids: list[int]) -> bool:
        """Whether the rendered prompt leaves ``<think>`` open (the tail is enough: the generation prompt)."""
        tail = tuple(prompt_ids[-16:])
        hit = self._prefilled_cache.get(tail)
        if hit is None:
            hit = self._prefilled_cache[tail] = prompt_prefills_think(self.tokenizer.decode(list(tail)))
        return hit

    async def read(self, data: DataProto) -> VerlSample:
        item = data[-1]  # multi-sequence outputs: the last sequence is the answer
        response_ids = item.batch["responses"]
        valid = int(item.batch["attention_mask"][-response_ids.shape[-1]:].sum())
        ids = response_ids[:valid]
        text = await self.loop.run_in_executor(None, lambda: self.tokenizer.decode(ids, skip_special_tokens=True))
        truncated = (self.max_response_length is not None and valid >= self.max_response_length
                     and not (valid and int(ids[-1]) in self.eos_ids))
        prompt_ids = item.batch["prompts"]
        prompt_len = prompt_ids.shape[-1]
        prompt_valid = item.batch["attention_mask"][:prompt_len].bool()
        prefilled = self._prefilled(prompt_ids[prompt_valid].tolist())
        nt = item.non_tensor_batch
        extra = nt.get("extra_info")
        return VerlSample(text, prefilled, bool(truncated), nt["reward_model"]["ground_truth"],
                          extra if isinstance(extra, dict) else None)


class VerIFRewardManager(VerlSampleReader):
    """Per-sample ``run_single`` over a shared, batching :class:`rl.reward.BatchedReward`."""

    def __init__(self, config: Any, tokenizer: Any, compute_score: Any = None, reward_router_address: Any = None,
                 reward_model_tokenizer: Any = None, **_: Any) -> None:
        super().__init__(config, tokenizer, compute_score)
        self.options = split_options(self.reward_kwargs)
        self.reward: BatchedReward = shared_reward(**self.options)

    async def run_single(self, data: DataProto) -> dict:
        s = await self.read(data)
        inst = instance_for(s.ground_truth, s.extra_info)
        result = await self.reward.acall(Sample(inst, s.text, s.prefilled, s.truncated))
        parts = self.reward.parts(result)
        return {"reward_score": parts["score"], "reward_extra_info": parts}
