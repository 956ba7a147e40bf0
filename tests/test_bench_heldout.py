"""VerInstruct held-out: loader on the raw VerIF fixtures, metrics (hard, soft, mean VerIF reward) by hand."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from benchmarks.responses import ResponseGenerator
from benchmarks.runner import RunOptions, run_benchmark
from benchmarks.verinstruct_heldout import BENCHMARK as HELDOUT
from verifier import Verifier, load_template
from verifier.backends.base import GenerationConfig, GenResult, Messages

FIXTURE = Path(__file__).parent / "fixtures" / "verinstruct" / "verinstruct_fixtures.jsonl"


def test_loader_reads_raw_verif_rows() -> None:
    samples = HELDOUT.load_samples(FIXTURE)
    assert len(samples) == 34 and samples[0].id == "vi-001"
    inst = samples[0].turns[0].instance
    assert inst is not None and [c.kind for c in inst.constraints] == ["hard", "hard", "soft"]
    assert samples[0].turns[0].messages[-1]["content"] == inst.prompt


class NoIfBad:
    """Judge: 'No' when the judged text contains BAD, else 'Yes'."""

    kind, model = "fake", "fake-judge"

    def generate(self, batch: Sequence[Messages], config: GenerationConfig) -> list[GenResult]:
        return [GenResult("No" if "BAD" in "\n".join(m["content"] for m in msgs) else "Yes") for msgs in batch]

    def score(self, batch, candidates):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def close(self) -> None:
        pass


def _reg(name: str) -> dict:
    return {"name": name, "kind": "hard", "text": name, "check": {"type": "registry", "checker": name, "params": {}}}


SOFT = {"name": "tone", "kind": "soft", "text": "Friendly tone.", "check": {"type": "llm"}}


def test_metrics_against_hand_computed_numbers(tmp_path: Path) -> None:
    from verinstruct.scorer import Scorer

    rows = [
        {"id": "a", "prompt": "p", "constraints": [_reg("startend:quotation"), _reg("punctuation:no_comma"), SOFT]},
        {"id": "b", "prompt": "q", "constraints": [_reg("punctuation:no_comma"), SOFT]},
        {"id": "c", "prompt": "r", "constraints": [_reg("punctuation:no_comma")]},
    ]
    samples = HELDOUT.to_samples(rows)
    # a: hard 1/2 (comma), soft yes -> reward 0.5; b: hard 1/1, soft no -> 0; c: hard 0/1, no soft -> 0
    gen = ResponseGenerator({"a": ['"hello, friend"'], "b": ["BAD answer"], "c": ["x, y"]}, "t")
    verifier = Verifier(backend=NoIfBad(), mode="generate", template=load_template("en"))
    with Scorer(verifier) as sc:
        res = run_benchmark(HELDOUT, samples, gen, lambda _: sc, tmp_path, RunOptions(progress=False))
    m = HELDOUT.metrics(res.records)
    assert list(m) == ["hard_pass_rate", "soft_pass_rate", "verif_reward"]
    assert m["hard_pass_rate"] == {"passed": 2, "total": 4, "rate": 0.5, "undecided": 0}
    assert m["soft_pass_rate"] == {"passed": 1, "total": 2, "rate": 0.5, "undecided": 0}
    assert m["verif_reward"] == {"passed": 0.5, "total": 3, "rate": 0.5 / 3, "undecided": 0}
    # the joint judgement behind each reward is stored with the sample (c has no soft constraint)
    joint = {r["id"]: r["turns"][0]["extra"]["joint_soft"] for r in res.records}
    assert (joint["a"]["passed"], joint["b"]["passed"], joint["c"]) == (True, False, None)


def test_without_a_judge_soft_constraints_are_undecided_and_counted(tmp_path: Path) -> None:
    from verinstruct.scorer import Scorer

    samples = HELDOUT.to_samples([{"id": "a", "prompt": "p", "constraints": [_reg("punctuation:no_comma"), SOFT]}])
    with Scorer(None) as sc:
        res = run_benchmark(HELDOUT, samples, ResponseGenerator({"a": ["ok"]}, "t"), lambda _: sc, tmp_path,
                            RunOptions(progress=False))
    m = HELDOUT.metrics(res.records)
    assert m["soft_pass_rate"] == {"passed": 0, "total": 1, "rate": 0.0, "undecided": 1}
    assert m["verif_reward"]["passed"] == 0.0


def test_verif_reward_is_the_rl_reward_on_the_raw_response(tmp_path: Path) -> None:
    """Issue 14's case: ``"<think>the user wants..."`` (never closed) with one hard check. The RL reward calls
    it a format failure (0.0, ``format_ok=0``); the benchmark's ``verif_reward`` must say the same, though the
    per-constraint scores judge the empty answer the runner keeps for an unfinished think."""
    from verinstruct.reward import RewardConfig, reward_batch  # what the verl reward (rl.reward) calls
    from verinstruct.scorer import Scorer

    samples = HELDOUT.to_samples([{"id": "a", "prompt": "p", "constraints": [_reg("punctuation:no_comma")]}])
    text = "<think>the user wants no commas"
    with Scorer(None) as sc:
        res = run_benchmark(HELDOUT, samples, ResponseGenerator({"a": [text]}, "t"), lambda _: sc, tmp_path,
                            RunOptions(progress=False))
        rl = reward_batch(sc, [samples[0].turns[0].instance], [text], RewardConfig())
    reward = res.records[0]["turns"][0]["extra"]["reward"]
    assert (rl[0].score, rl[0].format_ok) == (0.0, 0)
    assert (reward["score"], reward["format_ok"]) == (0.0, 0)
    assert HELDOUT.metrics(res.records)["verif_reward"]["passed"] == 0.0
