"""`verif check`: IFEval-style strict/loose accuracy of responses with the deterministic checkers.

Input rows (JSONL): ``prompt``, ``response``, ``instruction_id_list``, ``kwargs`` (one dict per id), optional
``key``. ``--output`` streams one JSON object per valid row, in input order, flushed as it is computed, so an
interrupted run keeps what it finished.

Start-up is part of every run, so this module imports no CLI framework: :func:`run` does the work,
:func:`register` adds it to the typer app (imported there), and :func:`fast_args` lets ``verif check`` with
plain options skip typer altogether (``verinstruct.cli.main``), as typer builds a pydantic validator per
option (about 0.1 s of imports). Anything else (``--help``, an unknown or repeated option, a missing value)
goes through typer, whose messages stay the only ones.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from checkers.modes import Mode, evaluate_rows_modes
from verinstruct.convert import ConversionError, parse_ifeval_row

if TYPE_CHECKING:
    import typer

    from checkers import Constraint

RowError = ConversionError  # a malformed input row; the message names the line and the problem


@dataclass
class Row:
    line: int
    key: Any
    prompt: str
    response: str
    ids: list[str]
    constraints: list[Constraint]
    #: digest of what decides the verdicts (prompt, response, ids, kwargs): equal rows are judged once
    same_as: bytes = b""


def parse_row(line_no: int, raw: str) -> Row:
    """One input line -> Row, through the one IFEval row parser (``verinstruct.convert``)."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as e:
        raise RowError(f"line {line_no}: invalid JSON ({e.msg} at column {e.colno})") from None
    r = parse_ifeval_row(obj, f"line {line_no}", response=True)
    assert r.response is not None
    judged = f"{r.prompt}\0{r.response}\0{r.instruction_id_list!r}\0{r.kwargs!r}"
    digest = hashlib.blake2b(judged.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    return Row(line_no, r.key, r.prompt, r.response, r.instruction_id_list, r.constraints, digest)


@dataclass
class Tally:
    """Prompt- and instruction-level counts per mode, plus per instruction id."""

    modes: tuple[Mode, ...]
    rows: int = 0
    skipped: int = 0
    prompt_pass: Counter[str] = field(default_factory=Counter)
    inst_total: int = 0
    inst_pass: Counter[str] = field(default_factory=Counter)
    undecided: Counter[str] = field(default_factory=Counter)
    by_id_total: Counter[str] = field(default_factory=Counter)
    by_id_pass: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, ids: list[str], results: dict[str, list[bool | None]]) -> None:
        self.rows += 1
        self.inst_total += len(ids)
        by_id_total = self.by_id_total
        for i in ids:
            by_id_total[i] += 1
        for mode, verdicts in results.items():
            passed = verdicts.count(True)  # verdicts are True, False or None: count() compares with ==
            self.prompt_pass[mode] += passed == len(verdicts)
            self.inst_pass[mode] += passed
            if None in verdicts:
                self.undecided[mode] += verdicts.count(None)
            per = self.by_id_pass.get(mode)
            if per is None:
                per = self.by_id_pass[mode] = Counter()
            for i, v in zip(ids, verdicts, strict=True):
                if v is True:
                    per[i] += 1


def _iter_rows(fh: IO[bytes], skip_invalid: bool, tally: Tally) -> Iterator[Row]:
    # bytes, decoded line by line, so a non-UTF-8 line is named (and skipped with --skip-invalid)
    for line_no, data in enumerate(fh, start=1):
        try:
            raw = data.decode("utf-8")
            if not raw.strip():
                continue
            yield parse_row(line_no, raw)
        except (RowError, UnicodeDecodeError) as e:
            if isinstance(e, UnicodeDecodeError):
                e = RowError(f"line {line_no}: not UTF-8 text ({e.reason} at byte {e.start + 1} of the line)")
            if not skip_invalid:
                raise e from None
            tally.skipped += 1
            _echo_err(f"warning: skipping {e}")


CHUNK = 256  # rows judged together: batched language detection, bounded memory
MEMO_ROWS = 1 << 20  # verdicts kept per distinct row (32-byte key + small lists), so equal rows are judged once


def _judged(rows: Iterator[Row], modes: tuple[Mode, ...]) -> Iterator[list[tuple[Row, dict[str, list[bool | None]]]]]:
    """The rows with their verdicts per mode, in input order, one list per CHUNK rows judged together through
    the batch path. A row equal to one judged before (same prompt, response, ids and kwargs: checkers are
    pure) takes its verdicts. An error raised by ``rows`` (a bad row, undecodable bytes) is re-raised after
    every row before it has been yielded, as row-by-row evaluation would have written them."""
    memo: dict[bytes, dict[str, list[bool | None]]] = {}
    while True:
        chunk: list[Row] = []
        error: Exception | None = None
        try:
            for row in rows:
                chunk.append(row)
                if len(chunk) == CHUNK:
                    break
        except Exception as e:
            error = e
        new: dict[bytes, Row] = {}
        for r in chunk:
            if r.same_as not in memo:
                new.setdefault(r.same_as, r)
        if new:
            batch = [(r.constraints, r.response, r.prompt) for r in new.values()]
            verdicts = evaluate_rows_modes(batch, modes)
            if len(memo) + len(new) > MEMO_ROWS:
                memo.clear()
            for k, key in enumerate(new):
                memo[key] = {m: [v.passed for v in verdicts[m][k]] for m in modes}
        yield [(row, memo[row.same_as]) for row in chunk]
        if error is not None:
            raise error
        if len(chunk) < CHUNK:
            return


def _frac(n: int, d: int) -> str:
    return f"{n}/{d} ({100.0 * n / d:.2f}%)" if d else f"{n}/{d}"


def _report(t: Tally) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    console.print(f"rows evaluated: {t.rows}   instructions: {t.inst_total}   skipped invalid rows: {t.skipped}")
    summary = Table(title="accuracy (IFEval-style strict/loose)")
    summary.add_column("level")
    for m in t.modes:
        summary.add_column(m, justify="right")
    summary.add_row("prompt-level", *(_frac(t.prompt_pass[m], t.rows) for m in t.modes))
    summary.add_row("instruction-level", *(_frac(t.inst_pass[m], t.inst_total) for m in t.modes))
    if any(t.undecided[m] for m in t.modes):
        summary.add_row("undecided instructions", *(str(t.undecided[m]) for m in t.modes))
    console.print(summary)
    per = Table(title="per instruction type")
    per.add_column("instruction id")
    per.add_column("n", justify="right")
    for m in t.modes:
        per.add_column(m, justify="right")
    for cid in sorted(t.by_id_total):
        n = t.by_id_total[cid]
        per.add_row(cid, str(n), *(_frac(t.by_id_pass.get(m, Counter())[cid], n) for m in t.modes))
    console.print(per)


def _echo_err(message: str) -> None:
    """Messages quote rows (ids, kwargs values): control characters from data are escaped, never sent raw."""
    from verinstruct.progress import terminal_safe

    print(terminal_safe(message), file=sys.stderr, flush=True)


def _fail(message: str) -> SystemExit:
    """Bad input or options: one line on stderr, exit status 2 (raised by the caller)."""
    _echo_err(f"error: {message}")
    return SystemExit(2)


def run(input: Path, output: Path | None = None, mode: str = "both", skip_invalid: bool = False) -> None:
    """Judge responses with IFEval's checkers; print prompt/instruction-level accuracy and a per-type table."""
    if mode not in ("strict", "loose", "both"):
        raise _fail(f"--mode must be strict, loose or both, got {mode!r}")
    modes: tuple[Mode, ...] = ("strict", "loose") if mode == "both" else (mode,)  # type: ignore[assignment]
    tally = Tally(modes)
    if output is not None and output.is_dir():
        raise _fail(f"--output {str(output)!r} is a folder; give a file name, e.g. {str(output / 'verdicts.jsonl')!r}")
    try:
        fh = input.open("rb")
        total: int | None = None
        if fh.seekable():  # a pipe streams with a count but no ETA
            total = sum(1 for line in fh if line.strip())
            fh.seek(0)
    except OSError as e:
        raise _fail(f"cannot read {input}: {e.strerror}") from None
    from verinstruct.progress import Progress

    out: IO[str] | None = None
    try:
        if output is not None:
            try:
                output.parent.mkdir(parents=True, exist_ok=True)
                out = output.open("w", encoding="utf-8")
                _write_meta(output, input, modes)
            except OSError as e:
                raise _fail(f"cannot write {str(output)!r}: {e.strerror or e}") from None
        with fh, Progress(total, "check") as progress:
            for judged in _judged(_iter_rows(fh, skip_invalid, tally), modes):
                for row, results in judged:
                    tally.add(row.ids, results)
                    if out is not None:
                        rec: dict[str, Any] = {}
                        if row.key is not None:
                            rec["key"] = row.key
                        rec["instruction_id_list"] = row.ids
                        rec.update(results)
                        out.write(json.dumps(rec, ensure_ascii=False) + "\n")
                if out is not None:
                    out.flush()  # each judged chunk at once: what is written is all a rerun needs
                progress.update(len(judged))
    except RowError as e:
        raise _fail(f"{input}: {e}") from None
    finally:
        if out is not None:
            out.close()
    if tally.rows == 0:
        skipped = f" ({tally.skipped} invalid line{'s' if tally.skipped != 1 else ''} skipped)" if tally.skipped else ""
        raise _fail(f"{input}: no valid rows{skipped}")
    _report(tally)
    sys.stdout.flush()


#: the options of `verif check` for :func:`fast_args`: option -> run() parameter (typer's declarations in
#: :func:`register` are checked against this table by tests/test_cli_check_startup.py)
VALUE_OPTIONS = {"--input": "input", "-i": "input", "--output": "output", "-o": "output", "--mode": "mode"}
FLAG_OPTIONS = {"--skip-invalid": "skip_invalid"}


def fast_args(argv: list[str]) -> dict[str, Any] | None:
    """The arguments after ``check`` as :func:`run`'s keyword arguments, when they are plain: known options
    (``--name value``, ``--name=value``, ``-i value``), each once, with a value not starting with ``-``,
    ``--input`` given. Otherwise None: typer parses them and gives its own help and errors."""
    args: dict[str, Any] = {}
    k = 0
    while k < len(argv):
        name, eq, value = argv[k].partition("=") if argv[k].startswith("--") else (argv[k], "", "")
        if name in FLAG_OPTIONS and not eq:
            param, parsed = FLAG_OPTIONS[name], True
        elif name in VALUE_OPTIONS:
            if not eq:
                k += 1
                if k == len(argv):
                    return None
                value = argv[k]
            if not value or value.startswith("-"):
                return None
            param = VALUE_OPTIONS[name]
            parsed = value if param == "mode" else Path(value)
        else:
            return None
        if param in args:
            return None
        args[param] = parsed
        k += 1
    return args if "input" in args else None


def register(app: typer.Typer) -> None:
    from typing import Annotated

    import typer

    def check(input: Path, output: Path | None = None, mode: str = "both", skip_invalid: bool = False) -> None:
        run(input, output, mode, skip_invalid)

    # typer reads these (as objects: this module's string annotations could not see the local import)
    check.__annotations__ = {
        "input": Annotated[Path, typer.Option("--input", "-i", help="JSONL with prompt, response, instruction_id_list, kwargs")],
        "output": Annotated[Path | None, typer.Option("--output", "-o", help="write per-row verdicts here (JSONL, streamed)")],
        "mode": Annotated[str, typer.Option("--mode", help="strict, loose or both")],
        "skip_invalid": Annotated[bool, typer.Option("--skip-invalid", help="skip malformed rows (counted in the report) instead of stopping")],
        "return": None,
    }  # fmt: skip
    check.__doc__ = run.__doc__
    app.command("check")(check)


def _write_meta(output: Path, input: Path, modes: tuple[str, ...]) -> None:
    """``OUT.meta.json``: what produced the verdicts, so a kept file can be traced and compared."""
    import checkers
    from verinstruct import __version__

    meta = {"verinstruct_version": __version__, "command": "verif check", "input": str(input),
            "modes": list(modes), "checkers": [i for i in checkers.ids() if ":" in i]}
    output.with_name(output.name + ".meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


