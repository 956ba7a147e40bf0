"""Multi-IF where the authors' checker is not Google's IFEval: `verif eval --responses` on a Hub-shaped CSV gives
the verdicts and metrics that the authors' unmodified ``ifeval.py`` + ``metrics.py`` give on the same answers
(``fixtures/benchmarks/multi_if_authors/authors_verdicts.json``; see PROVENANCE.md there)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import checkers
from benchmarks.multi_if import BENCHMARK
from verinstruct.cli import _register, app

_register()

HERE = Path(__file__).resolve().parent / "fixtures" / "benchmarks" / "multi_if_authors"
AUTHORS = json.loads((HERE / "authors_verdicts.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], dict]:
    out = tmp_path_factory.mktemp("mif")
    res = CliRunner().invoke(app, ["eval", "-b", "multi_if", "--data", str(HERE / "multiIF_authors_cases.csv"),
                                   "--responses", str(HERE / "responses.jsonl"), "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    records = [json.loads(x) for x in (out / "samples" / "multi_if.jsonl").read_text(encoding="utf-8").splitlines()]
    return records, json.loads((out / "summary.json").read_text(encoding="utf-8"))


def test_verdicts_equal_the_authors(run: tuple[list[dict], dict]) -> None:
    records, _ = run
    ours = {}
    for r in records:
        for t, turn in enumerate(r["turns"]):
            loose = [c["passed"] for c in turn["scores"]["loose"]["constraints"]]
            ours[f"{r['id']}:turn_{t + 1}"] = {"strict": BENCHMARK.strict_verdicts(r, t), "loose": loose}
    assert ours == AUTHORS["verdicts"]


def test_metrics_equal_the_authors(run: tuple[list[dict], dict]) -> None:
    _, summary = run
    metrics = summary["benchmarks"]["multi_if"]["metrics"]
    assert {k: metrics[k]["rate"] for k in AUTHORS["metrics"]} == pytest.approx(AUTHORS["metrics"])


def test_the_three_departures_from_ifeval_one_by_one() -> None:
    """The authors' own examples; Google's checker (kept for IFEval) says otherwise on each."""
    quote_mif, quote_google = checkers.build("multilingual:quotation"), checkers.build("startend:quotation")
    for text in ("\u201c\u6bcf\u5929\u90fd\u6709\u65b0\u9c9c\u9762\u5305\u201d", "\u300c\u6bce\u671d\u300d",
                 "\u201cFlowers\u201d"):
        assert quote_mif.spec.fn(text, {}, "").passed is True
        assert quote_google.spec.fn(text, {}, "").passed is False
    assert quote_mif.spec.fn("\u201cunbalanced\"", {}, "").passed is False
    freq = checkers.build("multilingual:keyword_frequency", {"keyword": "*", "frequency": 2, "relation": "at least"})
    assert freq.spec.fn("a * b * c", freq.params, "").passed is False  # authors: re.error -> False
    with pytest.raises(checkers.ParamError):  # IFEval's checker still refuses the regex up front
        checkers.build("keywords:frequency", {"keyword": "*", "frequency": 2, "relation": "at least"})


def test_the_authors_step_files_as_responses(tmp_path: Path) -> None:
    """Their runner writes results/<model>/<prefix>_step_<n>.csv (the data's columns, turn_index, turns, responses),
    answering every row at every step (a "None" prompt too); `--responses` reads that folder."""
    import csv

    rows = list(csv.DictReader((HERE / "multiIF_authors_cases.csv").open(newline="", encoding="utf-8")))
    answers = {r["id"]: [t["response"] for t in r["turns"]] for r in
               (json.loads(x) for x in (HERE / "responses.jsonl").read_text(encoding="utf-8").splitlines())}
    folder = tmp_path / "results" / "model"
    folder.mkdir(parents=True)
    for n in (1, 2, 3):
        with (folder / f"eval_result_step_{n}.csv").open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=[*rows[0], "turn_index", "turns", "responses"])
            w.writeheader()
            for r in rows:
                own = answers[r["key"]]
                w.writerow({**r, "turn_index": str(n), "turns": "[]",
                            "responses": own[n - 1] if n <= len(own) else "There is no new request."})
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["eval", "-b", "multi_if", "--data", str(HERE / "multiIF_authors_cases.csv"),
                                   "--responses", str(folder), "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "summary.json").read_text(encoding="utf-8"))["benchmarks"]["multi_if"]["metrics"]
    assert {k: metrics[k]["rate"] for k in AUTHORS["metrics"]} == pytest.approx(AUTHORS["metrics"])
