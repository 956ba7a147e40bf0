"""IFEval through the benchmark runner: loader, hand-computed metrics, and the reference numbers via `verif eval --responses`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from benchmarks.base import BenchmarkError
from benchmarks.ifeval import BENCHMARK as IFEVAL
from benchmarks.responses import ResponseGenerator
from benchmarks.runner import RunOptions, run_benchmark

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ifeval"


def need_shared() -> None:
    if not SHARED.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"reference data missing: {SHARED}")
        pytest.skip(f"reference data missing: {SHARED}")


def test_bundled_loader_has_googles_541_prompts() -> None:
    samples = IFEVAL.load_samples()
    assert len(samples) == 541
    first = samples[0]
    assert first.id == "1000" and len(first.turns) == 1
    assert first.turns[0].messages[0]["role"] == "user"
    assert first.turns[0].instance is not None
    assert sum(len(s.turns[0].instance.constraints) for s in samples) == 834  # type: ignore[union-attr]
    assert len(IFEVAL.load_samples(limit=5)) == 5


def test_hub_shaped_rows_drop_none_kwargs_and_bad_rows_name_the_row(tmp_path: Path) -> None:
    # google/IFEval on the Hub gives every parameter name, None when unused
    row = {"key": 7, "prompt": "p", "instruction_id_list": ["length_constraints:number_words"],
           "kwargs": [{"relation": "at least", "num_words": 3, "keyword": None, "language": None}]}
    s = IFEVAL.to_samples([row])[0]
    assert dict(s.turns[0].instance.constraints[0].check.params) == {"relation": "at least", "num_words": 3}  # type: ignore[union-attr]
    (tmp_path / "bad.jsonl").write_text(json.dumps({**row, "instruction_id_list": ["nope:x"]}) + "\n")
    with pytest.raises(BenchmarkError, match="ifeval row 1"):
        IFEVAL.load_samples(tmp_path / "bad.jsonl")


def _score(rows: list[dict], responses: dict[str, str], tmp_path: Path) -> dict:
    from verinstruct.scorer import Scorer

    samples = IFEVAL.to_samples(rows)
    with Scorer(None) as sc:
        res = run_benchmark(IFEVAL, samples, ResponseGenerator({k: [v] for k, v in responses.items()}, "t"),
                            lambda _: sc, tmp_path, RunOptions(progress=False, chunk_size=1))
    return IFEVAL.metrics(res.records)


def test_metrics_against_hand_computed_numbers(tmp_path: Path) -> None:
    rows = [
        {"key": 1, "prompt": "a", "instruction_id_list": ["change_case:english_lowercase", "punctuation:no_comma"],
         "kwargs": [{}, {}]},
        {"key": 2, "prompt": "b", "instruction_id_list": ["change_case:english_lowercase"], "kwargs": [{}]},
    ]
    # 1: lowercase passes, the comma fails (both modes). 2: "Note" fails strict; loose drops the first line.
    m = _score(rows, {"1": "hello, world", "2": "**Note**\nall lower case here"}, tmp_path)
    assert list(m)[:4] == ["prompt_strict", "prompt_loose", "inst_strict", "inst_loose"]
    assert m["prompt_strict"] == {"passed": 0, "total": 2, "rate": 0.0, "undecided": 0}
    assert m["prompt_loose"] == {"passed": 1, "total": 2, "rate": 0.5, "undecided": 0}
    assert m["inst_strict"] == {"passed": 1, "total": 3, "rate": 1 / 3, "undecided": 0}
    assert m["inst_loose"] == {"passed": 2, "total": 3, "rate": 2 / 3, "undecided": 0}


def test_thinking_is_removed_before_scoring(tmp_path: Path) -> None:
    rows = [{"key": 1, "prompt": "a", "instruction_id_list": ["change_case:english_lowercase"], "kwargs": [{}]}]
    m = _score(rows, {"1": "<think>Let me THINK</think>\nall lowercase"}, tmp_path)
    assert m["inst_strict"]["passed"] == 1
    rec = json.loads((tmp_path / "samples" / "ifeval.jsonl").read_text())
    assert rec["turns"][0]["thinking"] == "removed" and rec["turns"][0]["scored_text"] == "all lowercase"


def test_reference_numbers_through_verif_eval_responses(tmp_path: Path) -> None:
    need_shared()
    from typer.testing import CliRunner

    from verinstruct.cli import _register, app

    _register()
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["eval", "--responses", str(SHARED / "responses_gpt4.jsonl"), "--benchmarks",
                                   "ifeval", "--data", str(SHARED / "input_data.jsonl"), "--out", str(out),
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    m = summary["benchmarks"]["ifeval"]["metrics"]
    got = {k: (m[k]["passed"], m[k]["total"]) for k in ("prompt_strict", "prompt_loose", "inst_strict", "inst_loose")}
    assert got == {"prompt_strict": (417, 541), "prompt_loose": (431, 541), "inst_strict": (698, 834),
                   "inst_loose": (714, 834)}
    assert "'2785' matched by line" in res.output  # the reworded prompt, paired by its line
    assert summary["model"].startswith("responses:") and summary["judge"]["used"] is False
    assert "verinstruct" in summary["versions"] and summary["versions"]["checkers"]
    assert (out / "summary.md").read_text().count("| prompt_strict | 77.1 (417/541) |") == 1
    # the table's 95% interval of prompt-level strict accuracy: a seeded bootstrap, within half a point of
    # the normal approximation 417/541 +- 1.96 * sqrt(p (1 - p) / 541) = 73.54..80.62, computed by hand
    line = next(x for x in (out / "summary.md").read_text().splitlines() if x.startswith("| prompt_strict |"))
    low, high = (float(v) for v in line.split("|")[3].strip().split("-"))
    assert abs(low - 73.54) < 0.5 and abs(high - 80.62) < 0.5, line
    assert (out / "per_type.png").stat().st_size > 1000
    assert len((out / "samples" / "ifeval.jsonl").read_text().splitlines()) == 541
