"""An install that launches, and loud reward configuration.

``.[rl]`` must bring everything verl 0.9.1's ``main_ppo`` imports on its way to ``TaskRunnerV1`` (the default v1
trainer) before it asks for a GPU: a plain ``verl`` install stopped with ``No module named 'transfer_queue'``.
Reward options that are misspelt or missing must stop the run at construction, naming the option.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import rl_fakes as fakes

#: what `python -m verl.trainer.main_ppo` imports up to TaskRunnerV1.run and the agent/reward loops it starts
LAUNCH_MODULES = (
    "verl.trainer.main_ppo",
    "transfer_queue",  # TaskRunnerV1.run
    "verl.trainer.ppo.v1",  # the v1 trainers and AgentLoopManagerTQ
    "verl.experimental.agent_loop.agent_loop",  # cachetools
    "verl.experimental.agent_loop.single_turn_agent_loop",
    "verl.experimental.reward_loop.reward_loop",
    "zmq",
    "rl.verl_manager",  # the recipes' reward manager
)


@pytest.mark.parametrize("module", LAUNCH_MODULES)
def test_the_rl_extra_imports_what_the_trainer_imports_at_launch(module: str) -> None:
    try:
        importlib.import_module("verl")
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("verl is not installed; CI installs the rl extra")
        pytest.skip("verl is not installed (pip install -e '.[rl]')")
    importlib.import_module(module)  # fails (in CI too) when the rl extra misses one of verl's launch imports


# ------------------------------------------------------------------------------------------- options

from rl.reward import BatchedReward, RewardOptionError, Sample, split_options  # noqa: E402
from verinstruct.convert import from_verif  # noqa: E402
from verinstruct.schema import Instance  # noqa: E402


@pytest.mark.parametrize(("options", "named"), [
    ({"verifier": "none", "formla": "mean"}, "formla"),
    ({"verifier": "none", "undecide": "mask"}, "undecide"),
    ({"verifier": "none", "formula": "bogus"}, "formula"),
    ({"verifier": "openai:m", "base_url": "http://127.0.0.1:9/v1", "verifier_kwargs": {"mode": "generate"}},
     "verifier_mode"),
    ({"verifier": "none", "mode": "score"}, "verifier_mode"),  # the checkers' mode is strict/loose
    ({"verifier": "openai:m", "base_url": "http://127.0.0.1:9/v1", "verifier_mode": "think"}, "verifier_mode"),
    ({"verifier": "none", "sample_timeout_s": 0}, "sample_timeout_s"),
])
def test_bad_reward_options_fail_at_construction_naming_the_option(options: dict, named: str) -> None:
    with pytest.raises(RewardOptionError, match=named):
        BatchedReward(**options)


def test_split_options_rejects_unknown_keys_and_ignores_verls_own() -> None:
    assert split_options({"formula": "mean", "reward_router_address": "x", "reward_model_tokenizer": None}) == {
        "formula": "mean"}
    with pytest.raises(RewardOptionError, match=r"formla.*allowed: .*formula"):
        split_options({"formla": "mean"})


def test_an_omitted_verifier_is_an_error_unless_none_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VERINSTRUCT_VERIFIER", raising=False)
    with pytest.raises(RewardOptionError, match="verifier is not set.*verifier=none"):
        BatchedReward()
    r = BatchedReward(verifier="none")  # said explicitly: soft constraints undecided, by the undecided policy
    r.close()


def test_verifier_mode_reaches_the_verifier() -> None:
    r = BatchedReward(verifier="openai:m", base_url="http://127.0.0.1:9/v1", verifier_mode="generate")
    try:
        assert r.scorer.verifier is not None and r.scorer.verifier.mode == "generate"
    finally:
        r.close()


# ------------------------------------------------------------------------------------------- time budget

def _first_row() -> tuple[dict[str, Any], Instance]:
    """The first VerIF fixture row and its Instance."""
    raw = Path(__file__).resolve().parent / "fixtures" / "verinstruct" / "verinstruct_fixtures.jsonl"
    row = json.loads(raw.read_text().splitlines()[0])
    return row, from_verif(row)


def test_a_sample_past_its_deadline_is_undecided_with_timeout_flag() -> None:
    """A judge slower than the per-sample budget: the sample gets the undecided policy (fail: 0) and timeout=1,
    and close() returns although the batch is still waiting on the judge."""
    row, inst = _first_row()
    with fakes.judge_server(latency=3.0) as (url, _):
        for undecided, score in (("fail", 0.0), ("mask", None)):
            r = BatchedReward(verifier="openai:fake-judge", base_url=url, sample_timeout_s=0.2, undecided=undecided)
            res = r(Sample(inst, row["response"]))
            assert (res.score, res.timeout, res.undecided) == (score, True, inst.counts()["hard"] + inst.counts()["soft"])
            assert r.parts(res)["timeout"] == 1
            t0 = time.monotonic()
            r.close(timeout=0.5)
            assert time.monotonic() - t0 < 60  # bounded (not a speed check: the judge would hold it for 3 s)


def test_two_workers_judge_a_repeated_answer_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """verl sends a GRPO group's repeats to random reward workers: with the recipes' shared verifier cache, a
    worker that finds the same judgement in flight on another worker waits for it instead of asking again."""
    row, inst = _first_row()
    assert inst.counts()["soft"]
    with fakes.judge_server(latency=1.0) as (url, judge):
        opts = {"verifier": "openai:fake-judge", "base_url": url, "verifier_mode": "generate", "log_batches": False,
                "verifier_kwargs": {"cache_path": str(tmp_path / "verifier_cache.sqlite")}}
        a, b = BatchedReward(**opts), BatchedReward(**opts)

        async def both():  # type: ignore[no-untyped-def]
            return await asyncio.gather(a.acall(Sample(inst, row["response"])), b.acall(Sample(inst, row["response"])))

        ra, rb = asyncio.run(both())
        a.close()
        b.close()
    assert ra == rb and ra.soft_score == 1.0
    assert len(judge.seen) == 1, judge.seen  # one judgement, asked once
