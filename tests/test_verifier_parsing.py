"""The verdict parser: explicit rules, reasoning stripped, unparseable is explicit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verifier.parsing import parse_verdict, strip_reasoning


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[1]]", True),
        ("[[0]]", False),
        ("[[ 1 ]] the response follows every constraint", True),
        ("Score: [[0]] because it is too long. [[1]]", False),  # first mark wins
        ("Yes", True),
        ("yes.", True),
        ("No.", False),
        ("NO", False),
        ("**Yes**, it does.", True),
        ("Answer: No", False),
        ("是", True),
        ("否", False),
        ("不是，文本没有满足约束", False),
        ("答案：是", True),
        ("不满足", False),
        ("The text meets it, so yes", True),
        ("I would say no here", False),
        ("<think>It says No, but wait... maybe yes</think>\nYes", True),
        ("<think>yes yes yes</think>No", False),
        ("some reasoning without an opening tag</think>[[1]]", True),
    ],
)
def test_parses_documented_forms(text: str, expected: bool) -> None:
    parsed = parse_verdict(text)
    assert parsed.error is None, parsed.error
    assert parsed.passed is expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("<think>I think the answer is yes", "not finished"),
        ("<think>a</think>yes<think>more thinking", "not finished"),
        ("Yesterday it rained.", "no [[1]]"),
        ("Nobody knows.", "no [[1]]"),
        ("Maybe yes, maybe no.", "both yes and no"),
        ("[[2]]", "no [[1]]"),
        ("是否满足约束？", "no [[1]]"),
        ("The text does not satisfy the constraint.", "no [[1]]"),
    ],
)
def test_unparseable_is_explicit(text: str, why: str) -> None:
    parsed = parse_verdict(text)
    assert parsed.passed is None
    assert parsed.error is not None and parsed.error.startswith("unparseable")
    assert why in parsed.error


@pytest.mark.parametrize(
    ("text", "expected", "rule"),
    [
        ("The text is friendly and short.\nFinal answer: [[1]]", True, "final-answer"),
        ("It should output [[1]] only if French. It is English.\nFinal answer: [[0]]", False, "final-answer"),
        ("Yes, it mentions a day. But the style is casual.\nFinal Answer: No", False, "final-answer"),
        ("Final answer: [[0]]. Wait, it does use French.\nFinal answer: [[1]]", True, "final-answer"),
        # a later label without a verdict does not hide the earlier explicit one
        ("Final answer: [[1]]\nThe final answer is correct because it rhymes.", True, "final-answer"),
        ("The final answer is yes.", True, "final-answer"),
        ("文本是中文，语气友好。\n最终答案：[[1]]", True, "final-answer"),
        ("文本没有使用英文。\n最终答案：否", False, "final-answer"),
        ("Check: [[1]] means yes. The text is too long, so [[0]]", False, "last-score-mark"),
        (
            "<think>Final answer: [[1]]</think>Reasoning: too long.\nFinal answer: [[0]]",
            False,
            "final-answer",
        ),
    ],
)
def test_reasoning_rules_read_the_verdict_at_the_end(text: str, expected: bool, rule: str) -> None:
    parsed = parse_verdict(text, reasoning=True)
    assert parsed.error is None, parsed.error
    assert (parsed.passed, parsed.rule) == (expected, rule)


@pytest.mark.parametrize(
    "text",
    [
        "Yes, the text is friendly.",  # a leading word alone is not a final answer after reasoning
        "The text is written in English. It is written in English. It is written in",
        "Final answer:",
        "Final answer: it depends",
        "<think>[[1]]</think>no verdict here",
    ],
)
def test_reasoning_without_final_verdict_is_unparseable(text: str) -> None:
    parsed = parse_verdict(text, reasoning=True)
    assert parsed.passed is None
    assert parsed.error is not None and "no 'Final answer' verdict" in parsed.error


def test_answer_first_rules_are_unchanged_by_default() -> None:
    text = "Score: [[0]] because it is too long. Final answer: [[1]]"
    assert parse_verdict(text).passed is False  # VerIF: the first mark, at the start
    assert parse_verdict(text, reasoning=True).passed is True


@given(thought=st.text(max_size=80), mark=st.sampled_from(["[[0]]", "[[1]]"]))
def test_reasoning_before_the_final_line_never_decides(thought: str, mark: str) -> None:
    parsed = parse_verdict(f"{thought}\nFinal answer: {mark}", reasoning=True)
    if parsed.error is None or "not finished" not in parsed.error:  # a stray <think> in the thought
        assert parsed.passed is (mark == "[[1]]")


def test_none_output_is_unparseable() -> None:
    assert parse_verdict(None).error == "unparseable: no output"


def test_strip_reasoning_keeps_final_answer() -> None:
    assert strip_reasoning("<think>x</think> final") == (" final", None)
    answer, err = strip_reasoning("<think>never ends")
    assert answer is None and err is not None


_thought = st.text(alphabet=st.characters(blacklist_characters="<>"), max_size=60) | st.sampled_from(
    ["[[0]]", "[[1]]", "yes", "No", "是", "否", "Yes. [[0]]"]
)
_answer = st.sampled_from(
    ["Yes", "No", "[[1]]", "[[0]]", "是", "否", "yes, it does", "no idea, sorry?", "", "hmm"]
)


@given(thought=_thought, other=_thought, answer=_answer)
def test_reasoning_never_affects_the_verdict(thought: str, other: str, answer: str) -> None:
    a = parse_verdict(f"<think>{thought}</think>{answer}")
    b = parse_verdict(f"<think>{other}</think>{answer}")
    assert (a.passed, a.error) == (b.passed, b.error)
    assert (a.passed, a.error) == (parse_verdict(answer).passed, parse_verdict(answer).error)


@given(thought=st.text(alphabet=st.characters(blacklist_characters="<>"), max_size=80))
def test_unterminated_reasoning_is_never_a_verdict(thought: str) -> None:
    assert parse_verdict("<think>" + thought).passed is None


@given(st.text(max_size=100))
def test_parser_is_total(text: str) -> None:
    parsed = parse_verdict(text)
    assert parsed.passed in (True, False, None)
    assert (parsed.passed is None) == (parsed.error is not None)
