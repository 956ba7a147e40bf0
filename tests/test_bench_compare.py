"""`verif compare` from the command line on real `verif eval --responses` runs (Google's GPT-4 IFEval responses):
it warns (and with --strict refuses) when runs measured different things, and gives a paired test per metric when
two runs share their samples, checked against the exact binomial tail computed by hand."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from verinstruct.cli import _register, app

_register()
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ifeval"


def _eval(out: Path, responses: Path, limit: int) -> None:
    res = CliRunner().invoke(app, ["eval", "-b", "ifeval", "--data", str(SHARED / "input_data.jsonl"), "--responses",
                                   str(responses), "--limit", str(limit), "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not SHARED.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"reference data missing: {SHARED}")
        pytest.skip(f"reference data missing: {SHARED}")
    tmp = tmp_path_factory.mktemp("cmp")
    gpt4 = SHARED / "responses_gpt4.jsonl"
    _eval(tmp / "six", gpt4, 6)
    _eval(tmp / "forty", gpt4, 40)
    # the same 40 prompts with 5 of GPT-4's prompt-level strict passes blanked out (an empty answer fails)
    records = [json.loads(x) for x in (tmp / "forty" / "samples" / "ifeval.jsonl").read_text().splitlines()]
    passed = [r["id"] for r in records if all(c["passed"] for c in r["turns"][0]["scores"]["strict"]["constraints"])]
    blank = set(passed[:5])
    rows = [json.loads(x) for x in gpt4.read_text(encoding="utf-8").splitlines()][:40]
    worse = tmp / "worse.jsonl"
    # Google's response file is line-aligned with input_data.jsonl, as are the records
    worse.write_text("".join(json.dumps({**r, "response": "" if rec["id"] in blank else r["response"]}) + "\n"
                             for r, rec in zip(rows, records, strict=True)), encoding="utf-8")
    _eval(tmp / "worse", worse, 40)
    return {"six": tmp / "six", "forty": tmp / "forty", "worse": tmp / "worse"}


def test_different_sample_sets_are_named_and_strict_refuses(runs: dict[str, Path]) -> None:
    res = CliRunner().invoke(app, ["compare", str(runs["six"]), str(runs["forty"])])
    assert res.exit_code == 0, res.output
    assert "warning: ifeval: number of samples differs: 6 in" in res.output
    assert "warning: ifeval: data (samples evaluated) differs" in res.output
    assert "warning: ifeval prompt_strict: total 6 in" in res.output
    assert " p=" not in res.output  # no paired test across different samples
    res = CliRunner().invoke(app, ["compare", "--strict", str(runs["six"]), str(runs["forty"])])
    assert res.exit_code == 2 and "not comparable" in res.output


def test_same_samples_get_a_paired_test(runs: dict[str, Path]) -> None:
    res = CliRunner().invoke(app, ["compare", "--json", str(runs["forty"]), str(runs["worse"])])
    assert res.exit_code == 0, res.output
    rows = {r["metric"]: r for r in json.loads(res.output)}
    assert all(not r["warnings"] for r in rows.values())
    p = rows["prompt_strict"]["paired"][1]
    # 5 prompts went from pass to fail, none the other way: two-sided exact p = 2 * (1/2)^5
    assert p["test"] == "mcnemar" and (p["only_base"], p["only_this"], p["n"]) == (5, 0, 40)
    assert p["p_value"] == pytest.approx(2 / 32)
    inst = rows["inst_strict"]["paired"][1]
    assert inst["test"] == "paired_bootstrap" and inst["delta"] < 0 and inst["low"] <= inst["delta"] <= inst["high"]
    assert inst["delta"] == pytest.approx(rows["inst_strict"]["delta_points"][1] / 100, abs=1e-4)
    text = CliRunner().invoke(app, ["compare", str(runs["forty"]), str(runs["worse"])]).output
    assert "p=0.0625" in text and "warning" not in text
