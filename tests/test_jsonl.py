"""The one JSONL reader: every bad line named by number, blank lines skipped, errors yielded in order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from verinstruct.jsonl import JSONLineError, iter_lines, read_objects


def test_bad_lines_are_named_and_reading_goes_on(tmp_path: Path) -> None:
    p = tmp_path / "rows.jsonl"
    p.write_bytes(b'{"a": 1}\n\n\xff\xfe\n[1, 2]\n{"a": \n{"b": 2}')
    got = list(iter_lines(p))
    assert [n for n, _ in got] == [1, 3, 4, 5, 6]
    assert got[0][1] == {"a": 1} and got[-1][1] == {"b": 2}
    errors = [(n, str(e)) for n, e in got if isinstance(e, JSONLineError)]
    assert [n for n, _ in errors] == [3, 4, 5]
    assert errors[0][1].startswith("line 3: not UTF-8 text")
    assert errors[1][1] == "line 4: expected a JSON object, got list"
    assert errors[2][1].startswith("line 5: invalid JSON")
    with pytest.raises(JSONLineError, match="^line 3: not UTF-8"):
        list(read_objects(p))


def test_eval_responses_binary_file_is_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "responses.jsonl"
    bad.write_bytes(b'{"prompt": "x", "response": "y"}\n\x80\x81 not text\n')
    proc = subprocess.run(
        [sys.executable, "-c", "from verinstruct.cli import main; main()", "eval", "--responses", str(bad),
         "--benchmarks", "ifeval", "--limit", "1", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "line 2: not UTF-8 text" in proc.stderr


# ------------------------------------------------------------------------------- resume (issue 16, item 4)


def test_complete_records_cuts_only_a_torn_last_line(tmp_path: Path) -> None:
    from verinstruct.jsonl import complete_records

    p = tmp_path / "out.jsonl"
    p.write_bytes(b'{"id":1}\n{"id":2}\n{"id":3,"x":')  # unterminated: killed mid-write
    assert [r["id"] for r in complete_records(p)] == [1, 2]
    assert p.read_bytes() == b'{"id":1}\n{"id":2}\n'
    p.write_bytes(b'{"id":1}\n{"id":2,"x":\n')  # terminated but unparsable, and last
    assert [r["id"] for r in complete_records(p)] == [1]
    assert p.read_bytes() == b'{"id":1}\n'


def test_complete_records_keeps_intact_records_after_a_damaged_line(tmp_path: Path) -> None:
    """The issue's smallest form: before the fix the file was rewritten to its first line."""
    from verinstruct.jsonl import complete_records

    p = tmp_path / "out.jsonl"
    original = b'{"id":1}\n{"id":2,"x":\n{"id":3}\n{"id":4}\n'
    p.write_bytes(original)
    with pytest.raises(JSONLineError, match=r"out.jsonl line 2: a damaged record \(not valid JSON\)"):
        complete_records(p)
    assert p.read_bytes() == original
    p.write_bytes(b'{"id":1}\n{"no_id":2}\n{"id":3}\n')
    with pytest.raises(JSONLineError, match=r"out.jsonl line 2: a damaged record \(no 'id'\)"):
        complete_records(p)


def test_score_resume_refuses_a_damaged_middle_line_and_deletes_nothing(tmp_path: Path) -> None:
    """`verif score` output with line 3 of 9 damaged: before the fix the 6 intact rows after it were deleted
    and scored again; now the run stops with one line naming line 3 and the file is untouched."""
    import json

    from typer.testing import CliRunner

    from verinstruct import cli

    rows = [{"key": k, "prompt": "p", "response": "hello world", "instruction_id_list": ["change_case:english_lowercase"],
             "kwargs": [{}]} for k in range(9)]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    cli._register()
    r = CliRunner().invoke(cli.app, ["score", "-i", str(src), "--no-llm", "-q", "-o", str(out)])
    assert r.exit_code == 0, r.output
    lines = out.read_bytes().split(b"\n")
    assert len(lines) == 10 and lines[-1] == b""
    lines[2] = lines[2][: len(lines[2]) // 2]  # line 3 damaged
    damaged = b"\n".join(lines)
    out.write_bytes(damaged)
    r = CliRunner().invoke(cli.app, ["score", "-i", str(src), "--no-llm", "-q", "-o", str(out)])
    assert r.exit_code == 2, r.output
    err = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "out.jsonl line 3: a damaged record" in err[0] and "--overwrite" in err[0], r.output
    assert out.read_bytes() == damaged
