"""FollowBench's rule checkers agree with the authors' own on all 2,680 reference verdicts.

``rule_reference.jsonl`` holds verdicts of the authors' ``code/rule_based_evaluation.py`` (commit 6278f4c) on
candidate generations of every rule-scored level 1-5 row (see its PROVENANCE.md).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import checkers
from checkers.followbench import EXAMPLE_ID, FORMAT_ID, RULE_SOURCES

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "followbench"
CATEGORIES = ("content", "situation", "style", "format", "example", "mixed")


def _need_data() -> None:
    if not (DATA / "rule_reference.jsonl").exists():
        msg = f"FollowBench reference data not found at {DATA}"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="module")
def reference() -> list[dict[str, Any]]:
    _need_data()
    return [json.loads(line) for line in (DATA / "rule_reference.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def rows() -> dict[tuple[str, int, int], dict[str, Any]]:
    _need_data()
    out = {}
    for cat in CATEGORIES:
        for r in json.loads((DATA / f"{cat}_constraints.json").read_text()):
            out[(cat, r["example_id"], r["level"])] = r  # mixed rows name their constraint types instead
    return out


def _constraint(ref: dict[str, Any], row: dict[str, Any]) -> checkers.Constraint:
    rule = ref["rule"]
    if rule == "check_match":
        return checkers.build(EXAMPLE_ID, {"template": row["target"].replace("{instruction}\n", "")})
    if rule == "rule_evaluation_format":
        return checkers.build(FORMAT_ID, {"example_id": ref["example_id"], "level": ref["level"]})
    assert rule == f"rule_evaluation_{ref['source']}"
    return checkers.build(RULE_SOURCES[ref["source"]], {"target": row["target"], "level": ref["level"]})


def test_every_reference_verdict_agrees(reference: list[dict[str, Any]], rows: dict) -> None:
    assert len(reference) == 2680
    assert Counter(r["passed"] for r in reference) == {True: 909, False: 1771}
    wrong = []
    for k, ref in enumerate(reference):
        c = _constraint(ref, rows[(ref["category"], ref["example_id"], ref["level"])])
        verdict = c.spec.fn(ref["generation"], c.params, "")
        if verdict.passed is not ref["passed"]:
            wrong.append((k, ref["rule"], ref["level"], ref["generation"][:80], ref["passed"]))
    assert not wrong, f"{len(wrong)} disagreements, first: {wrong[:5]}"


def test_every_rule_and_level_is_exercised(reference: list[dict[str, Any]]) -> None:
    # every rule is exercised at every level; the four rules the reference never sees pass are given
    # passing responses by hand below, so no rule can hide behind "always False"
    seen = Counter((r["rule"], r["level"]) for r in reference)
    rules = {r["rule"] for r in reference}
    assert rules == {f"rule_evaluation_{s}" for s in RULE_SOURCES} | {"check_match", "rule_evaluation_format"}
    assert all(seen[(rule, level)] for rule in rules for level in range(1, 6))
    never_true = rules - {r["rule"] for r in reference if r["passed"]}
    assert never_true == {f"rule_evaluation_{s}" for s in ("gigaword", "cnn_dailymail", "CONLL2003", "format")}


def _check(checker_id: str, response: str, **params: Any) -> bool | None:
    c = checkers.build(checker_id, params)
    return c.spec.fn(response, c.params, "").passed


GIGAWORD = "police arrest three men in raid on farm"  # 8 words, lower case, no punctuation, has 'in'


@pytest.mark.parametrize(
    ("response", "levels"),
    [
        (GIGAWORD, [True] * 5),
        ("police arrest three men on a bus today", [True, True, True, False, False]),
        ("Police arrest three men in raid on farm", [True, True, False, False, False]),
        ("police arrest three men in raid, on farm", [True, False, False, False, False]),
        ("police arrest three men in a raid on farm", [False] * 5),
    ],
)
def test_gigaword_by_hand(response: str, levels: list[bool]) -> None:
    assert [_check(RULE_SOURCES["gigaword"], response, level=k) for k in range(1, 6)] == levels


def test_cnn_dailymail_by_hand() -> None:
    ok = "Potter star is rich now. The actor spends little. He has made many films."
    assert [_check(RULE_SOURCES["cnn_dailymail"], ok, level=k) for k in range(1, 6)] == [True] * 5
    lavish = "Potter star is rich now. The actor is lavish. He has made many films."
    assert [_check(RULE_SOURCES["cnn_dailymail"], lavish, level=k) for k in range(1, 6)] == [True] * 3 + [False] * 2
    no_perfect = "Potter star is rich now. The actor spends little. He made many films."
    assert _check(RULE_SOURCES["cnn_dailymail"], no_perfect, level=4) is True
    assert _check(RULE_SOURCES["cnn_dailymail"], no_perfect, level=5) is False
    long = "Potter star is rich now. The actor spends very little of the money he earned in all of those years. Films."
    assert [_check(RULE_SOURCES["cnn_dailymail"], long, level=k) for k in (1, 2)] == [True, False]


def test_conll2003_by_hand() -> None:
    target = "['Germany', 'EU']"
    assert _check(RULE_SOURCES["CONLL2003"], "Germany", target=target, level=1) is True
    assert _check(RULE_SOURCES["CONLL2003"], "germany", target=target, level=1) is False
    with pytest.raises(checkers.ParamError, match="target"):
        checkers.build(RULE_SOURCES["CONLL2003"], {"target": "['Germany'", "level": 1})


def test_format_22_by_hand() -> None:
    s = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen " \
        "seventeen eighteen nineteen twenty twentyone."
    plain = f"{s}\n\n{s}\n\n{s}"
    assert [_check(FORMAT_ID, plain, example_id=22, level=k) for k in range(1, 6)] == [True] * 3 + [False] * 2
    # the authors' sentence splitter cuts "1." into a one-word sentence, so numbered paragraphs fail the
    # 20-words rule of level 3: levels 4 and 5 (numbered paragraphs) cannot pass. Kept as they wrote it.
    numbered = f"1. {s}\n\n2. {s}\n\n3. {s}"
    assert [_check(FORMAT_ID, numbered, example_id=22, level=k) for k in range(1, 6)] == [True] * 2 + [False] * 3
    four = plain + "\n\nThose are suggestions"
    assert [_check(FORMAT_ID, four, example_id=22, level=k) for k in range(1, 6)] == [False] * 5
    two_sentences = "One here. Two here.\n\nThree.\n\nFour."
    assert [_check(FORMAT_ID, two_sentences, example_id=22, level=k) for k in (1, 2)] == [True, True]
    three_sentences = "One here. Two here. Three here.\n\nFour.\n\nFive."
    assert [_check(FORMAT_ID, three_sentences, example_id=22, level=k) for k in (1, 2)] == [True, False]


def test_format_30_by_hand() -> None:
    # "**1. " would be a one-word sentence to the authors' splitter and a point ending in "." splits into
    # three pieces on ".", so the passing shape is "**N.Keyword:** ... ?"
    points = " ".join(f"**{n}.Growth:** do people learn new skills from the many hard tasks at work?"
                      for n in range(1, 6))
    assert [_check(FORMAT_ID, points, example_id=30, level=k) for k in range(1, 6)] == [True] * 5
    quick = points.replace("learn new skills", "learn skills-ly")
    assert [_check(FORMAT_ID, quick, example_id=30, level=k) for k in (4, 5)] == [True, False]
    spaced = points.replace(".Growth", ". Growth")
    assert [_check(FORMAT_ID, spaced, example_id=30, level=k) for k in (3, 4)] == [True, False]
    dotted = points.replace("?", ".")
    assert [_check(FORMAT_ID, dotted, example_id=30, level=k) for k in (2, 3)] == [True, False]
    assert _check(FORMAT_ID, "no markers at all", example_id=30, level=1) is False
    with pytest.raises(checkers.ParamError, match="example_id"):
        checkers.build(FORMAT_ID, {"example_id": 23, "level": 1})
