"""FollowBench: loading and conversion of the authors' data, rule verdicts through the Scorer, and metrics
(HSR / SSR per level, CSL, per category) against numbers computed by hand."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from benchmarks.base import BenchmarkError, Sample
from benchmarks.followbench import BENCHMARK, consecutive_levels
from benchmarks.responses import ResponseGenerator
from benchmarks.runner import RunOptions, run_benchmark
from checkers.followbench import EXAMPLE_ID, RULE_SOURCES
from verinstruct import Scorer
from verinstruct.schema import LLMCheck, RegistryCheck

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "followbench"


@pytest.fixture(scope="module")
def samples() -> dict[str, Sample]:
    if not DATA.is_dir():
        msg = f"FollowBench data not found at {DATA}"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return {s.id: s for s in BENCHMARK.load_samples(DATA)}


def _records(samples: list[Sample], responses: list[str], scorer: Scorer, out: Path) -> list[dict[str, Any]]:
    """Records from the shared runner, each sample answered with its response."""
    gen = ResponseGenerator({s.id: [r] for s, r in zip(samples, responses, strict=True)}, "test")
    return run_benchmark(BENCHMARK, samples, gen, lambda _: scorer, out, RunOptions(progress=False)).records


def test_loader_reads_the_authors_files(samples: dict[str, Sample]) -> None:
    # 944 rows; level 0 is not generated: 5/6 of the 744 non-example rows + all 200 example rows
    assert len(samples) == 620 + 200
    by_cat = Counter(s.meta["category"] for s in samples.values())
    assert by_cat == {"content": 125, "situation": 110, "style": 150, "format": 150, "example": 200, "mixed": 85}
    judges = Counter((s.meta["category"], s.meta["judge"]) for s in samples.values())
    assert judges[("example", "rule")] == 200
    assert judges[("format", "rule")] == 10  # examples 22 and 30
    assert judges[("content", "rule")] == 12 * 5  # E2E 5, CONLL2003 5, WIKIEVENTS 2 examples
    assert judges[("style", "rule")] == 0

    e2e = samples["content:14:2"].turns[0].instance
    assert e2e is not None and len(e2e.constraints) == 1
    check = e2e.constraints[0].check
    assert isinstance(check, RegistryCheck) and check.checker == RULE_SOURCES["E2E"]
    assert check.params["level"] == 2 and "food[French]" in check.params["target"]

    ex = samples["example:1:3"].turns[0].instance
    assert ex is not None and ex.constraints[0].check.checker == EXAMPLE_ID  # type: ignore[union-attr]
    assert ex.constraints[0].check.params["template"] == "{{'AI assistant': '{answer}'}}"  # type: ignore[union-attr]

    llm = samples["content:1:3"]
    inst = llm.turns[0].instance
    assert inst is not None and llm.turns[0].messages == ({"role": "user", "content": inst.prompt},)
    assert [c.kind for c in inst.constraints] == ["soft"] * 3
    assert all(isinstance(c.check, LLMCheck) for c in inst.constraints)
    level0 = "Pick one category for the following text."
    for i, c in enumerate(inst.constraints, start=1):  # every judge sees the whole evolution path
        assert level0 in c.text and inst.prompt in c.text and "content constraint" in c.text
        assert c.text.endswith(f"#Initial Instruction + {i} constraint{'s' if i > 1 else ''}#: does the text "
                               "satisfy it?")
    mixed = samples["mixed:1:2"].turns[0].instance  # its rows name the type of each added constraint
    assert mixed is not None
    assert ["one format constraint" in mixed.constraints[0].text, "one content constraint" in mixed.constraints[1].text] \
        == [True, True]


def test_hub_shaped_rows_find_their_category(samples: dict[str, Sample]) -> None:
    # Hub rows carry no file name: a mixed row's category lists its constraint types ("format", "format,
    # content", ...); its level-0 row says "mixed", which places the whole example.
    rows = json.loads((DATA / "mixed_constraints.json").read_text())[:12]
    rows += json.loads((DATA / "format_constraints.json").read_text())[:6]
    got = BENCHMARK.to_samples(rows)
    assert [s.id for s in got] == [f"mixed:{e}:{k}" for e in (1, 2) for k in range(1, 6)] + \
        [f"format:1:{k}" for k in range(1, 6)]
    assert got[0].turns[0].instance == samples["mixed:1:1"].turns[0].instance


def test_bad_rows_say_where_and_what() -> None:
    row = {"example_id": 1, "category": "style", "source": "oasst", "level": 1, "instruction": "x", "target": ""}
    with pytest.raises(BenchmarkError, match=r"row 1: style example 1 level 1 .* level 0 of that example is missing"):
        BENCHMARK.to_samples([row])
    with pytest.raises(BenchmarkError, match=r"row 1: field 'level' must be 0-5, got 7"):
        BENCHMARK.to_samples([{**row, "level": 7}])
    with pytest.raises(BenchmarkError, match=r"row 1: field 'example_id' must be an integer"):
        BENCHMARK.to_samples([{**row, "example_id": None}])
    with pytest.raises(BenchmarkError, match=r"row 1: field 'category' must be one of"):
        BENCHMARK.to_samples([{**row, "category": "poetry"}])
    conll = {**row, "category": "content", "source": "CONLL2003", "target": "['a'"}
    with pytest.raises(BenchmarkError, match=r"row 1.*followbench:conll2003.*'target'"):
        BENCHMARK.to_samples([conll])
    with pytest.raises(BenchmarkError, match="no \\*_constraints.json files"):
        BENCHMARK.load_rows(Path(__file__).parent)


def test_reference_verdicts_through_the_scorer(samples: dict[str, Sample]) -> None:
    """The benchmark's own path (conversion + Scorer, strict) reproduces every one of the authors' rule verdicts,
    whitespace-only responses included (FollowBench's checkers declare ``judges_empty``)."""
    ref = [json.loads(line) for line in (DATA / "rule_reference.jsonl").read_text().splitlines()]
    insts = [samples[f"{r['category']}:{r['example_id']}:{r['level']}"].turns[0].instance for r in ref]
    with Scorer(None) as scorer:
        scored = scorer.score_batch(insts, [r["generation"] for r in ref])  # type: ignore[arg-type]
    differ = [(r["generation"], r["passed"]) for r, s in zip(ref, scored, strict=True)
              if s.constraints[0].verdict.passed is not r["passed"]]
    assert differ == []
    assert sum(not r["generation"].strip() for r in ref) >= 12  # the blank responses are really there


def test_metrics_by_hand(samples: dict[str, Sample], scripted_verifier, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # content example 1 is LLM-judged: the fake judge says No to constraint i when the response has "[fail i]"
    # content example 14 (E2E) is rule-judged: the response equals the target at levels 1-3 only
    def decide(prompt: str) -> str:
        i = prompt.rsplit("#Initial Instruction + ", 1)[1].split(" ", 1)[0]
        return "No" if f"[fail {i}]" in prompt else "Yes"

    llm = [samples[f"content:1:{k}"] for k in range(1, 6)]
    llm_resp = ["fine", "[fail 2]", "fine", "[fail 1] [fail 4]", "fine"]
    rule = [samples[f"content:14:{k}"] for k in range(1, 6)]
    rule_resp = [s.turns[0].instance.constraints[0].check.params["target"] for s in rule[:3]] + ["no", "no"]  # type: ignore[union-attr]
    with Scorer(scripted_verifier(decide)) as scorer:
        records = _records(llm + rule, llm_resp + rule_resp, scorer, tmp_path)
    m = BENCHMARK.metrics(records)
    # hard per level: llm T F T F T, rule T T T F F
    assert [m[f"hsr_level_{k}"]["rate"] for k in range(1, 6)] == [1.0, 0.5, 1.0, 0.0, 0.5]
    # soft per level: llm 1, 1/2, 1, 2/4, 1; rule 1 1 1 0 0
    assert [m[f"ssr_level_{k}"]["rate"] for k in range(1, 6)] == [1.0, 0.75, 1.0, 0.25, 0.5]
    assert m["csl"] == {"passed": 4.0, "total": 2, "rate": 2.0, "undecided": 0}  # llm 1 (fails level 2), rule 3
    assert m["hsr"] == {"passed": 6, "total": 10, "rate": 0.6, "undecided": 0}
    assert m["ssr"]["rate"] == pytest.approx(0.7)
    assert m["content/hsr_level_2"] == m["hsr_level_2"] and m["content/csl"] == m["csl"]
    assert list(m)[:11] == [*(f"hsr_level_{k}" for k in range(1, 6)), *(f"ssr_level_{k}" for k in range(1, 6)), "csl"]


def test_undecided_is_counted_not_credited(samples: dict[str, Sample], scripted_verifier, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    levels = [samples[f"content:1:{k}"] for k in range(1, 6)]
    with Scorer(scripted_verifier(lambda p: "Yes" if "[maybe]" not in p else "perhaps")) as scorer:
        records = _records(levels, ["ok", "ok", "[maybe]", "ok", "ok"], scorer, tmp_path)
    m = BENCHMARK.metrics(records)
    assert m["hsr_level_3"] == {"passed": 0, "total": 1, "rate": 0.0, "undecided": 1}
    assert m["ssr_level_3"]["undecided"] == 1 and m["hsr_level_4"]["rate"] == 1.0
    assert m["csl"] == {"passed": 0, "total": 1, "rate": 0.0, "undecided": 1}  # undecided at level 3: no CSL
    assert consecutive_levels([True, False, None, True, True]) == 1
    assert consecutive_levels([True] * 5) == 5


def test_csl_needs_all_five_levels(samples: dict[str, Sample], tmp_path: Path) -> None:
    part = [samples[f"example:1:{k}"] for k in (1, 2)]
    with Scorer(None) as scorer:
        m = BENCHMARK.metrics(_records(part, ["{'AI assistant': 'x'}"] * 2, scorer, tmp_path))
    assert "csl" not in m and m["example/hsr_level_1"]["passed"] == 1
