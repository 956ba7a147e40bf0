"""The VerIF reward as a TRL ``GRPOTrainer`` reward function.

TRL calls ``reward_func(prompts=..., completions=..., completion_ids=..., **dataset_columns, trainer_state=...,
log_metric=..., log_extra=...)`` once per generation batch and wants one float per completion (``None``
excludes that reward for the sample). Here the whole batch goes through the ``Scorer`` at once; masked samples
come back as ``None``. The reward parts are logged through TRL's ``log_metric`` as ``verinstruct/<part>``
(batch means) and per completion through ``log_extra``.

Data: the Parquet of ``verif rl prepare`` works as is (``prompt`` chat messages, ``reward_model`` with the
ground truth); a plain ``ground_truth`` column (typed row JSON) works too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rl.reward import BatchedReward, instance_for

LOGGED_PARTS = ("hard_pass_rate", "soft_score", "undecided", "masked", "format_ok")


def completion_text(completion: Any) -> str:
    """A standard (string) or conversational (list of messages) completion -> its text."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence):
        texts = [m.get("content") for m in completion if isinstance(m, Mapping) and m.get("role") == "assistant"]
        texts = [t for t in texts if isinstance(t, str)]
        if texts:
            return texts[-1]
        if not completion:
            return ""
    raise TypeError(f"completion must be a string or a list of chat messages, got {type(completion).__name__}")


class VerIFReward:
    """``GRPOTrainer(reward_funcs=[VerIFReward(verifier=..., formula="verif")], ...)``."""

    def __init__(self, reward: BatchedReward | None = None, *, name: str = "verif", **options: Any) -> None:
        self.reward = reward if reward is not None else BatchedReward(**options)
        self.__name__ = name  # TRL names the reward by it in its logs (rewards/<name>/mean)
        self.last_parts: list[dict[str, Any]] = []

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], *, reward_model: Sequence[Any] | None = None,
                 ground_truth: Sequence[Any] | None = None, extra_info: Sequence[Any] | None = None,
                 log_metric: Any = None, log_extra: Any = None, **_: Any) -> list[float | None]:
        n = len(completions)
        truths = ground_truth
        if truths is None and reward_model is not None:
            truths = [rm["ground_truth"] if isinstance(rm, Mapping) else None for rm in reward_model]
        if truths is None or len(truths) != n:
            raise ValueError("VerIFReward needs a 'reward_model' (from `verif rl prepare`) or 'ground_truth' dataset "
                             f"column with one value per completion; got {None if truths is None else len(truths)} "
                             f"for {n} completions")
        extras = list(extra_info) if extra_info is not None else [None] * n
        instances = [instance_for(t, e if isinstance(e, Mapping) else None) for t, e in zip(truths, extras, strict=True)]
        texts = [completion_text(c) for c in completions]
        results = self.reward.score_batch(instances, texts)
        parts = [r.to_dict(None) for r in results]
        self.last_parts = parts
        if log_metric is not None:
            for key in LOGGED_PARTS:
                log_metric(f"verinstruct/{key}", sum(float(p[key]) for p in parts) / max(1, n))
        if log_extra is not None:
            for key in ("hard_pass_rate", "soft_score", "masked"):
                log_extra(f"verinstruct/{key}", [p[key] for p in parts])
        return [r.score for r in results]

    def close(self) -> None:
        self.reward.close()


def embedded_model_dir() -> Any:
    """The embedded SmolLM2 as a transformers model folder (tokenizer included); dequantised on first use."""
    from verifier.embedded import dequantised_dir, load_default, locate_default_gguf

    target = dequantised_dir(locate_default_gguf())
    if not (target / "config.json").is_file():
        load_default()  # dequantises into target (it returns the GGUF path on that first run)
    return target


def load_prepared(path: str) -> Any:
    """A ``verif rl prepare`` Parquet as a ``datasets.Dataset`` for ``GRPOTrainer`` (columns kept as they are)."""
    import datasets

    return datasets.load_dataset("parquet", data_files=str(path), split="train")


def train(data: str, model: str | None, output_dir: str, *, max_steps: int = 3, num_generations: int = 2,
          max_completion_length: int = 32, batch_size: int = 2, learning_rate: float = 1e-6, beta: float = 0.0,
          logging_steps: int = 1, report_to: str = "none", reward_options: Mapping[str, Any] | None = None,
          seed: int = 0) -> Any:
    """A small GRPO run with TRL on CPU (or wherever ``accelerate`` puts it); returns the trainer.

    ``model`` None: the embedded SmolLM2-135M-Instruct (dequantised into the verinstruct cache on first use).
    """
    from trl import GRPOConfig, GRPOTrainer

    if model is None:
        model = str(embedded_model_dir())
    config = GRPOConfig(
        output_dir=output_dir, max_steps=max_steps, num_generations=num_generations,
        per_device_train_batch_size=batch_size, generation_batch_size=batch_size,
        max_completion_length=max_completion_length, learning_rate=learning_rate, beta=beta,
        logging_steps=logging_steps, report_to=report_to, use_cpu=True, bf16=False, fp16=False, seed=seed,
        save_strategy="no", dataloader_num_workers=0, disable_tqdm=True,
        # TRL turns gradient checkpointing on by default, which also turns the KV cache off while generating:
        # on CPU with a small model that makes generation several times slower for no memory worth saving
        gradient_checkpointing=False,
    )
    reward = VerIFReward(**dict(reward_options or {}))
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=config, train_dataset=load_prepared(data))
    try:
        trainer.train()
    finally:
        reward.close()
    return trainer
