"""verinstruct.reward: the formulas, the undecided policies, reasoning removal and the batched reward_batch."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from checkers.base import Verdict
from verifier import Verifier
from verifier.backends.base import GenerationConfig, GenResult, Messages, ScoreResult
from verifier.prompts import load_template
from verinstruct.convert import from_ifeval, from_verif
from verinstruct.reward import (
    PARTS,
    RewardConfig,
    formula_score,
    judged_instance,
    reward_batch,
    strip_reasoning,
)
from verinstruct.schema import LLMCheck
from verinstruct.scorer import Scorer
from verinstruct.scoring import ConstraintResult, ScoredResponse

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "verinstruct"
ROWS = [json.loads(line) for line in (FIXTURES / "verinstruct_fixtures.jsonl").read_text().splitlines()]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _scored(*items: tuple[str, str, bool | None, float | None]) -> ScoredResponse:
    """(kind, check_type, passed, prob) per constraint."""
    cons = tuple(ConstraintResult(f"c{k}", kind, ct, Verdict(p, "", None if p is not None else "boom", prob))
                 for k, (kind, ct, p, prob) in enumerate(items))
    return ScoredResponse("x", cons)


H_OK, H_BAD, H_UND = ("hard", "code", True, None), ("hard", "code", False, None), ("hard", "code", None, None)


def test_verif_is_hard_rate_times_joint_soft_verdict() -> None:
    cfg = RewardConfig("verif")
    joint_yes = [("soft", "llm", True, 0.8)] * 3  # one item verdict repeated per llm constraint
    r = formula_score(_scored(H_OK, H_BAD, *joint_yes), cfg)
    assert (r.score, r.hard_pass_rate, r.soft_score, r.hard_total, r.soft_total) == (0.5, 0.5, 1.0, 2, 3)
    r = formula_score(_scored(H_OK, H_OK, *[("soft", "llm", False, 0.3)] * 2), cfg)
    assert (r.score, r.soft_score) == (0.0, 0.0)
    # no soft constraints: x 1; no constraints at all: 1
    assert formula_score(_scored(H_OK, H_BAD, H_OK, H_OK), cfg).score == 0.75
    assert formula_score(_scored(), cfg).score == 1.0


def test_prob_uses_p_yes_and_falls_back_to_the_verdict() -> None:
    cfg = RewardConfig("prob")
    r = formula_score(_scored(H_OK, H_BAD, *[("soft", "llm", True, 0.8)] * 2), cfg)
    assert r.score == pytest.approx(0.4) and r.soft_score == pytest.approx(0.8)
    # a soft code check (soft_code='run') without a probability counts 1/0 and multiplies in
    r = formula_score(_scored(H_OK, ("soft", "llm", True, 0.5), ("soft", "code", False, None)), cfg)
    assert r.score == 0.0


def test_mean_and_all() -> None:
    s = _scored(H_OK, H_BAD, ("soft", "llm", True, None), ("soft", "code", True, None))
    assert formula_score(s, RewardConfig("mean")).score == 0.75
    assert formula_score(s, RewardConfig("all")).score == 0.0
    assert formula_score(_scored(H_OK, ("soft", "llm", True, None)), RewardConfig("all")).score == 1.0


@pytest.mark.parametrize("formula", ["verif", "prob", "mean", "all"])
def test_undecided_policies(formula: str) -> None:
    s = _scored(H_OK, H_UND, ("soft", "llm", True, 0.9))
    fail = formula_score(s, RewardConfig(formula, undecided="fail"))
    drop = formula_score(s, RewardConfig(formula, undecided="drop"))
    mask = formula_score(s, RewardConfig(formula, undecided="mask"))
    assert fail.undecided == drop.undecided == mask.undecided == 1
    assert mask.score is None and mask.masked and mask.to_dict(-7.0)["score"] == -7.0
    assert fail.hard_pass_rate == 0.5 and drop.hard_pass_rate == 1.0
    expected_fail = {"verif": 0.5, "prob": 0.45, "mean": 2 / 3, "all": 0.0}[formula]
    expected_drop = {"verif": 1.0, "prob": 0.9, "mean": 1.0, "all": 1.0}[formula]
    assert fail.score == pytest.approx(expected_fail) and drop.score == pytest.approx(expected_drop)
    # drop with nothing decided in a factor: no honest number, the sample is masked
    assert formula_score(_scored(H_UND, H_UND), RewardConfig(formula, undecided="drop")).score is None


def test_parts_are_always_the_same_keys() -> None:
    results = [formula_score(_scored(H_OK), RewardConfig()), formula_score(_scored(H_UND), RewardConfig(undecided="mask"))]
    assert all(tuple(r.to_dict(0.0)) == PARTS for r in results)


@pytest.mark.parametrize(("text", "answer", "finished"), [
    ("<think>plan</think>\nThe answer.", "The answer.", True),
    ("<think>a</think> x </think> final", "final", True),
    ("no reasoning here ", "no reasoning here", True),
    ("<think>still thinking", "<think>still thinking", False),
    ("</think>done <think>again", "</think>done <think>again", False),
    ("reasoning in the prompt template</think>ok", "ok", True),
])
def test_strip_reasoning(text: str, answer: str, finished: bool) -> None:
    assert strip_reasoning(text) == (answer, finished)


def test_bad_config_is_named() -> None:
    with pytest.raises(ValueError, match="formula must be one of"):
        RewardConfig("sum")
    with pytest.raises(ValueError, match="undecided must be one of"):
        RewardConfig(undecided="zero")


# ------------------------------------------------------------------------------------- batched, real Scorer


class CountingBackend:
    """Answers 'Yes' unless the prompt contains 'BAD'; counts prompts per call."""

    kind = "fake"
    model = "yes-model"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def generate(self, batch: Sequence[Messages], config: GenerationConfig) -> list[GenResult]:
        texts = ["\n".join(m["content"] for m in msgs) for msgs in batch]
        self.calls.append(texts)
        return [GenResult("No" if "BAD" in t else "Yes") for t in texts]

    def score(self, batch: Sequence[Messages], candidates: Sequence[str]) -> list[ScoreResult]:
        raise NotImplementedError

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def scorer_and_backend():
    backend = CountingBackend()
    verifier = Verifier(backend=backend, mode="generate", template=load_template("en"))
    with Scorer(verifier, sandbox_workers=2) as scorer:
        yield scorer, backend


def test_verif_reward_judges_all_soft_constraints_jointly_once_per_distinct_response(scorer_and_backend) -> None:
    scorer, backend = scorer_and_backend
    backend.calls.clear()
    row = next(r for r in ROWS if sum(c.startswith("[llm]") for c in r["checkers"]) >= 1)
    inst = from_verif(row)
    soft = [c for c in inst.constraints if c.kind == "soft"]
    view = judged_instance(inst, RewardConfig())
    assert all(isinstance(c.check, LLMCheck) for c in view.constraints if c.kind == "soft")
    good, bad = row["response"], row["response"] + "\nBAD"
    responses = [good, bad, good, "<think>x</think>" + good, "<think>never closed"]
    results = reward_batch(scorer, [inst] * len(responses), responses, RewardConfig())
    # good, bad, and good-after-think are the same answer as good: 2 distinct answers, 1 prompt each
    assert len(backend.calls) == 1 and len(backend.calls[0]) == 2
    assert all(all(c.text in p for c in soft) for p in backend.calls[0])
    assert results[0] == results[2] == results[3]
    assert results[0].soft_score == 1.0 and results[1].soft_score == 0.0
    assert results[4].format_ok is False and results[4].score == 0.0
    # scorer's own hard pass rate, scored directly
    direct = scorer.score_batch([inst], [good])[0]
    assert results[0].hard_pass_rate == direct.hard_pass_rate
    assert results[0].score == direct.hard_pass_rate * 1.0


def test_mean_runs_soft_code_per_constraint(scorer_and_backend) -> None:
    scorer, backend = scorer_and_backend
    row = next(r for r in ROWS if sum(c.startswith("[llm]") for c in r["checkers"]) >= 1)
    inst = from_verif(row)
    [r] = reward_batch(scorer, [inst], [row["response"]], RewardConfig("mean"))
    direct = scorer.score_batch([inst], [row["response"]])[0]
    passed = sum(c.verdict.passed is True for c in direct.constraints)
    assert r.score == pytest.approx(passed / len(direct.constraints))


def test_hard_pass_rate_equals_ifeval_strict_instruction_fraction(scorer_and_backend) -> None:
    """On the shared IFEval responses: the reward's hard_pass_rate == the strict instruction-level fraction
    (what the benchmark evaluator reports: the checkers' strict verdicts, equal to Google's reference)."""
    from checkers import build
    from checkers.modes import evaluate_rows

    scorer, _ = scorer_and_backend
    ref_file = SHARED / "ifeval" / "reference_verdicts.jsonl"
    if not ref_file.exists():
        if os.environ.get("CI"):
            pytest.fail(f"reference data missing: {ref_file}")
        pytest.skip(f"reference data missing: {ref_file}")
    ref = [json.loads(x) for x in ref_file.read_text(encoding="utf-8").splitlines() if x.strip()]
    insts = [from_ifeval(r) for r in ref]
    results = reward_batch(scorer, insts, [r["response"] for r in ref], RewardConfig(mode="strict"))
    strict = evaluate_rows([([build(i, k) for i, k in zip(r["instruction_id_list"], r["kwargs"], strict=True)],
                             r["response"], r["prompt"]) for r in ref], "strict")
    assert len(results) == len(ref) == 541
    for r, res, vs in zip(ref, results, strict, strict=True):
        fraction = sum(v.passed is True for v in vs) / len(vs)
        assert res.hard_pass_rate == pytest.approx(fraction), r["key"]
        assert res.hard_total == len(vs) and res.soft_total == 0
        if not any(r["reference_undefined"]):
            assert res.hard_pass_rate == pytest.approx(sum(r["strict"]) / len(r["strict"])), r["key"]


def test_soft_code_run_keeps_each_code_decided_verdict_as_its_own_factor() -> None:
    from verinstruct.schema import Constraint, Instance

    judge = LLMCheck("llm_judge", ("be brief",), "def check_following(i, r):\n    return llm_judge(i, r, 'be brief')\n")
    inst = Instance("x", "p", (Constraint("a", "soft", "be brief", judge), Constraint("b", "soft", "be kind", LLMCheck()),
                              Constraint("c", "soft", "be calm", LLMCheck())))
    # recognised code said no; the joint judgement of the two plain llm checks said yes (repeated twice)
    s = _scored(("soft", "llm", False, None), ("soft", "llm", True, None), ("soft", "llm", True, None))
    cfg = RewardConfig(soft_code="run")
    assert judged_instance(inst, cfg) is inst
    assert formula_score(s, cfg, inst).soft_score == 0.0
    # soft_code='judge' (default): everything soft is one joint judgement over the texts
    view = judged_instance(inst, RewardConfig())
    assert [c.check.call for c in view.constraints] == [None, None, None]  # type: ignore[union-attr]
    assert view.constraints[0].check.source == judge.source  # type: ignore[union-attr]
