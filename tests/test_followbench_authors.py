"""FollowBench's example category end to end: `verif eval --responses` on the authors' inference output shape
(`api_output/<model>/example_constraint.jsonl`) gives the per-level HSR and CSL that the authors' unmodified
`rule_based_evaluation.py` computes on the same file (fixtures/benchmarks/followbench_authors; PROVENANCE.md)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from verinstruct.cli import _register, app

_register()
HERE = Path(__file__).resolve().parent / "fixtures" / "benchmarks" / "followbench_authors"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "followbench"
AUTHORS = json.loads((HERE / "authors_example.json").read_text(encoding="utf-8"))


def _api_output(path: Path) -> None:
    """The rule of PROVENANCE.md: per row, the ((example_id + level) % count)-th candidate generation."""
    cands: dict[tuple[int, int], list[str]] = {}
    for line in (SHARED / "rule_reference.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r["category"] == "example":
            cands.setdefault((r["example_id"], r["level"]), []).append(r["generation"])
    rows = json.loads((SHARED / "example_constraints.json").read_text(encoding="utf-8"))
    path.parent.mkdir(parents=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            c = cands[(row["example_id"], row["level"])]
            gen = c[(row["example_id"] + row["level"]) % len(c)]
            f.write(json.dumps({"prompt": row["instruction"], "choices": [{"message": {"content": gen}}]}) + "\n")


def test_example_category_equals_the_authors(tmp_path: Path) -> None:
    if not SHARED.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"reference data missing: {SHARED}")
        pytest.skip(f"reference data missing: {SHARED}")
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(SHARED / "example_constraints.json", data)
    _api_output(tmp_path / "api_output" / "m" / "example_constraint.jsonl")
    res = CliRunner().invoke(app, ["eval", "-b", "followbench", "--data", str(data), "--responses",
                                   str(tmp_path / "api_output" / "m"), "--no-llm", "--out", str(tmp_path / "run"),
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    b = json.loads((tmp_path / "run" / "summary.json").read_text())["benchmarks"]["followbench"]
    m = b["metrics"]
    assert [f"{100 * m[f'example/hsr_level_{n}']['rate']:.2f}" for n in range(1, 6)] == AUTHORS["hsr_levels"]
    assert (m["example/csl"]["passed"], m["example/csl"]["total"]) == (AUTHORS["csl_sum"], AUTHORS["n_group"])
    assert round(m["example/csl"]["rate"], 1) == AUTHORS["csl"]
    assert b["metric_info"]["hsr"]["aggregation"].startswith("POOLED")
    assert b["metric_info"]["example/hsr"]["aggregation"].startswith("example category")
