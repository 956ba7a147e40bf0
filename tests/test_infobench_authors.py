"""InFoBench as its authors ship and judge it: ``InfoBench.json`` (JSON Lines under a .json name) loads, their
output files are read by ``verif eval --responses``, and the judge gets their rubric and message format; with
the same scripted judge, verdicts and DRFR equal what the authors' unmodified ``evaluation.py`` wrote
(``fixtures/benchmarks/infobench_authors/authors_judge.json``; PROVENANCE.md there)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import verifier
from benchmarks.infobench import BENCHMARK
from verinstruct.cli import _register, app

_register()

HERE = Path(__file__).resolve().parent / "fixtures" / "benchmarks" / "infobench_authors"
AUTHORS = json.loads((HERE / "authors_judge.json").read_text(encoding="utf-8"))
ROWS = [json.loads(x) for x in (HERE / "InfoBench.json").read_text(encoding="utf-8").splitlines()]
QUESTIONS = {q: k for r in ROWS for k, q in enumerate(r["decomposed_questions"])}
YES = ("YES", "Yes.", "YES, it does.")
NO = ("NO", "No.", "The answer is NO.")


def _reply(question: str, text: str) -> str:
    """The scripted judge of PROVENANCE.md."""
    word = re.search(r"mention (\w+)", question).group(1)  # type: ignore[union-attr]
    if word == "hills":
        return "I cannot tell."
    return (YES if word.lower() in text.lower() else NO)[QUESTIONS[question] % 3]


class _Judge:
    """The scripted judge, reading the conversation the verifier sends (first message: rubric + texts)."""

    kind, model = "fake", "scripted-judge"

    def __init__(self) -> None:
        self.seen: list[list[dict[str, str]]] = []

    def generate(self, batch: Any, config: Any) -> list[Any]:
        from verifier.backends.base import GenResult

        out = []
        for msgs in batch:
            self.seen.append(list(msgs))
            first = msgs[0]["content"]
            text = re.search(r'Generated Text:\n"(.*)"\n\nQuestion:\n', first, re.S).group(1)  # type: ignore[union-attr]
            last = msgs[-1]["content"]
            question = (last.rsplit("Question:\n", 1)[1] if len(msgs) == 1 else last).strip()
            out.append(GenResult(_reply(question, text)))
        return out

    def score(self, batch: Any, candidates: Any) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        pass


def test_the_release_file_loads_as_shipped() -> None:
    rows = BENCHMARK.load_rows(HERE / "InfoBench.json")
    assert rows == ROWS  # JSON Lines under a .json name, not "invalid JSON: Extra data (line 2)"


def _run(tmp_path_factory: pytest.TempPathFactory, benchmark: str) -> tuple[_Judge, dict[str, Any], list[dict[str, Any]]]:
    judge, used = _Judge(), {}

    def build(spec: str, **kw: Any) -> Any:
        used.update(kw)
        return verifier.Verifier(backend=judge, mode="generate", template=verifier.prompts.load_template(kw["template"]))

    mp = pytest.MonkeyPatch()
    mp.setattr(verifier, "build_verifier", build)
    out = tmp_path_factory.mktemp("ib")
    try:
        res = CliRunner().invoke(app, ["eval", "-b", benchmark, "--data", str(HERE / "InfoBench.json"),
                                       "--responses", str(HERE / "output.json"), "--out", str(out),
                                       "--verifier", "openai:scripted", "--verifier-base-url", "http://127.0.0.1:9/v1", "--judge-mode", "generate", "--no-progress"])
    finally:
        mp.undo()
    assert res.exit_code == 0, res.output
    assert used["template"] == "infobench"  # the benchmark's own judge, not the generic VerIF template
    records = [json.loads(x) for x in (out / "samples" / f"{benchmark}.jsonl").read_text(encoding="utf-8").splitlines()]
    return judge, json.loads((out / "summary.json").read_text(encoding="utf-8")), records


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[_Judge, dict[str, Any], list[dict[str, Any]]]:
    return _run(tmp_path_factory, "infobench")


@pytest.fixture(scope="module")
def conversation(tmp_path_factory: pytest.TempPathFactory) -> tuple[_Judge, dict[str, Any], list[dict[str, Any]]]:
    return _run(tmp_path_factory, "infobench_conversation")


def test_the_judge_sees_the_authors_rubric_and_format(run: tuple[_Judge, dict[str, Any], list]) -> None:
    judge, summary, _ = run
    firsts = {m[-1]["content"] for m in judge.seen}
    for rid, message in AUTHORS["first_messages"].items():
        assert message in firsts, rid  # byte for byte, with and without an Input block
    assert all(len(m) == 1 and m[0]["role"] == "user" for m in judge.seen)
    assert summary["judge"]["template"] == "infobench"


def test_verdicts_equal_the_authors_up_to_their_stop(run: tuple[_Judge, dict[str, Any], list]) -> None:
    """Each question on its own: the same verdicts wherever the authors asked; after their loop stopped at the
    unreadable reply (task 2, "hills"), the questions they never asked are judged here."""
    _, summary, records = run
    ours = {r["id"]: [c["passed"] for c in r["turns"][0]["scores"]["strict"]["constraints"]] for r in records}
    for rid, theirs in AUTHORS["eval"].items():
        assert ours[rid][:len(theirs)] == theirs, rid
    assert ours["domain_oriented_task_2"] == [True, None, False, True]
    m = summary["benchmarks"]["infobench"]["metrics"]
    easy = AUTHORS["eval"]["domain_oriented_task_1"] + AUTHORS["eval"]["domain_oriented_task_8"]
    assert m["drfr_easy"]["rate"] == pytest.approx(sum(easy) / len(easy))  # no stop there: the authors' number


def test_conversation_mode_sends_the_authors_conversations(conversation: tuple[_Judge, dict[str, Any], list]) -> None:
    judge, summary, records = conversation
    for rid, conv in AUTHORS["conversations"].items():
        assert conv[:-1] in judge.seen, rid  # the last request, message for message (their messages, our replies)
    ours = {r["id"]: r["turns"][0]["extra"]["infobench_eval"] for r in records}
    for rid, theirs in AUTHORS["eval"].items():
        assert ours[rid] == theirs + [None] * (len(ours[rid]) - len(theirs)), rid  # unasked ones undecided
    m = summary["benchmarks"]["infobench_conversation"]["metrics"]
    flat = [v for vs in AUTHORS["eval"].values() for v in vs]
    # the authors' "Percentage of True" leaves the 2 unasked questions out of the total (10); here they are undecided
    assert (m["drfr"]["passed"], m["drfr"]["total"], m["drfr"]["undecided"]) == (flat.count(True), 12, 3)
    assert flat.count(True) / len(flat) == pytest.approx(0.6)


def test_output_files_without_an_output_say_which_line(tmp_path: Path) -> None:
    bad = tmp_path / "output.json"
    bad.write_text(json.dumps({**ROWS[0], "output": 3}) + "\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["eval", "-b", "infobench", "--data", str(HERE / "InfoBench.json"),
                                   "--responses", str(bad), "--out", str(tmp_path / "o"), "--no-llm"])
    assert res.exit_code == 2 and "line 1" in res.output and "'output'" in res.output


def test_benchmarks_wanting_different_judges_are_not_mixed(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["eval", "-b", "infobench,verinstruct", "--data", f"infobench={HERE / 'InfoBench.json'}",
                                   "--data", "verinstruct=nope.jsonl", "--responses", str(HERE / "output.json"),
                                   "--out", str(tmp_path)])
    assert res.exit_code == 2 and "different judge prompts (generic, infobench)" in res.output
