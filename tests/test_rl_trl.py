"""TRL adapter: the reward function's contract, and 2 real GRPOTrainer steps on CPU with the embedded SmolLM2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import rl_fakes as fakes

HERE = Path(__file__).resolve().parent
RAW = HERE / "fixtures" / "verinstruct" / "verinstruct_fixtures.jsonl"
ROWS = [json.loads(x) for x in RAW.read_text().splitlines() if x.strip()]




@pytest.fixture(scope="module")
def judge():
    with fakes.judge_server() as (url, j):
        yield url, j


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rl.prepare import prepare

    out = tmp_path_factory.mktemp("trl") / "train.parquet"
    prepare(RAW, out, limit=4)
    return out


def test_reward_function_contract(judge, prepared: Path) -> None:
    """Conversational completions, dataset columns as kwargs, one float per completion, None where masked."""
    import pyarrow.parquet as pq

    from rl.trl import VerIFReward
    from verinstruct.convert import from_verif
    from verinstruct.reward import RewardConfig, reward_batch
    from verinstruct.scorer import Scorer

    url, _ = judge
    rows = pq.read_table(prepared).to_pylist()
    texts = [ROWS[0]["response"], ROWS[0]["response"] + " BAD", ROWS[1]["response"], "<think>open"]
    idx = [0, 0, 1, 1]
    completions = [[{"role": "assistant", "content": t}] for t in texts]
    logged: dict[str, float] = {}
    extra: dict[str, list] = {}
    for policy in ("fail", "mask"):
        fn = VerIFReward(verifier="openai:fake-judge", base_url=url, unfinished_think=policy)
        out = fn(prompts=[rows[i]["prompt"] for i in idx], completions=completions,
                 reward_model=[rows[i]["reward_model"] for i in idx], extra_info=[rows[i]["extra_info"] for i in idx],
                 log_metric=logged.__setitem__, log_extra=extra.__setitem__, trainer_state=None)
        fn.close()
        assert len(out) == 4 and fn.__name__ == "verif"
        assert out[3] == (0.0 if policy == "fail" else None)
    with Scorer("openai:fake-judge", base_url=[url]) as scorer:
        direct = reward_batch(scorer, [from_verif(ROWS[i]) for i in idx], texts, RewardConfig())
    assert out[:3] == pytest.approx([r.score for r in direct[:3]])
    assert out[0] > out[1] or direct[0].hard_pass_rate == 0
    assert set(logged) == {f"verinstruct/{k}" for k in ("hard_pass_rate", "soft_score", "undecided", "masked", "format_ok")}
    assert logged["verinstruct/masked"] == 0.25 and len(extra["verinstruct/hard_pass_rate"]) == 4
    # plain-string completions work too
    fn = VerIFReward(verifier="openai:fake-judge", base_url=url)
    assert fn(prompts=["p"], completions=[ROWS[0]["response"]], reward_model=[rows[0]["reward_model"]]) == \
        pytest.approx([direct[0].score])
    with pytest.raises(ValueError, match="reward_model"):
        fn(prompts=["p"], completions=["x"])
    fn.close()


@pytest.mark.slow
def test_grpo_trainer_two_cpu_steps_log_the_reward_parts(judge, prepared: Path, tmp_path: Path) -> None:
    try:
        import trl  # noqa: F401
    except ImportError as e:
        if os.environ.get("CI"):
            pytest.fail(f"trl is not installed ({e}); CI installs the rl extra")
        pytest.skip("trl is not installed (pip install -e '.[rl]')")
    import torch

    from rl.trl import train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared CPU: more threads than free cores makes torch spin, many times slower
    url, fake = judge
    before = fake.requests
    try:
        trainer = train(str(prepared), None, str(tmp_path / "out"), max_steps=2, num_generations=2,
                        max_completion_length=8, batch_size=2,
                        reward_options={"verifier": "openai:fake-judge", "base_url": url})
    finally:
        torch.set_num_threads(threads)
    logs = [e for e in trainer.state.log_history if "verinstruct/hard_pass_rate" in e]
    assert len(logs) == 2
    for e in logs:
        assert {"rewards/verif/mean", "verinstruct/soft_score", "verinstruct/masked", "verinstruct/format_ok"} <= set(e)
        assert 0.0 <= e["verinstruct/hard_pass_rate"] <= 1.0
    assert trainer.state.global_step == 2
    assert fake.requests > before  # the soft constraints reached the verifier
