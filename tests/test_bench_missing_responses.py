"""``verif eval --responses --missing-responses``: AllenAI's IFBench ``sample_output.jsonl`` as shipped.

The file has no response for 7 of the 300 test prompts (keys 268-274). AllenAI's ``run_eval.py`` keeps such a
prompt in every total with every instruction False (``evaluation_lib.empty_output``); ``fail`` must do exactly
that, ``skip`` must leave them out, and ``error`` (the default) must refuse the file. The oracle is AllenAI's own
verdicts (``reference_verdicts.jsonl``, made by their unmodified code, see its PROVENANCE.md) for the 293 answered
prompts, plus their ``empty_output`` rule for the 7 others; the 18 instructions whose reference checkers need NLTK
data no package ships are null there and undecided here (compared as such).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from verinstruct.cli import _register, app

_register()

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ifbench"
MISSING = [str(k) for k in range(268, 275)]


def _need_data() -> None:
    for f in ("IFBench_test.jsonl", "sample_output.jsonl", "reference_verdicts.jsonl"):
        if not (DATA / f).exists():
            if os.environ.get("CI"):
                pytest.fail(f"reference data missing: {DATA / f}")
            pytest.skip(f"reference data missing: {DATA / f}")


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _eval(out: Path, *extra: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, ["eval", "-b", "ifbench", "--data", str(DATA / "IFBench_test.jsonl"),
                                   "--responses", str(DATA / "sample_output.jsonl"), "--out", str(out),
                                   "--no-progress", *extra])
    return res.exit_code, res.output


@pytest.fixture(scope="module")
def authors() -> dict[str, dict]:
    """Per test prompt key: the authors' strict/loose verdicts (None: their checker could not run here)."""
    _need_data()
    ref = {str(r["key"]): r for r in _jsonl(DATA / "reference_verdicts.jsonl")}
    out = {}
    for row in _jsonl(DATA / "IFBench_test.jsonl"):
        key = str(row["key"])
        if key in ref:
            out[key] = {"strict": ref[key]["strict"], "loose": ref[key]["loose"]}
        else:  # no response: run_eval.py's empty_output, every instruction False
            out[key] = {m: [False] * len(row["instruction_id_list"]) for m in ("strict", "loose")}
    return out


def _rates(authors: dict[str, dict], mode: str, keys: list[str]) -> dict[str, tuple[int, int]]:
    """The decided-only and headline counts from the authors' verdicts (undecided counts as not passed)."""
    inst = [v for k in keys for v in authors[k][mode]]
    prompts = [False if False in authors[k][mode] else (None if None in authors[k][mode] else True) for k in keys]
    return {f"inst_{mode}": (inst.count(True), len(inst)),
            f"inst_{mode}_decided": (inst.count(True), len(inst) - inst.count(None)),
            f"prompt_{mode}": (prompts.count(True), len(prompts)),
            f"prompt_{mode}_decided": (prompts.count(True), len(prompts) - prompts.count(None))}


def test_fail_scores_the_authors_numbers(tmp_path: Path, authors: dict[str, dict]) -> None:
    code, output = _eval(tmp_path / "o", "--missing-responses", "fail")
    assert code == 0, output
    assert "7 samples have no response" in output and "--missing-responses fail" in output
    records = {r["id"]: r for r in _jsonl(tmp_path / "o" / "samples" / "ifbench.jsonl")}
    assert len(records) == 300 == len(authors)
    assert sorted((k for k, r in records.items() if r.get("missing_response")), key=int) == MISSING
    for key, want in authors.items():
        for mode in ("strict", "loose"):
            got = [c["passed"] for c in records[key]["turns"][0]["scores"][mode]["constraints"]]
            assert got == want[mode], (key, mode)
    assert records["268"]["turns"][0]["response"] is None  # no response was invented
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())["benchmarks"]["ifbench"]
    assert summary["missing_responses"] == {"policy": "fail", "count": 7}
    for mode in ("strict", "loose"):
        for name, (passed, total) in _rates(authors, mode, list(authors)).items():
            assert (summary["metrics"][name]["passed"], summary["metrics"][name]["total"]) == (passed, total), name
    assert summary["metrics"]["prompt_strict"]["total"] == 300  # the 7 stay in the denominator, as run_eval.py
    assert "7 with no response, scored as failing (--missing-responses fail)" in output  # the printed table
    run = json.loads((tmp_path / "o" / "run.json").read_text())
    assert run["generation"]["missing_responses"] == "fail"


def test_skip_leaves_them_out_of_every_total(tmp_path: Path, authors: dict[str, dict]) -> None:
    code, output = _eval(tmp_path / "o", "--missing-responses", "skip")
    assert code == 0, output
    ids = {r["id"] for r in _jsonl(tmp_path / "o" / "samples" / "ifbench.jsonl")}
    assert ids == set(authors) - set(MISSING)
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())["benchmarks"]["ifbench"]
    assert summary["missing_responses"] == {"policy": "skip", "count": 7}
    assert "(293 samples; 7 with no response, left out (--missing-responses skip))" in output
    answered = [k for k in authors if k not in MISSING]
    for mode in ("strict", "loose"):
        for name, (passed, total) in _rates(authors, mode, answered).items():
            assert (summary["metrics"][name]["passed"], summary["metrics"][name]["total"]) == (passed, total), name


def test_error_is_the_default_and_names_the_option(tmp_path: Path) -> None:
    _need_data()
    code, output = _eval(tmp_path / "o")
    assert code == 2
    lines = output.strip().splitlines()
    assert len(lines) == 1 and "no response for 7 ifbench sample(s)" in lines[0] and "'268'" in lines[0]
    assert "--missing-responses fail" in lines[0]
    assert not (tmp_path / "o" / "samples").exists()


def test_a_resumed_run_cannot_mix_policies(tmp_path: Path) -> None:
    _need_data()
    code, output = _eval(tmp_path / "o", "--missing-responses", "fail", "--limit", "3")
    assert code == 0, output
    code, output = _eval(tmp_path / "o", "--missing-responses", "skip", "--limit", "3")
    assert code == 2 and "different settings (generation)" in output


def test_bad_values_are_one_line(tmp_path: Path) -> None:
    _need_data()
    code, output = _eval(tmp_path / "o", "--missing-responses", "empty")
    assert code == 2 and "--missing-responses must be one of error, fail, skip" in output
    res = CliRunner().invoke(app, ["eval", "-b", "ifbench", "--missing-responses", "fail", "--out",
                                   str(tmp_path / "p")])
    assert res.exit_code == 2 and "--missing-responses applies only with --responses" in res.output


def test_a_null_turn_under_fail_fails_without_a_checker(tmp_path: Path) -> None:
    """A stored record whose response is null: under ``fail`` its constraints are False (even one that an empty
    answer would pass), counted; under the default it stays a failed generation (exit 1, not scored)."""
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"key": 1, "prompt": "Say hi.", "instruction_id_list": ["punctuation:no_comma"],
                                "kwargs": [{}]}) + "\n" + json.dumps(
        {"key": 2, "prompt": "Say bye.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}) + "\n")
    resp = tmp_path / "r.jsonl"
    resp.write_text(json.dumps({"id": "1", "turns": [{"response": None}]}) + "\n"
                    + json.dumps({"id": "2", "turns": [{"response": "bye"}]}) + "\n")
    args = ["eval", "-b", "ifeval", "--data", str(data), "--responses", str(resp), "--no-progress"]
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "o"), "--missing-responses", "fail"])
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "o" / "summary.json").read_text())["benchmarks"]["ifeval"]
    assert s["missing_responses"] == {"policy": "fail", "count": 1}
    assert (s["metrics"]["inst_strict"]["passed"], s["metrics"]["inst_strict"]["total"]) == (1, 2)
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "e")])
    assert res.exit_code == 1
    s = json.loads((tmp_path / "e" / "summary.json").read_text())["benchmarks"]["ifeval"]
    assert s["failed_generation"] == 1 and s["metrics"]["inst_strict"]["total"] == 1
