"""Typed schema: validation errors name the row and field; dict round trips are exact."""

from __future__ import annotations

import pytest

from verinstruct.schema import (
    CodeCheck,
    Constraint,
    Instance,
    LLMCheck,
    RegistryCheck,
    SchemaError,
    code_uses_llm,
    instance_from_dict,
    instance_to_dict,
)


def _typed(**over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": "t1",
        "prompt": "Write a poem.\nUse no commas.",
        "constraints": [
            {"name": "no_comma", "kind": "hard", "text": "Use no commas.",
             "check": {"type": "registry", "checker": "punctuation:no_comma", "params": {}}},
            {"name": "words", "kind": "hard", "text": "At least 5 words.",
             "check": {"type": "registry", "checker": "length_constraints:number_words",
                       "params": {"num_words": 5, "relation": "at least"}}},
            {"name": "Style", "kind": "soft", "text": "Be cheerful.", "check": {"type": "llm"}, "tag": "llm"},
            {"name": "Count", "kind": "hard", "text": "Short.", "check": {"type": "code", "source": "def check_following(instruction, response):\n    return True\n"}},
        ],
    }
    row.update(over)
    return row


def test_typed_row_parses_and_round_trips() -> None:
    inst = instance_from_dict(_typed())
    assert [c.check_type for c in inst.constraints] == ["registry", "registry", "llm", "code"]
    assert isinstance(inst.constraints[1].check, RegistryCheck)
    assert inst.constraints[1].check.params == {"num_words": 5, "relation": "at least"}
    assert isinstance(inst.constraints[2].check, LLMCheck) and inst.constraints[2].needs_llm
    assert isinstance(inst.constraints[3].check, CodeCheck) and not inst.constraints[3].needs_llm
    assert inst.counts() == {"hard": 3, "soft": 1}
    assert instance_from_dict(instance_to_dict(inst)) == inst


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("prompt"), "line 3 (id 't1'): field 'prompt' must be a string"),
        (lambda r: r.update(constraints="x"), "field 'constraints' must be a list"),
        (lambda r: r["constraints"][0].update(kind="medium"), "constraints[0].kind' must be 'hard' or 'soft'"),
        (lambda r: r["constraints"][0].pop("name"), "constraints[0].name' is missing"),
        (lambda r: r["constraints"][1]["check"].update(checker="length_constraints:num_words"),
         "unknown constraint id 'length_constraints:num_words'"),
        (lambda r: r["constraints"][1]["check"]["params"].update(num_words="five"),
         "parameter 'num_words' must be an integer"),
        (lambda r: r["constraints"][2]["check"].update(type="magic"), "check.type' must be one of registry, code, llm"),
        (lambda r: r["constraints"][2].update(kind="hard"), "must be 'soft' for an llm check"),
        (lambda r: r["constraints"][3]["check"].pop("source"), "check.source' is missing"),
        (lambda r: r.update(id=None), "field 'id' must be a string or integer"),
    ],
)
def test_validation_errors_name_row_and_field(mutate, message) -> None:  # type: ignore[no-untyped-def]
    row = _typed()
    mutate(row)
    with pytest.raises(SchemaError, match=None) as e:
        instance_from_dict(row, "line 3")
    assert message in str(e.value)
    assert str(e.value).startswith("line 3")


def test_messages_give_the_prompt() -> None:
    row = _typed(messages=[{"role": "system", "content": "sys"}, {"role": "user", "content": "Hi there."}])
    row.pop("prompt")
    inst = instance_from_dict(row)
    assert inst.prompt == "Hi there." and inst.instruction == "Hi there."
    with pytest.raises(SchemaError, match=r"messages\[0\]"):
        instance_from_dict(_typed(messages=[{"role": "user"}]))


@pytest.mark.parametrize(
    ("code", "uses"),
    [
        ("from llm_call import llm_judge\ndef check_following(i, r):\n    return llm_judge(i, r, 'x')", True),
        ("def check_following(i, r):\n    t = llm_extract(i, r, 'title')\n    return len(t) < 9", True),
        ("import llm_call\ndef check_following(i, r):\n    return llm_call.llm_score(i, r, 'c') == 1", True),
        ("def check_following(i, r)\n    return llm_judge(i, r, 'x')", True),  # syntax error: regex fallback
        ("def check_following(i, r):\n    return 'llm_judge' not in r", False),  # a string, not a call
        ("def check_following(i, r):\n    return len(r.split()) > 3", False),
        ("", False),
    ],
)
def test_code_uses_llm(code: str, uses: bool) -> None:
    assert code_uses_llm(code) is uses


# ---- closed-set fields are validated when objects are built (issue 9): a typo is an error, not a wrong reward


@pytest.mark.parametrize(("build", "field", "allowed"), [
    (lambda: Constraint("n", "hardd", "t", LLMCheck()), "Constraint.kind", "'hard', 'soft'"),
    (lambda: Constraint("n", "hard", "t", CodeCheck("x"), text_source="guess"), "Constraint.text_source", "'prompt'"),
    (lambda: RegistryCheck("punctuation:no_comma", type="code"), "RegistryCheck.type", "'registry'"),
    (lambda: CodeCheck("x", type="llm"), "CodeCheck.type", "'code'"),
    (lambda: LLMCheck(type="rule"), "LLMCheck.type", "'llm'"),
])
def test_closed_set_fields_are_checked_on_construction(build, field, allowed) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SchemaError) as e:
        build()
    assert field in str(e.value) and allowed in str(e.value)


def test_constraint_and_instance_shapes() -> None:
    with pytest.raises(SchemaError, match=r"Constraint.check must be a RegistryCheck, CodeCheck or LLMCheck, got dict"):
        Constraint("n", "hard", "t", {"type": "llm"})  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match=r"Constraint.kind must be 'soft' for an llm check"):
        Constraint("n", "hard", "t", LLMCheck())
    c = Constraint("n", "soft", "t", LLMCheck())
    inst = Instance("i", "p", [c])  # type: ignore[arg-type]
    assert inst.constraints == (c,)
    with pytest.raises(SchemaError, match=r"Instance.constraints\[1\] must be a Constraint, got str"):
        Instance("i", "p", (c, "hard"))  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="Instance.id must be a string, got int"):
        Instance(3, "p", ())  # type: ignore[arg-type]


def test_base_and_verifier_types_check_their_closed_sets() -> None:
    from checkers.base import CheckerSpec, Param, Verdict
    from verifier import JudgeRequest
    from verifier.backends.base import ScoreResult

    with pytest.raises(TypeError, match="Verdict.passed must be True, False or None, got 1"):
        Verdict(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="type must be one of int, float, str, bool, list"):
        Param("p", dict, "d")
    with pytest.raises(ValueError, match="kind must be one of 'hard', 'soft', got 'hardd'"):
        CheckerSpec("x:y", "d", (), lambda r, p, q: Verdict(True), kind="hardd")
    with pytest.raises(TypeError, match=r"JudgeRequest.constraints\[0\] must be a string, got int"):
        JudgeRequest("i", "r", (1,))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ScoreResult.method must be one of 'sequence', 'first_token'"):
        ScoreResult({"Yes": 0.0}, method="seq")


def test_no_soft_constraints_means_soft_pass_rate_1() -> None:
    from checkers.base import Verdict
    from verinstruct.scoring import ConstraintResult, ScoredResponse

    s = ScoredResponse("r", (ConstraintResult("n", "hard", "registry", Verdict(False)),))
    assert (s.hard_pass_rate, s.soft_pass_rate, s.soft_total) == (0.0, 1.0, 0)
