"""`verif score`: fixture verdicts with --no-llm, streaming output + resume, bad input, provenance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from verinstruct.cli import score as score_cli

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "verinstruct"
RAW = FIXTURES / "verinstruct_fixtures.jsonl"
ROWS = [json.loads(line) for line in RAW.read_text().splitlines()]
SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "verinstruct_sample.jsonl"


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        pass

    score_cli.register(app)
    return app


def run(*args: str) -> object:
    return CliRunner().invoke(_app(), ["score", *args])


def _read(p: Path) -> list[dict]:
    return [json.loads(line) for line in p.read_text().splitlines()]


def test_no_llm_on_fixtures_gives_exactly_the_fixture_verdicts(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    r = run("--input", str(RAW), "--no-llm", "--output", str(out), "--chunk-size", "8")
    assert r.exit_code == 0, r.output
    got = _read(out)
    assert [g["id"] for g in got] == [str(x["id"]) for x in ROWS]
    for row, g in zip(ROWS, got, strict=True):
        assert [c["passed"] for c in g["constraints"]] == row["expected"], row["id"]
        assert [c["name"] for c in g["constraints"]] == [n.split("] ")[-1] for n in row["checkers"]]
        for c, err in zip(g["constraints"], row["expected_error"], strict=True):
            assert set(c) >= {"name", "kind", "check", "passed", "reason"}
            if err == "needs LLM":
                assert c["error"] == "needs LLM verifier (--no-llm)" and c["kind"] == "soft"
            elif err:
                assert c["error"].startswith(err)
            else:
                assert "error" not in c
        hard = [c for c in g["constraints"] if c["kind"] == "hard"]
        assert g["hard_pass_rate"] == (sum(c["passed"] is True for c in hard) / len(hard) if hard else 1.0)
    assert "scored 34 rows of 34" in r.output
    assert "hard: 46/64 passed (71.9%), 5 undecided" in r.output
    assert "needs LLM verifier 20" in r.output
    meta = json.loads((tmp_path / "out.jsonl.meta.json").read_text())
    assert meta["verifier"] is None and meta["verinstruct_version"]


def test_resume_after_interruption_and_overwrite(tmp_path: Path) -> None:
    full = tmp_path / "full.jsonl"
    assert run("--input", str(RAW), "--no-llm", "-o", str(full)).exit_code == 0
    part = tmp_path / "part.jsonl"
    lines = full.read_text().splitlines(keepends=True)
    part.write_text("".join(lines[:5]) + lines[5][:40])  # 5 rows + a torn line, as after a kill mid-write
    (tmp_path / "part.jsonl.meta.json").write_text((tmp_path / "full.jsonl.meta.json").read_text())
    r = run("--input", str(RAW), "--no-llm", "-o", str(part))
    assert r.exit_code == 0, r.output
    assert "resuming after 5 rows" in r.output and "(5 already done)" in r.output
    assert part.read_text() == full.read_text()
    # a finished output resumes to nothing
    r = run("--input", str(RAW), "--no-llm", "-o", str(part))
    assert "scored 0 rows (34 already done)" in r.output and part.read_text() == full.read_text()
    # an output from another input is refused, unless --overwrite
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"id": "zzz", "constraints": []}) + "\n")
    r = run("--input", str(RAW), "--no-llm", "-o", str(other))
    assert r.exit_code == 2 and "do not match the input" in r.output
    r = run("--input", str(RAW), "--no-llm", "-o", str(other), "--overwrite")
    assert r.exit_code == 0 and other.read_text() == full.read_text()


def test_resume_refuses_other_settings(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    assert run("--input", str(RAW), "--no-llm", "-o", str(out)).exit_code == 0
    r = run("--input", str(RAW), "--no-llm", "--loose", "-o", str(out))
    assert r.exit_code == 2 and "different settings (ifeval_mode)" in r.output


def _bad_file(tmp_path: Path) -> Path:
    rows = [dict(ROWS[0]), dict(ROWS[1]), dict(ROWS[2])]
    rows[1].pop("response")
    p = tmp_path / "bad.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n{oops\n")
    return p


def test_malformed_rows_name_the_line(tmp_path: Path) -> None:
    p = _bad_file(tmp_path)
    r = run("--input", str(p), "--no-llm")
    assert r.exit_code == 2
    assert "error: line 2 (id 'vi-002'): field 'response' is missing" in r.output
    rows = [dict(ROWS[0])]
    rows[0]["functions"] = rows[0]["functions"][:2]
    p.write_text(json.dumps(rows[0]) + "\n")
    r = run("--input", str(p), "--no-llm")
    assert r.exit_code == 2 and "line 1 (id 'vi-001'): fields 'checkers' and 'functions' must have the same length" in r.output
    r = run("--input", str(tmp_path / "missing.jsonl"), "--no-llm")
    assert r.exit_code == 2 and "no such input file" in r.output


def test_skip_invalid_keeps_going(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    r = run("--input", str(_bad_file(tmp_path)), "--no-llm", "--skip-invalid", "-o", str(out))
    assert r.exit_code == 0, r.output
    assert "skipped: line 2" in r.output and "skipped: line 4: invalid JSON" in r.output
    assert [g["id"] for g in _read(out)] == ["vi-001", "vi-003"]


def test_ifeval_and_typed_rows(tmp_path: Path) -> None:
    ifeval = {"key": 5, "prompt": "Answer without commas.", "instruction_id_list": ["punctuation:no_comma"],
              "kwargs": [{}], "response": "No commas here at all"}
    typed = {"id": "t", "prompt": "Say hi.", "response": "hi", "constraints": [
        {"name": "soft one", "kind": "soft", "text": "Be friendly.", "check": {"type": "llm"}},
        {"name": "len", "kind": "hard", "text": "Short.", "check": {"type": "code", "source":
         "def check_following(instruction, response):\n    return len(response) < 10\n"}}]}
    p = tmp_path / "mixed.jsonl"
    p.write_text(json.dumps(ifeval) + "\n" + json.dumps(typed) + "\n")
    out = tmp_path / "o.jsonl"
    r = run("--input", str(p), "--no-llm", "-o", str(out))
    assert r.exit_code == 0, r.output
    a, b = _read(out)
    assert a["id"] == "5" and a["constraints"][0]["check"] == "registry" and a["constraints"][0]["passed"] is True
    assert [c["passed"] for c in b["constraints"]] == [None, True]
    assert b["hard_pass_rate"] == 1.0 and b["soft_pass_rate"] == 0.0


def test_bad_verifier_spec_is_one_line(tmp_path: Path) -> None:
    r = run("--input", str(SAMPLE), "--verifier", "nonsense")
    assert r.exit_code == 2 and "cannot build verifier 'nonsense'" in r.output


def test_entry_point_prints_no_traceback(tmp_path: Path) -> None:
    p = _bad_file(tmp_path)
    proc = subprocess.run([sys.executable, "-c", "from verinstruct.cli import main; main()", "score", "--input", str(p),
                           "--no-llm"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: line 2 (id 'vi-002'): field 'response' is missing (expected a string)"]


def test_real_embedded_model_scores_the_sample(tmp_path: Path) -> None:
    """The default verifier (transformers:default, embedded SmolLM2) on the README sample (~45 s on 2 CPUs).

    Score mode always yields P(yes), so every soft constraint is decided, including dataset code that calls
    llm_judge through the sandbox's batched relay (the sample's own llm functions only forward one call, so
    they are llm checks: one extra row keeps its call in code) and keeps the answer's P(yes).
    """
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    rows = [json.loads(line) for line in SAMPLE.read_text().splitlines()]
    extra = dict(rows[0], id="vi-001-code")
    extra["functions"] = [f.replace("    return llm_judge(", "    verdict = llm_judge(") + "    return bool(verdict)\n"
                          if "llm_judge" in f else f for f in rows[0]["functions"]]
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in [*rows, extra]))
    out = tmp_path / "o.jsonl"
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-c", "from verinstruct.cli import main; main()", "score", "--input",
                           str(inp), "-o", str(out)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = _read(out)
    assert len(got) == len(rows) + 1
    soft = [c for g in got for c in g["constraints"] if c["kind"] == "soft"]
    assert soft and any(c["check"] == "llm" for c in soft) and any(c["check"] == "code" for c in soft)
    for c in soft:  # decided by the model (or visibly undecided with a reason), never the --no-llm error
        assert c["passed"] in (True, False) or c.get("error"), c
        assert c.get("error") != "needs LLM verifier (--no-llm)"
    undecided = [c for c in soft if c["passed"] is None]
    assert undecided == []
    assert all(0.0 <= c["prob"] <= 1.0 for c in soft)  # relay verdicts that are one llm_judge answer keep it
    meta = json.loads((tmp_path / "o.jsonl.meta.json").read_text())
    assert meta["verifier"] == "transformers:default" and meta["mode"] == "score"


def test_interrupt_keeps_finished_chunks_and_says_how_to_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C during the second chunk: exit 130, one line saying how many rows are kept, and running the
    same command again finishes the rest (issue 16: an interrupted run loses nothing)."""
    from verinstruct.scorer import Scorer

    rows = [{"key": k, "prompt": "p", "response": "hello", "instruction_id_list": ["change_case:english_lowercase"],
             "kwargs": [{}]} for k in range(5)]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    real = Scorer.score_batch
    calls: list[int] = []

    def second_chunk_interrupted(self: Scorer, *a: Any, **k: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(Scorer, "score_batch", second_chunk_interrupted)
    r = run("--input", str(src), "--no-llm", "-q", "-o", str(out), "--chunk-size", "2")
    assert r.exit_code == 130, r.output
    assert f"interrupted: 2 rows are in {out}; run the same command again to resume" in r.output
    assert len(out.read_text().splitlines()) == 2
    monkeypatch.setattr(Scorer, "score_batch", real)
    r = run("--input", str(src), "--no-llm", "-q", "-o", str(out), "--chunk-size", "2")
    assert r.exit_code == 0 and "scored 3 rows (2 already done) of 5" in r.output, r.output
