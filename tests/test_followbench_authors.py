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


JUDGED = json.loads((HERE / "authors_style_judge.json").read_text(encoding="utf-8"))


def _judge_reply(prompt: str) -> str:
    """The scripted judge of PROVENANCE.md (by the prompt's SHA-256)."""
    import hashlib
    import re

    n = int(re.search(r"with (\d+) additional constraint", prompt).group(1))  # type: ignore[union-attr]
    h = int(hashlib.sha256(prompt.encode()).hexdigest(), 16)
    if h % 7 == 0:
        return "The answer follows the instruction."
    return f"1) The constraints are ...\n2) Checked.\n{['YES' if (h >> j) & 1 else 'NO' for j in range(n)]!r}"


def test_llm_rows_with_the_authors_judge_protocol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not SHARED.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"reference data missing: {SHARED}")
        pytest.skip(f"reference data missing: {SHARED}")
    import hashlib

    import verifier
    from verifier.backends.base import GenResult

    rows = json.loads((SHARED / "style_constraints.json").read_text(encoding="utf-8"))
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(SHARED / "style_constraints.json", data)
    out = tmp_path / "api_output" / "m" / "style_constraint.jsonl"
    out.parent.mkdir(parents=True)
    out.write_text("".join(json.dumps({"prompt": r["instruction"], "choices": [{"message": {
        "content": f"Answer to example {r['example_id']} at level {r['level']}."}}]}) + "\n" for r in rows),
        encoding="utf-8")
    sent: list[str] = []

    class Judge:
        kind, model = "fake", "scripted-judge"

        def generate(self, batch, config):  # type: ignore[no-untyped-def]
            sent.extend(m[-1]["content"] for m in batch)
            return [GenResult(_judge_reply(m[-1]["content"])) for m in batch]

        def score(self, batch, candidates):  # type: ignore[no-untyped-def]
            raise NotImplementedError

        def close(self) -> None:
            pass

    monkeypatch.setattr(verifier, "build_verifier", lambda spec, **kw: verifier.Verifier(backend=Judge(),
                                                                                         mode="generate"))
    res = CliRunner().invoke(app, ["eval", "-b", "followbench_authors_judge", "--data", str(data), "--responses",
                                   str(out.parent), "--verifier", "openai:scripted", "--verifier-base-url", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "run"),
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    # every prompt is the authors' prompt, byte for byte
    assert sorted(hashlib.sha256(p.encode()).hexdigest() for p in sent) == sorted(
        r["prompt_sha256"] for r in JUDGED["rows"].values())
    records = [json.loads(x) for x in (tmp_path / "run" / "samples" / "followbench_authors_judge.jsonl")
               .read_text(encoding="utf-8").splitlines()]
    unreadable = 0
    for r in records:
        key = f"{r['meta']['example_id']}:{r['meta']['level']}"
        vs = r["turns"][0]["extra"]["followbench_judge"]["verdicts"]
        hard, soft = JUDGED["rows"][key]["hard_soft"]
        if hard == -1:  # the authors' "manually fix" (counted as -1 in their sums): undecided here
            assert vs == [None] * r["meta"]["level"]
            unreadable += 1
        else:
            assert (int(all(vs)), sum(vs) / len(vs)) == (hard, pytest.approx(soft)), key
    assert len(records) == 150 and unreadable > 0
    m = json.loads((tmp_path / "run" / "summary.json").read_text())["benchmarks"]["followbench_authors_judge"]["metrics"]
    for n in range(1, 6):  # the authors' per-level sums, their -1s put back as undecided
        level = [JUDGED["rows"][f"{r['meta']['example_id']}:{n}"]["hard_soft"][0] for r in records
                 if r["meta"]["level"] == n]
        assert m[f"style/hsr_level_{n}"]["passed"] == JUDGED["hsr_sums"][n - 1] + level.count(-1)
        assert m[f"style/hsr_level_{n}"]["undecided"] == level.count(-1)
