"""Converters: every fixture row converts with no constraint dropped, text recovered, exact round trips."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from verinstruct.convert import (
    ConversionError,
    classify,
    from_ifeval,
    from_verif,
    parse_checker_name,
    readable_name,
    recover_texts,
    row_to_instance,
    to_ifeval,
    to_verif,
)
from verinstruct.schema import CodeCheck, LLMCheck, RegistryCheck, forwarded_llm_call

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "verinstruct"
ROWS = [json.loads(line) for line in (FIXTURES / "verinstruct_fixtures.jsonl").read_text().splitlines()]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_fixture_set_covers_what_it_claims() -> None:
    assert len(ROWS) >= 30
    names = [n for r in ROWS for n in r["checkers"]]
    assert any(n.startswith("[rule]") for n in names) and any(n.startswith("[llm]") for n in names)
    assert any(not n.startswith("[") for n in names)
    errors = {e for r in ROWS for e in r["expected_error"] if e}
    assert {"syntax error", "raised", "no check_following", "bad return", "import error", "needs LLM"} <= errors


@pytest.mark.parametrize("row", ROWS, ids=[str(r["id"]) for r in ROWS])
def test_every_fixture_converts_without_dropping(row: dict) -> None:
    inst = from_verif(row)
    assert len(inst.constraints) == len(row["checkers"])  # nothing dropped, tagged or not
    assert inst.id == str(row["id"])
    for c, raw, code, err in zip(inst.constraints, row["checkers"], row["functions"], row["expected_error"], strict=True):
        assert parse_checker_name(raw)[1] == c.name
        assert c.text.strip()
        # soft exactly when the fixture says the constraint needs the LLM
        assert (c.kind == "soft") == (err == "needs LLM"), (c.name, c.kind, err)
        assert c.check_type == ("llm" if not code.strip() or forwarded_llm_call(code) else "code")
    assert to_verif(inst) == row  # exact round trip, extra fields (response, expected) included


def test_text_is_recovered_from_prompt_lines_even_out_of_order() -> None:
    by_id = {r["id"]: r for r in ROWS}
    inst = from_verif(by_id["vi-029"])  # prompt lines are in a different order than the checkers
    texts = {c.name: (c.text, c.text_source) for c in inst.constraints}
    assert texts["Keywords_Include"] == ("Include the keywords 'Ethiopia' and 'espresso'.", "prompt")
    assert texts["Number_Paragraphs"] == ("The response should have exactly 2 paragraphs.", "prompt")
    assert texts["End_Question"] == ("End with a question to the listener.", "prompt")
    # in-order rows: every constraint gets its own prompt line
    for r in ROWS:
        if r["id"] in ("vi-029", "vi-030"):
            continue
        lines = r["prompt"].split("\n")[1:]
        got = [c.text for c in from_verif(r).constraints]
        assert got == lines, r["id"]


def test_text_falls_back_to_llm_argument_then_name() -> None:
    row = next(r for r in ROWS if r["id"] == "vi-030")  # single-line prompt
    a, b = from_verif(row).constraints
    assert (a.text, a.text_source) == ("Line Count", "name")
    assert (b.text, b.text_source) == ("The limerick should be humorous.", "code")


def test_recover_texts_prefers_llm_argument_match() -> None:
    prompt = "Task.\nUse a formal tone.\nWrite 3 paragraphs."
    codes = ["def check_following(i, r):\n    return r.count('\\n\\n') == 2\n",
             "from llm_call import llm_judge\ndef check_following(i, r):\n    return llm_judge(i, r, 'Use a formal tone.')\n"]
    assert recover_texts(prompt, ["Paragraphs", "X"], codes) == [
        ("Write 3 paragraphs.", "prompt"), ("Use a formal tone.", "prompt")]


@pytest.mark.parametrize(
    ("tag", "code", "kind", "check"),
    [
        ("rule", "def check_following(i, r):\n    return True", "hard", CodeCheck),
        ("rule", "def check_following(i, r):\n    return llm_judge(i, r, 'c')", "soft", CodeCheck),
        ("rule", "", "soft", LLMCheck),
        ("llm", "def check_following(i, r):\n    return llm_score(i, r, 'c') == 1", "soft", CodeCheck),
        ("llm", "", "soft", LLMCheck),
        ("llm", "def check_following(i, r):\n    return len(r) > 3", "soft", CodeCheck),
        (None, "def check_following(i, r):\n    return len(r) > 3", "hard", CodeCheck),
        (None, "def check_following(i, r):\n    return llm_extract(i, r, 't') != ''", "soft", CodeCheck),
        (None, "   ", "soft", LLMCheck),
    ],
)
def test_classify(tag: str | None, code: str, kind: str, check: type) -> None:
    k, c = classify(tag, code)
    assert k == kind and isinstance(c, check)


def test_names() -> None:
    assert parse_checker_name("[rule] Number_Paragraphs") == ("rule", "Number_Paragraphs")
    assert parse_checker_name("[LLM]Desired_Writing_Style") == ("llm", "Desired_Writing_Style")
    assert parse_checker_name("Hierarchical_Instructions") == (None, "Hierarchical_Instructions")
    assert readable_name("Number_Paragraphs") == "Number Paragraphs"
    assert readable_name("numberOfWords") == "number Of Words"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["functions"].pop(), "line 7 (id 'vi-001'): fields 'checkers' and 'functions' must have the same length, got 3 and 2"),
        (lambda r: r.update(checkers="[rule] X"), "line 7 (id 'vi-001'): field 'checkers' must be a list, got str"),
        (lambda r: r["functions"].__setitem__(1, None), "line 7 (id 'vi-001'): field 'functions'[1] must be a string, got NoneType"),
        (lambda r: r.update(prompt=5), "field 'prompt' must be a string, got int"),
        (lambda r: r.pop("id"), "line 7: field 'id' must be a string or integer"),
    ],
)
def test_bad_rows_name_line_id_and_field(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    row = json.loads(json.dumps(ROWS[0]))
    mutate(row)
    with pytest.raises(ConversionError) as e:
        from_verif(row, "line 7")
    assert message in str(e.value)


def test_unrecognised_row() -> None:
    with pytest.raises(ConversionError, match="line 2: unrecognised row"):
        row_to_instance({"id": 1, "text": "x"}, "line 2")


IFEVAL_ROW = {"key": 1000, "prompt": "Write a 300+ word summary. Do not use any commas and highlight at least 3 sections.",
              "instruction_id_list": ["punctuation:no_comma", "detectable_format:number_highlighted_sections",
                                      "length_constraints:number_words"],
              "kwargs": [{}, {"num_highlights": 3}, {"relation": "at least", "num_words": 300}]}


def test_ifeval_rows_become_registry_constraints() -> None:
    inst = from_ifeval(IFEVAL_ROW)
    assert inst.id == "1000" and len(inst.constraints) == 3
    assert all(isinstance(c.check, RegistryCheck) and c.kind == "hard" for c in inst.constraints)
    words = inst.constraints[2]
    assert words.check.checker == "length_constraints:number_words"  # type: ignore[union-attr]
    assert words.check.params == {"num_words": 300, "relation": "at least"}  # type: ignore[union-attr]
    assert "300" in words.text and "at least" in words.text and words.text_source == "description"
    assert row_to_instance(IFEVAL_ROW) == inst
    assert to_ifeval(inst) == IFEVAL_ROW
    with pytest.raises(ConversionError, match="VerIF rows hold only Python code"):
        to_verif(inst)


def test_ifeval_bad_params_name_the_row() -> None:
    bad = dict(IFEVAL_ROW, kwargs=[{}, {"num_highlights": "three"}, {}])
    with pytest.raises(ConversionError) as e:
        from_ifeval(bad, "line 4")
    assert "line 4 (id 1000)" in str(e.value) and "num_highlights" in str(e.value)


def test_all_of_ifeval_converts() -> None:
    path = SHARED / "ifeval" / "input_data.jsonl"
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"reference data missing: {path}")
        pytest.skip(f"reference data not present at {path}")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    insts = [from_ifeval(r, f"line {n}") for n, r in enumerate(rows, 1)]
    assert sum(len(i.constraints) for i in insts) == sum(len(r["instruction_id_list"]) for r in rows)
    assert [to_ifeval(i) for i in insts] == rows


@pytest.mark.parametrize(("code", "expected"), [
    ("from llm_call import llm_judge\ndef check_following(instruction, response):\n"
     "    return llm_judge(instruction, response, 'Be kind.')\n", ("llm_judge", ("Be kind.",))),
    ("from llm_call import llm_judge, llm_extract, llm_score\ndef check_following(i, r):\n    \"doc\"\n"
     "    return llm_score(i, r, ['a', 'b'])\n", ("llm_score", ("a", "b"))),
    ("from llm_call import llm_score as s\ndef check_following(i, r):\n    return s(i, r, 'x')\n",
     ("llm_score", ("x",))),
    # anything that could change what running it gives stays code
    ("def check_following(i, r):\n    return llm_judge(i, r, 'x')\n", None),  # not imported: NameError
    ("from llm_call import llm_judge\ndef check_following(i, r):\n    return llm_judge(r, i, 'x')\n", None),
    ("from llm_call import llm_judge\ndef check_following(i, r):\n    return not llm_judge(i, r, 'x')\n", None),
    ("from llm_call import llm_judge\nimport re\ndef check_following(i, r):\n    return llm_judge(i, r, 'x')\n",
     None),
    ("from llm_call import llm_judge\ndef check_following(i, r):\n    return llm_judge(i, r, constraint='x')\n",
     None),
    ("from llm_call import llm_judge\ndef check_following(i, r):\n    return llm_judge(i, r, ['x'])\n", None),
    ("from llm_call import llm_extract\ndef check_following(i, r):\n    return llm_extract(i, r, 'x')\n", None),
    ("from llm_call import llm_judge\ndef check_following(i, r):\n    x = 1\n    return llm_judge(i, r, 'x')\n",
     None),
])
def test_code_that_only_forwards_one_llm_call_is_recognised(code: str, expected: object) -> None:
    assert forwarded_llm_call(code) == expected
    row = {"id": "x", "prompt": "Task.\nBe kind.", "checkers": ["[llm] Kind"], "functions": [code]}
    inst = from_verif(row)
    assert inst.constraints[0].check_type == ("llm" if expected else "code")
    assert to_verif(inst) == row
