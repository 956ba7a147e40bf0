"""One reader of JSON Lines files, so every command names a bad line the same way.

Lines are decoded one by one (a non-UTF-8 line is named, not a traceback), blank lines are skipped, and
each problem is a :class:`JSONLineError` carrying the 1-based line number, so a caller can stop or skip.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class JSONLineError(ValueError):
    """Line ``line`` of a JSONL file is not one JSON object; the message starts with ``line N:``."""

    def __init__(self, line: int, problem: str) -> None:
        self.line = line
        self.problem = problem
        super().__init__(f"line {line}: {problem}")


class DamagedRecordError(JSONLineError):
    """A bad line before the last one of an append-only output: damage, not a torn write (see
    :func:`complete_records`); the message starts with ``PATH line N:``, so any caller can print it as is."""

    def __init__(self, path: Path, line: int, problem: str) -> None:
        super().__init__(line, problem)
        self.path = path
        self.args = (f"{path} line {line}: {problem}",)

    def __str__(self) -> str:
        return str(self.args[0])


def dumps_line(obj: Any) -> str:
    """One JSONL line (with its newline), UTF-8 as written, readable by :func:`parse_line`.

    Text the dataset's code produced (an exception message, a reason) can hold a lone surrogate that no
    UTF-8 writer accepts; then the whole line is written with ``\\uXXXX`` escapes (``ensure_ascii``), which JSON
    reads back to the same string, instead of crashing the writer halfway through a chunk."""
    line = json.dumps(obj, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(obj, ensure_ascii=True)
    return line + "\n"


def parse_line(raw: bytes | str, line: int) -> dict[str, Any] | None:
    """The object on one line, None for a blank line; raises :class:`JSONLineError`."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise JSONLineError(line, f"not UTF-8 text ({e.reason} at byte {e.start + 1} of the line)") from None
    if not raw.strip():
        return None
    try:
        row = json.loads(raw)
    except json.JSONDecodeError as e:
        raise JSONLineError(line, f"invalid JSON: {e.msg} (column {e.colno})") from None
    if not isinstance(row, dict):
        raise JSONLineError(line, f"expected a JSON object, got {type(row).__name__}")
    return row


def iter_lines(path: Path) -> Iterator[tuple[int, dict[str, Any] | JSONLineError]]:
    """``(line number, object or the error for that line)`` for every non-blank line, in order.

    Errors are yielded, not raised, so a caller that skips bad lines keeps reading."""
    with path.open("rb") as f:
        for n, raw in enumerate(f, start=1):
            try:
                row = parse_line(raw, n)
            except JSONLineError as e:
                yield n, e
                continue
            if row is not None:
                yield n, row


def read_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line; the first bad line raises :class:`JSONLineError`."""
    for n, row in iter_lines(path):
        if isinstance(row, JSONLineError):
            raise row
        yield n, row


def complete_records(path: Path) -> list[dict[str, Any]]:
    """The complete records (objects with an ``id``) already in an append-only output, for resuming.

    Only the last line may be torn (a run killed mid-write): when it is unterminated or does not parse it is
    truncated away, so appending resumes after the last whole record. Any other bad line is not a torn write
    but damage (an edit, a disk error): truncating there would delete every intact record after it, so it
    raises :class:`JSONLineError` naming the line, and nothing is rewritten."""
    if not path.exists():
        return []
    data = path.read_bytes()
    out: list[dict[str, Any]] = []
    keep = start = 0
    n = 0
    while start < len(data):
        n += 1
        end = data.find(b"\n", start)
        last = end == -1 or end + 1 == len(data)
        raw = data[start:] if end == -1 else data[start:end + 1]
        if end == -1:  # unterminated: the write that made it never finished
            break
        if raw.strip():
            try:
                rec = json.loads(raw)
                rec["id"]  # noqa: B018 - a record without an id is torn or foreign
            except (ValueError, KeyError, TypeError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                if last:
                    break
                why = "no 'id'" if isinstance(e, (KeyError, TypeError)) else "not valid JSON"
                raise DamagedRecordError(path, n, f"a damaged record ({why}) before the last line; only a torn last line is "
                                    "cut when resuming, so nothing was changed: repair or remove that line") from None
            out.append(rec)
        keep = start = end + 1
    if keep != len(data):
        with path.open("r+b") as f:
            f.truncate(keep)
    return out
