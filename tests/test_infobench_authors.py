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


class _Judge:
    """The scripted judge of PROVENANCE.md, reading the message the verifier renders."""

    kind, model = "fake", "scripted-judge"

    def __init__(self) -> None:
        self.seen: list[list[dict[str, str]]] = []

    def generate(self, batch: Any, config: Any) -> list[Any]:
        from verifier.backends.base import GenResult

        out = []
        for msgs in batch:
            self.seen.append(list(msgs))
            content = msgs[-1]["content"]
            text = re.search(r'Generated Text:\n"(.*)"\n\nQuestion:\n', content, re.S).group(1)  # type: ignore[union-attr]
            question = content.rsplit("Question:\n", 1)[1].strip()
            word = re.search(r"mention (\w+)", question).group(1)  # type: ignore[union-attr]
            out.append(GenResult((YES if word.lower() in text.lower() else NO)[QUESTIONS[question] % 3]))
        return out

    def score(self, batch: Any, candidates: Any) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        pass


def test_the_release_file_loads_as_shipped() -> None:
    rows = BENCHMARK.load_rows(HERE / "InfoBench.json")
    assert rows == ROWS  # JSON Lines under a .json name, not "invalid JSON: Extra data (line 2)"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[_Judge, dict[str, Any], list[dict[str, Any]]]:
    judge, used = _Judge(), {}

    def build(spec: str, **kw: Any) -> Any:
        used.update(kw)
        return verifier.Verifier(backend=judge, mode="generate", template=verifier.prompts.load_template(kw["template"]))

    mp = pytest.MonkeyPatch()
    mp.setattr(verifier, "build_verifier", build)
    out = tmp_path_factory.mktemp("ib")
    try:
        res = CliRunner().invoke(app, ["eval", "-b", "infobench", "--data", str(HERE / "InfoBench.json"),
                                       "--responses", str(HERE / "output.json"), "--out", str(out),
                                       "--verifier", "openai:scripted", "--judge-mode", "generate", "--no-progress"])
    finally:
        mp.undo()
    assert res.exit_code == 0, res.output
    assert used["template"] == "infobench"  # the benchmark's own judge, not the generic VerIF template
    records = [json.loads(x) for x in (out / "samples" / "infobench.jsonl").read_text(encoding="utf-8").splitlines()]
    return judge, json.loads((out / "summary.json").read_text(encoding="utf-8")), records


def test_the_judge_sees_the_authors_rubric_and_format(run: tuple[_Judge, dict[str, Any], list]) -> None:
    judge, summary, _ = run
    firsts = {m[-1]["content"] for m in judge.seen}
    for rid, message in AUTHORS["first_messages"].items():
        assert message in firsts, rid  # byte for byte, with and without an Input block
    assert all(len(m) == 1 and m[0]["role"] == "user" for m in judge.seen)
    assert summary["judge"]["template"] == "infobench"


def test_verdicts_and_drfr_equal_the_authors(run: tuple[_Judge, dict[str, Any], list]) -> None:
    _, summary, records = run
    ours = {r["id"]: [c["passed"] for c in r["turns"][0]["scores"]["strict"]["constraints"]] for r in records}
    assert ours == AUTHORS["eval"]
    flat = [v for vs in AUTHORS["eval"].values() for v in vs]
    m = summary["benchmarks"]["infobench"]["metrics"]
    assert m["drfr"]["rate"] == pytest.approx(sum(flat) / len(flat))  # the authors' "Percentage of True"
    easy = AUTHORS["eval"]["domain_oriented_task_1"] + AUTHORS["eval"]["domain_oriented_task_8"]
    assert m["drfr_easy"]["rate"] == pytest.approx(sum(easy) / len(easy))


def test_output_files_without_an_output_say_which_line(tmp_path: Path) -> None:
    bad = tmp_path / "output.json"
    bad.write_text(json.dumps({**ROWS[0], "output": 3}) + "\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["eval", "-b", "infobench", "--data", str(HERE / "InfoBench.json"),
                                   "--responses", str(bad), "--out", str(tmp_path / "o"), "--no-llm"])
    assert res.exit_code == 2 and "line 1" in res.output and "'output'" in res.output
