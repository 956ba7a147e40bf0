"""Every strict and loose verdict on IFEval's 541 GPT-4 responses equals Google's reference verdict."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from checkers import build
from checkers.modes import evaluate_rows

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ifeval"
REF = DATA / "reference_verdicts.jsonl"


def _rows() -> list[dict]:
    if not REF.exists():
        if os.environ.get("CI"):
            pytest.fail(f"reference data missing: {REF}")
        pytest.skip(f"reference data missing: {REF}")
    return [json.loads(line) for line in REF.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def verdicts() -> tuple[list[dict], list[list[bool | None]], list[list[bool | None]]]:
    rows = _rows()
    batch = [([build(i, k) for i, k in zip(r["instruction_id_list"], r["kwargs"], strict=True)], r["response"], r["prompt"]) for r in rows]
    strict = [[v.passed for v in vs] for vs in evaluate_rows(batch, "strict")]
    loose = [[v.passed for v in vs] for vs in evaluate_rows(batch, "loose")]
    return rows, strict, loose


def test_every_defined_verdict_matches_reference(verdicts) -> None:
    rows, strict, loose = verdicts
    mismatches = []
    checked = 0
    for r, s, lo in zip(rows, strict, loose, strict=True):
        for j, iid in enumerate(r["instruction_id_list"]):
            if r["reference_undefined"][j]:
                continue
            checked += 1
            if s[j] != r["strict"][j] or lo[j] != r["loose"][j]:
                mismatches.append((r["key"], iid, s[j], r["strict"][j], lo[j], r["loose"][j]))
    assert checked == 832
    assert mismatches == []


def test_reference_undefined_items_are_the_two_letter_frequency_ones(verdicts) -> None:
    rows, strict, loose = verdicts
    undefined = [(r["key"], r["instruction_id_list"][j]) for r in rows for j, u in enumerate(r["reference_undefined"]) if u]
    assert undefined == [(1122, "keywords:letter_frequency"), (1129, "keywords:letter_frequency")]
    # we count the literal '#' / '!': 1122 has 4 '#' (needs >= 4), 1129 has 10 '!' (needs >= 6)
    by_key = {r["key"]: (s, lo) for r, s, lo in zip(rows, strict, loose, strict=True)}
    assert by_key[1122] == ([True, True], [True, True])
    assert by_key[1129] == ([True, True], [True, True])


def test_totals(verdicts) -> None:
    rows, strict, loose = verdicts
    n_inst = sum(len(s) for s in strict)
    assert (sum(all(s) for s in strict), len(rows)) == (417, 541)
    assert (sum(map(sum, strict)), n_inst) == (698, 834)
    # The seeded reference totals are loose 430/541 and 713/834. Its loose verdict on key 1122 is False while
    # its strict verdict on the same instruction is True (it redraws the random letter), which no consistent
    # checker can reproduce: loose tries the strict response first. Counting '#' literally passes both.
    ref_loose_prompt = sum(all(r["loose"]) for r in rows)
    ref_loose_inst = sum(map(sum, (r["loose"] for r in rows)))
    assert (ref_loose_prompt, ref_loose_inst) == (430, 713)
    assert (sum(all(lo) for lo in loose), sum(map(sum, loose))) == (431, 714)
