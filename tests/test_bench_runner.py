"""The shared runner: multi-turn generation with the model's own answers, failures kept visible, resume by id."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from benchmarks.base import Benchmark, Record, Sample, Turn, Value, all_passed, verdicts
from benchmarks.runner import (
    GenRequest,
    RunOptions,
    generation_failure,
    read_done,
    remove_thinking,
    run_benchmark,
)
from verifier.backends.base import GenResult
from verinstruct.convert import from_ifeval


def _inst(i: str) -> object:
    return from_ifeval({"key": i, "prompt": "p", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]})


class TwoTurns(Benchmark):
    name = "two_turns"
    headline = ("turn_1", "turn_2")

    def to_sample(self, row, where):  # type: ignore[no-untyped-def]
        turns = tuple(Turn(({"role": "user", "content": q},), _inst(row["id"])) for q in row["questions"])
        return Sample(row["id"], turns, system="sys", meta={"lang": row.get("lang", "en")})

    def record_contributions(self, record: Record) -> Iterable[tuple[str, Value]]:
        for t in range(len(record["turns"])):
            yield f"turn_{t + 1}", all_passed(verdicts(record, t))


class Echo:
    """Answers with how many assistant messages it was shown and the last question; fails on 'FAIL'."""

    def __init__(self) -> None:
        self.seen: list[GenRequest] = []

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        self.seen.extend(requests)
        out = []
        for r in requests:
            q = r.messages[-1]["content"]
            if "FAIL" in q:
                out.append(GenResult(None, "boom"))
            else:
                n = sum(m["role"] == "assistant" for m in r.messages)
                out.append(GenResult(f"{n} {q}", None, "stop", prompt_tokens=3, completion_tokens=2))
        return out


def _run(rows: list[dict], tmp_path: Path, gen: Echo, opts: RunOptions | None = None):  # type: ignore[no-untyped-def]
    from verinstruct.scorer import Scorer

    b = TwoTurns()
    with Scorer(None) as sc:
        return b, run_benchmark(b, b.to_samples(rows), gen, lambda _: sc, tmp_path,
                                opts or RunOptions(progress=False, system_prompt="cli"))


def test_turns_carry_the_models_own_answers(tmp_path: Path) -> None:
    gen = Echo()
    b, res = _run([{"id": "x", "questions": ["first", "second, with comma"]}], tmp_path, gen)
    t2 = gen.seen[1].messages
    assert [m["role"] for m in t2] == ["system", "user", "assistant", "user"]
    assert t2[0]["content"] == "cli\n\nsys" and t2[2]["content"] == "0 first"
    rec = res.records[0]
    assert [t["response"] for t in rec["turns"]] == ["0 first", "1 second, with comma"]
    assert verdicts(rec, 0) == [True] and verdicts(rec, 1) == [False]
    assert rec["meta"] == {"lang": "en"} and rec["turns"][0]["completion_tokens"] == 2
    m = b.metrics(res.records)
    assert m["turn_1"]["passed"] == 1 and m["turn_2"]["passed"] == 0


def test_a_failed_generation_is_no_answer_and_is_generated_again(tmp_path: Path) -> None:
    gen = Echo()
    rows = [{"id": "x", "questions": ["FAIL now", "never asked"]}, {"id": "y", "questions": ["ok"]}]
    b, res = _run(rows, tmp_path, gen)
    [x] = res.failed
    assert x["failed"] == "turn 1: boom" and generation_failure(x) == "turn 1: boom"
    assert x["turns"][0]["error"] == "boom" and x["turns"][1]["error"] == "not generated: turn 1 failed"
    assert [t["scores"] for t in x["turns"]] == [None, None]  # not scored as an (empty) answer
    assert all("never asked" not in r.messages[-1]["content"] for r in gen.seen)
    assert [r["id"] for r in res.records] == ["y"]
    assert b.metrics(res.records)["turn_1"] == {"passed": 1, "total": 1, "rate": 1.0, "undecided": 0}
    path = tmp_path / "samples" / "two_turns.jsonl"
    assert [r["id"] for r in read_done(path)] == ["x", "y"]

    # the cause is fixed: the next run generates x again (and only x); the file is back in sample order
    fixed = Echo()
    rows[0]["questions"][0] = "now fine"
    _, res = _run(rows, tmp_path, fixed)
    assert [r.sample_id for r in fixed.seen] == ["x", "x"] and res.failed == [] and res.resumed == 1
    assert [r["id"] for r in res.records] == ["x", "y"]
    assert [r["id"] for r in read_done(path)] == ["x", "y"]
    assert "failed" not in read_done(path)[0] and read_done(path)[0]["turns"][1]["response"] == "1 never asked"


def test_a_first_chunk_that_fails_entirely_stops_the_run(tmp_path: Path) -> None:
    gen = Echo()
    rows = [{"id": str(i), "questions": [f"FAIL {i}"]} for i in range(5)]
    _, res = _run(rows, tmp_path, gen, RunOptions(progress=False, chunk_size=2))
    assert [r.sample_id for r in gen.seen] == ["0", "1"]  # an unreachable server fails the next chunks too
    assert res.stopped and len(res.failed) == 2 and res.missing == 3 and res.records == []


def test_the_result_holds_every_record_in_the_folder(tmp_path: Path) -> None:
    rows = [{"id": str(i), "questions": [f"q{i}"]} for i in range(4)]
    _run(rows, tmp_path, Echo())
    gen = Echo()
    _, res = _run(rows[:1], tmp_path, gen)  # e.g. --limit 1 on a finished run
    assert gen.seen == [] and [r["id"] for r in res.records] == ["0", "1", "2", "3"]


def test_resume_skips_done_samples_and_cuts_a_torn_tail(tmp_path: Path) -> None:
    rows = [{"id": str(i), "questions": [f"q{i}"]} for i in range(5)]
    _run(rows[:3], tmp_path, Echo(), RunOptions(progress=False, chunk_size=2))
    path = tmp_path / "samples" / "two_turns.jsonl"
    with path.open("ab") as f:
        f.write(b'{"id": "3", "tu')
    gen = Echo()
    _, res = _run(rows, tmp_path, gen, RunOptions(progress=False, chunk_size=2))
    assert [r.sample_id for r in gen.seen] == ["3", "4"]
    assert [r["id"] for r in read_done(path)] == ["0", "1", "2", "3", "4"]
    assert [r["id"] for r in res.records] == ["0", "1", "2", "3", "4"]
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_remove_thinking() -> None:
    assert remove_thinking("<think>x</think>\n answer", "strip") == ("answer", "removed")
    assert remove_thinking("<think>never done", "strip") == ("", "unfinished")
    assert remove_thinking("plain", "strip") == ("plain", "none")
    assert remove_thinking("<think>x</think>a", "keep") == ("<think>x</think>a", "kept")


def test_extra_scores_are_stored_per_scored_turn(tmp_path: Path) -> None:
    from verinstruct.scorer import Scorer

    class WithExtra(TwoTurns):
        def extra_scores(self, get_scorer, instances, texts):  # type: ignore[no-untyped-def]
            return [{"chars": len(t)} for t in texts]

    b = WithExtra()
    with Scorer(None) as sc:
        res = run_benchmark(b, b.to_samples([{"id": "x", "questions": ["ab", "cde"]},
                                             {"id": "y", "questions": ["FAIL"]}]), Echo(), lambda _: sc,
                            tmp_path, RunOptions(progress=False))
    turns = res.records[0]["turns"]
    assert turns[0]["extra"] == {"chars": 4} and turns[1]["extra"] == {"chars": 5}
    assert "extra" not in res.failed[0]["turns"][0]
