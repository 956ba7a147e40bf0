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
