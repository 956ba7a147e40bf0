"""score_batch: the one scoring path (registry in-process, code in ONE sandbox run, llm in ONE judge call)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from checkers.base import Verdict
from checkers.sandbox import CodeCall, Sandbox
from verifier import JudgeRequest, Verifier
from verifier.backends.base import GenerationConfig, GenResult, Messages, ScoreResult
from verifier.prompts import load_template
from verinstruct.convert import from_ifeval, from_verif
from verinstruct.schema import CodeCheck, Constraint, Instance, LLMCheck
from verinstruct.scoring import NO_LLM_ERROR, ScoredResponse, score, score_batch

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "verinstruct"
ROWS = [json.loads(line) for line in (FIXTURES / "verinstruct_fixtures.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    with Sandbox(workers=2) as box:
        yield box


class YesBackend:
    """Answers 'Yes' unless the judged text contains 'BAD'; records every prompt it sees."""

    kind = "fake"
    model = "yes-model"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def generate(self, batch: Sequence[Messages], config: GenerationConfig) -> list[GenResult]:
        out = []
        for msgs in batch:
            text = "\n".join(m["content"] for m in msgs)
            self.seen.append(text)
            out.append(GenResult("No" if "BAD" in text else "Yes"))
        return out

    def score(self, batch: Sequence[Messages], candidates: Sequence[str]) -> list[ScoreResult]:
        raise NotImplementedError

    def close(self) -> None:
        pass


@dataclass
class CountingVerifier(Verifier):
    judge_calls: list[list[JudgeRequest]] = field(default_factory=list)

    def judge_batch(self, requests, granularity=None):  # type: ignore[no-untyped-def,override]
        self.judge_calls.append(list(requests))
        return Verifier.judge_batch(self, requests, granularity)


def _verifier() -> CountingVerifier:
    # an answer-only template: the fake backend answers a bare Yes/No, as such templates ask
    return CountingVerifier(backend=YesBackend(), mode="generate", template=load_template("en"))


def test_fixtures_without_llm_give_the_expected_verdicts(sandbox: Sandbox) -> None:
    insts = [from_verif(r) for r in ROWS]
    scored = score_batch(insts, [r["response"] for r in ROWS], sandbox=sandbox)
    assert [s.id for s in scored] == [str(r["id"]) for r in ROWS]
    for r, s in zip(ROWS, scored, strict=True):
        assert [c.verdict.passed for c in s.constraints] == r["expected"], r["id"]
        for c, err in zip(s.constraints, r["expected_error"], strict=True):
            if err == "needs LLM":
                assert c.verdict.error == NO_LLM_ERROR
            elif err:
                assert c.verdict.error and c.verdict.error.startswith(err), (r["id"], c.verdict)
            else:
                assert c.verdict.error is None


@dataclass
class FakeSandbox:
    runs: list[list[CodeCall]] = field(default_factory=list)

    def run(self, calls: Sequence[CodeCall]) -> list[Verdict]:
        self.runs.append(list(calls))
        return [Verdict(len(c.response) > 5, "fake") for c in calls]


def test_code_constraints_go_to_one_sandbox_run_with_the_real_prompt() -> None:
    insts = [from_verif(r) for r in ROWS[:6]]
    box = FakeSandbox()
    score_batch(insts, ["a response"] * 6, sandbox=box)  # type: ignore[arg-type]
    assert len(box.runs) == 1
    hard_code = [(i.prompt, c.check.source) for i in insts for c in i.constraints
                 if isinstance(c.check, CodeCheck) and not c.needs_llm]
    assert [(c.prompt, c.source) for c in box.runs[0]] == hard_code
    assert all(c.prompt != "instruction" for c in box.runs[0])


def test_llm_constraints_are_judged_in_one_call_and_placed_back_in_order() -> None:
    def inst(i: int, kinds: str) -> Instance:
        cons = []
        for k, ch in enumerate(kinds):
            if ch == "L":
                cons.append(Constraint(f"s{k}", "soft", f"soft constraint {i}.{k}", LLMCheck()))
            else:
                src = "def check_following(instruction, response):\n    return 'ok' in response\n"
                cons.append(Constraint(f"h{k}", "hard", "has ok", CodeCheck(src)))
        return Instance(f"i{i}", f"task {i}", tuple(cons))

    insts = [inst(0, "LHL"), inst(1, "H"), inst(2, "LL")]
    v = _verifier()
    out = score_batch(insts, ["ok fine", "nope", "ok BAD"], sandbox=FakeSandbox(), verifier=v)  # type: ignore[arg-type]
    assert len(v.judge_calls) == 1
    assert [(r.instruction, r.constraints) for r in v.judge_calls[0]] == [
        ("task 0", ("soft constraint 0.0", "soft constraint 0.2")), ("task 2", ("soft constraint 2.0", "soft constraint 2.1"))]
    assert [[c.check_type for c in s.constraints] for s in out] == [["llm", "code", "llm"], ["code"], ["llm", "llm"]]
    assert [c.verdict.passed for c in out[0].constraints] == [True, True, True]
    assert [c.verdict.passed for c in out[2].constraints] == [False, False]


def test_code_calling_llm_runs_through_the_bridge(sandbox: Sandbox) -> None:
    row = next(r for r in ROWS if r["id"] == "vi-016")  # llm_extract code + a plain code check
    v = _verifier()
    with Sandbox(workers=1, llm=__import__("verifier").LLMBridge(v)) as box:
        s = score(from_verif(row), row["response"], sandbox=box, verifier=v)
    assert [c.verdict.passed for c in s.constraints] == [True, True]  # extracted "Yes" has <= 8 words
    assert any("Extract the headline" in t or "headline" in t for t in v.backend.seen)  # type: ignore[attr-defined]


def test_sandbox_is_created_with_the_bridge_when_not_given() -> None:
    row = next(r for r in ROWS if r["id"] == "vi-001")
    v = _verifier()
    s = score(from_verif(row), row["response"], verifier=v)
    assert [c.verdict.passed for c in s.constraints] == [True, True, True]
    assert any("friendly and encouraging" in t for t in v.backend.seen)  # type: ignore[attr-defined]


def test_registry_constraints_strict_and_loose() -> None:
    inst = from_ifeval({"key": 1, "prompt": "Answer in lowercase with no commas.",
                        "instruction_id_list": ["change_case:english_lowercase", "punctuation:no_comma"],
                        "kwargs": [{}, {}]})
    resp = "Sure!\nthis is all lowercase and has no commas at all"
    strict = score(inst, resp, mode="strict")
    loose = score(inst, resp, mode="loose")
    assert [c.verdict.passed for c in strict.constraints] == [False, True]
    assert [c.verdict.passed for c in loose.constraints] == [True, True]  # loose drops the first line
    assert score(inst, "   ").hard_pass_rate == 0.0  # strict: empty response fails


def test_pass_rates_count_undecided_against_and_report_them() -> None:
    v_ok, v_no, v_und = Verdict(True), Verdict(False), Verdict.undecided("raised X: y")
    from verinstruct.scoring import ConstraintResult

    s = ScoredResponse("x", (ConstraintResult("a", "hard", "code", v_ok), ConstraintResult("b", "hard", "code", v_und),
                             ConstraintResult("c", "hard", "code", v_no), ConstraintResult("d", "soft", "llm", v_ok)))
    assert s.hard_pass_rate == pytest.approx(1 / 3)
    assert (s.hard_passed, s.hard_total, s.hard_undecided) == (1, 3, 1)
    assert s.soft_pass_rate == 1.0 and s.undecided == 1
    assert ScoredResponse("y", ()).hard_pass_rate == 1.0 and ScoredResponse("y", ()).soft_pass_rate == 1.0
    d = s.to_dict()
    assert d["constraints"][1] == {"name": "b", "kind": "hard", "check": "code", "passed": None, "reason": "",
                                   "error": "raised X: y"}


def test_whole_sandbox_failure_is_visible_not_zero() -> None:
    class Broken:
        def run(self, calls: Sequence[CodeCall]) -> list[Verdict]:
            raise OSError("no workers")

    row = ROWS[0]
    s = score(from_verif(row), row["response"], sandbox=Broken())  # type: ignore[arg-type]
    assert [c.verdict.passed for c in s.constraints] == [None, None, None]
    assert s.constraints[0].verdict.error == "sandbox failed: OSError: no workers"
    assert s.constraints[2].verdict.error == NO_LLM_ERROR


def test_bad_arguments() -> None:
    inst = from_verif(ROWS[0])
    with pytest.raises(ValueError, match="1 instances but 2 responses"):
        score_batch([inst], ["a", "b"])
    with pytest.raises(TypeError, match=r"responses\[0\] must be a string"):
        score_batch([inst], [None])  # type: ignore[list-item]
