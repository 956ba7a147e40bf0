"""InFoBench: rows of the documented shape -> one soft constraint per decomposed question; DRFR overall and per
subset, with a scripted judge, against numbers computed by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from benchmarks.base import BenchmarkError
from benchmarks.infobench import BENCHMARK
from benchmarks.responses import ResponseGenerator
from benchmarks.runner import RunOptions, run_benchmark
from verinstruct import Scorer
from verinstruct.schema import LLMCheck

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "benchmarks" / "infobench.jsonl"
ROWS = [json.loads(line) for line in FIXTURE.read_text().splitlines()]


def test_loader_turns_questions_into_soft_constraints() -> None:
    samples = BENCHMARK.load_samples(FIXTURE)
    assert [s.id for s in samples] == [r["id"] for r in ROWS]
    first = samples[0].turns[0]
    assert first.messages == ({"role": "user", "content": "Write a one-line advert for the fruit listed below.\n\n"
                                                          "Apples, pears and plums are on sale this week."},)
    inst = first.instance
    # the judge sees what the authors' judge saw of the task: the input only (the model gets both)
    assert inst is not None and inst.prompt == ROWS[0]["input"]
    assert [c.text for c in inst.constraints] == ROWS[0]["decomposed_questions"]
    assert all(c.kind == "soft" and isinstance(c.check, LLMCheck) for c in inst.constraints)
    assert [c.name for c in samples[1].turns[0].instance.constraints] == [  # type: ignore[union-attr]
        "infobench:content", "infobench:content", "infobench:content/number", "infobench:content"]
    assert samples[1].turns[0].messages[0]["content"] == ROWS[1]["instruction"]  # no input: the instruction alone
    assert samples[2].meta == {"subset": "Hard_set", "category": "Arts: Poetry"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"decomposed_questions": []}, r"id 'domain_oriented_task_1'\): field 'decomposed_questions' must be a non-empty list"),
        ({"decomposed_questions": ["ok?", "", "ok?"]}, r"field 'decomposed_questions\[1\]' must be a non-empty string"),
        ({"question_label": [["Content"]]}, r"field 'question_label' must have one entry per decomposed question \(3\)"),
        ({"subset": "Medium_set"}, r"field 'subset' must be Easy_set or Hard_set"),
        ({"instruction": None}, r"field 'instruction' must be a non-empty string"),
        ({"id": None}, r"infobench row 1: field 'id'"),
    ],
)
def test_bad_rows_say_where_and_what(change: dict[str, Any], message: str) -> None:
    with pytest.raises(BenchmarkError, match=message):
        BENCHMARK.to_samples([{**ROWS[0], **change}])


def _judge(prompt: str) -> str:
    """Yes when the word after 'mention' is in the judged text; an unreadable answer for 'unclear' questions."""
    text = re.search(r"Text: (.*)\nConstraint: ", prompt, re.S).group(1)  # type: ignore[union-attr]
    question = re.search(r"Constraint: (.*)\n", prompt).group(1)  # type: ignore[union-attr]
    if "unclear" in question:
        return "perhaps"
    word = re.search(r"mention (\w+)", question).group(1)  # type: ignore[union-attr]
    return "Yes" if word in text else "No"


def test_drfr_by_hand(scripted_verifier, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    samples = BENCHMARK.to_samples([*ROWS[:2], {**ROWS[2], "subset": "Hard_Set"}])  # the card's spelling
    responses = ["apples and pears", "rivers, seas", "a cats poem"]
    verifier = scripted_verifier(_judge)
    gen = ResponseGenerator({s.id: [r] for s, r in zip(samples, responses, strict=True)}, "test")
    with Scorer(verifier) as scorer:
        res = run_benchmark(BENCHMARK, samples, gen, lambda _: scorer, tmp_path, RunOptions(progress=False))
    m = BENCHMARK.metrics(res.records)
    # yes: apples, pears | rivers, seas | cats; the tone question is undecided
    assert m["drfr"] == {"passed": 5, "total": 9, "rate": 5 / 9, "undecided": 1}
    assert m["drfr_easy"] == {"passed": 2, "total": 3, "rate": 2 / 3, "undecided": 0}
    assert m["drfr_hard"] == {"passed": 3, "total": 6, "rate": 0.5, "undecided": 1}
    assert list(m) == ["drfr", "drfr_easy", "drfr_hard"]
    assert len(verifier.backend.seen) == 9  # one judge call per question
    assert all(q in seen for q, seen in zip(ROWS[0]["decomposed_questions"], verifier.backend.seen[:3], strict=True))


def test_without_a_verifier_every_question_is_undecided() -> None:
    samples = BENCHMARK.load_samples(FIXTURE)[:1]
    with Scorer(None) as scorer:
        sc = scorer.score_batch([samples[0].turns[0].instance], ["x"])[0]  # type: ignore[list-item]
    m = BENCHMARK.metrics([{"id": "a", "meta": dict(samples[0].meta), "turns": [{"scores": {"strict": sc.to_dict()}}]}])
    assert m["drfr"] == {"passed": 0, "total": 3, "rate": 0.0, "undecided": 3}
