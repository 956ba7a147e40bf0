"""Multi-IF: loading rows of the documented shape (JSONL fixture and the Hub's CSV form), conversion into
turns with cumulative, language-aware constraints, and per-turn / per-language metrics computed by hand."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import pytest

from benchmarks.base import BenchmarkError, Sample
from benchmarks.multi_if import BENCHMARK
from benchmarks.responses import ResponseGenerator
from benchmarks.runner import RunOptions, run_benchmark
from verinstruct import Scorer
from verinstruct.schema import RegistryCheck

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "benchmarks" / "multi_if.jsonl"
ROWS = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]


def test_loader_builds_consecutive_turns() -> None:
    samples = BENCHMARK.load_samples(FIXTURE)
    assert [(s.id, len(s.turns), s.meta["language"]) for s in samples] == [
        ("1001", 3, "English"), ("1002", 2, "Chinese"), ("1003", 1, "Thai"), ("1004", 2, "Hindi")]
    en = samples[0]
    assert [t.messages for t in en.turns] == [
        ({"role": "user", "content": json.loads(ROWS[0][f"turn_{n}_prompt"])["content"]},) for n in (1, 2, 3)]
    last = en.turns[2].instance
    assert last is not None and last.id == "1001:turn_3"
    # cumulative ids, original names kept; the two length checks count by the response's language
    assert [c.name for c in last.constraints] == [
        "change_case:english_lowercase", "length_constraints:number_sentences", "detectable_format:title"]
    checks = [c.check for c in last.constraints]
    assert all(isinstance(c, RegistryCheck) for c in checks)
    assert [c.checker for c in checks] == [  # type: ignore[union-attr]
        "change_case:english_lowercase", "multilingual:number_sentences", "detectable_format:title"]
    assert checks[1].params == {"num_sentences": 3, "relation": "at least"}  # type: ignore[union-attr]
    assert BENCHMARK.load_samples(FIXTURE, limit=2) == samples[:2]


def test_hub_csv_gives_the_same_samples(tmp_path: Path) -> None:
    path = tmp_path / "multiIF.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(ROWS[0]))
        w.writeheader()
        w.writerows(ROWS)
    assert BENCHMARK.load_samples(path) == BENCHMARK.load_samples(FIXTURE)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"turn_2_prompt": "None"}, r"key '1001'\): field 'turn_3_prompt' is given but 'turn_2_prompt' is empty"),
        ({"turn_1_kwargs": "[]"}, r"field 'turn_1_kwargs' has 0 items for 1 instruction ids"),
        ({"turn_1_instruction_id_list": "[\"change_case:lowercase\""}, r"'turn_1_instruction_id_list' is not valid JSON"),
        ({"turn_1_instruction_id_list": "[\"change_case:lowercase\"]"}, r"turn_1_instruction_id_list\[0\].*unknown constraint id"),
        ({"turn_2_kwargs": json.dumps(["{}", json.dumps({"num_sentences": "3", "relation": "at least"})])},
         r"turn_2_instruction_id_list\[1\].*'num_sentences' must be an integer"),
        ({"turn_1_prompt": "{\"role\": \"assistant\", \"content\": \"x\"}"}, r"'turn_1_prompt' must be a user chat message"),
        ({"language": ""}, r"field 'language' must be a non-empty string"),
        ({"key": None}, r"multi_if row 1: field 'key'"),
    ],
)
def test_bad_rows_say_where_and_what(change: dict[str, Any], message: str) -> None:
    with pytest.raises(BenchmarkError, match=message):
        BENCHMARK.to_samples([{**ROWS[0], **change}])


RESPONSES = {
    "1001": ["the sea is wide and blue. waves roll in.",
             "the sea is wide. the waves roll. the gulls cry.",
             "Here is my poem:\n<<the sea>>\nthe sea is wide. the waves roll. the gulls cry."],
    # 22 ideographs (IFEval's \w+ count would see 4 words); then two sentences where fewer than 2 were asked
    "1002": ["春天来了，花儿开了，小鸟在树上唱歌，天气越来越暖和。",
             "春天来了，花儿开了。小鸟在树上唱歌，天气越来越暖和。"],
    "1003": ["ฉันชอบกินข้าว วันนี้อากาศดีมาก\nเราไปเที่ยวทะเลกันไหม"],  # 3 Thai sentences
    "1004": ["यह एक परीक्षण वाक्य है। दूसरा वाक्य! तीसरा?",  # 3 Hindi sentences
             "* पहला बिंदु।\n* दूसरा बिंदु।"],  # 2 bullets but 2 sentences
}


def _run(samples: list[Sample], scorer: Scorer, tmp_path: Path) -> list[dict[str, Any]]:
    """The shared runner, answering each turn from RESPONSES (the model's own answers go back into the chat)."""
    gen = ResponseGenerator({s.id: RESPONSES[s.id] for s in samples}, "test")
    res = run_benchmark(BENCHMARK, samples, gen, lambda _: scorer, tmp_path, RunOptions(progress=False))
    return res.records


def _rate(p: int, t: int) -> dict[str, Any]:
    return {"passed": p, "total": t, "rate": p / t, "undecided": 0}


def test_metrics_by_hand(tmp_path: Path) -> None:
    for module in ("pythainlp", "pycrfsuite", "emoji"):
        try:
            __import__(module)
        except ImportError:
            if os.environ.get("CI"):
                pytest.fail(f"{module} is not installed (pip install 'verinstruct[multilingual]')")
            pytest.skip(f"{module} is not installed")
    with Scorer(None) as scorer:
        records = _run(BENCHMARK.load_samples(FIXTURE), scorer, tmp_path)
    m = BENCHMARK.metrics(records)
    # turn 3 was sent with the model's own answers to turns 1 and 2
    assert [x["role"] for x in records[0]["turns"][2]["messages"]] == ["user", "assistant"] * 2 + ["user"]
    assert records[0]["turns"][2]["messages"][3]["content"] == RESPONSES["1001"][1]
    a = "all_languages"
    # turn 1: every one of the four prompts and instructions passes, strict and loose
    for name in ("prompt_strict", "inst_strict", "prompt_loose", "inst_loose"):
        assert m[f"turn_1_{a}_{name}"] == _rate(4, 4)
    assert m[f"turn_1_{a}_overall"]["rate"] == 1.0
    # turn 2: English passes 2/2; Chinese 1/2 (2 sentences, not < 2); Hindi 1/2 (2 sentences, not >= 3)
    assert m[f"turn_2_{a}_prompt_strict"] == _rate(1, 3) and m[f"turn_2_{a}_inst_strict"] == _rate(4, 6)
    assert m[f"turn_2_{a}_prompt_loose"] == _rate(1, 3) and m[f"turn_2_{a}_inst_loose"] == _rate(4, 6)
    assert m[f"turn_2_{a}_overall"]["rate"] == pytest.approx(0.5)
    assert m["turn_2_Chinese_inst_strict"] == _rate(1, 2) and m["turn_2_English_overall"]["rate"] == 1.0
    # turn 3 (English only): "Here is my poem:" breaks lower case strictly; loose drops that first line
    assert m[f"turn_3_{a}_prompt_strict"] == _rate(0, 1) and m[f"turn_3_{a}_inst_strict"] == _rate(2, 3)
    assert m[f"turn_3_{a}_prompt_loose"] == _rate(1, 1) and m[f"turn_3_{a}_inst_loose"] == _rate(3, 3)
    assert m[f"turn_3_{a}_overall"] == {"passed": pytest.approx(8 / 3), "total": 4, "rate": pytest.approx(2 / 3),
                                        "undecided": 0}
    assert m["turn_1_Thai_prompt_strict"] == _rate(1, 1) and "turn_2_Thai_prompt_strict" not in m
    assert list(m)[:5] == [f"turn_1_{a}_{x}" for x in ("overall", "prompt_strict", "inst_strict", "prompt_loose",
                                                       "inst_loose")]


def test_undecided_is_counted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from checkers import multilingual

    def missing() -> None:
        raise multilingual.MissingDependency("no pythainlp (test)")

    monkeypatch.setattr(multilingual, "_thai", missing)
    thai = [s for s in BENCHMARK.load_samples(FIXTURE) if s.id == "1003"]
    with Scorer(None) as scorer:
        m = BENCHMARK.metrics(_run(thai, scorer, tmp_path))
    assert m["turn_1_Thai_prompt_strict"] == {"passed": 0, "total": 1, "rate": 0.0, "undecided": 1}
    assert m["turn_1_Thai_overall"]["undecided"] == 4


def test_offline_without_a_path_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets.config  # read at import: set it there too, whatever imported datasets before

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
    with pytest.raises(BenchmarkError) as e:
        BENCHMARK.load_rows()
    msg = str(e.value)
    assert "\n" not in msg and "facebook/Multi-IF" in msg and "--data PATH" in msg
