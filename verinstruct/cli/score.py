"""`verif score`: score responses against VerInstruct-style rows (raw VerIF, IFEval or typed, each + `response`).

Rows are scored in chunks through one :class:`verinstruct.Scorer` (the same engine the RL reward uses)
and streamed to ``--output`` as they finish; an existing output is resumed after its last complete row
(``--overwrite`` starts again), so an interrupted run loses nothing. ``OUT.meta.json`` records provenance.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from verinstruct.schema import Instance, SchemaError

NO_LLM_ERROR = "needs LLM verifier (--no-llm)"


def _fail(msg: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {msg}", err=True)
    return typer.Exit(code=code)


def read_rows(path: Path, skip_invalid: bool) -> Iterator[tuple[int, Instance, str]]:
    """(line number, instance, response) per valid row; malformed rows raise unless ``skip_invalid``."""
    from verinstruct.convert import row_to_instance

    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise SchemaError(f"line {n}: invalid JSON: {e.msg} (column {e.colno})") from None
                if not isinstance(row, dict):
                    raise SchemaError(f"line {n}: expected a JSON object, got {type(row).__name__}")
                response = row.get("response")
                if not isinstance(response, str):
                    what = "is missing (expected a string)" if "response" not in row else f"must be a string, got {type(response).__name__}"
                    rid = row.get("id", row.get("key"))
                    raise SchemaError(f"line {n}{f' (id {rid!r})' if rid is not None else ''}: field 'response' {what}")
                if "constraints" in row:
                    from verinstruct.dataset import from_row

                    inst = from_row({k: v for k, v in row.items() if k != "response"}, f"line {n}")
                else:
                    inst = row_to_instance(row, f"line {n}")
            except SchemaError as e:
                if not skip_invalid:
                    raise
                typer.echo(f"skipped: {e}", err=True)
                continue
            yield n, inst, response


def _existing(out: Path) -> list[str]:
    """Ids of the complete rows already in ``out``; a torn last line (interrupted write) is cut off."""
    if not out.exists():
        return []
    ids, keep = [], 0
    data = out.read_bytes()
    for raw in data.splitlines(keepends=True):
        if not raw.endswith(b"\n"):
            break
        try:
            ids.append(str(json.loads(raw)["id"]))
        except (json.JSONDecodeError, KeyError, TypeError):
            break
        keep += len(raw)
    if keep != len(data):
        with out.open("r+b") as f:
            f.truncate(keep)
    return ids


def score_cmd(
    input: Annotated[Path, typer.Option("--input", "-i", help="JSONL rows (raw VerIF / IFEval / typed) with a 'response'")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write one JSON object per row (resumable)")] = None,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="no LLM verifier: soft constraints are undecided")] = False,
    verifier_spec: Annotated[str, typer.Option("--verifier", help="BACKEND:MODEL, e.g. transformers:default, openai:NAME")] = "transformers:default",
    mode: Annotated[str, typer.Option("--mode", help="verifier decision: score (one forward pass) or generate")] = "score",
    template: Annotated[str | None, typer.Option("--template", help="verifier prompt template name or path")] = None,
    base_url: Annotated[list[str] | None, typer.Option("--base-url", help="OpenAI-compatible endpoint (repeatable)")] = None,
    cache: Annotated[Path | None, typer.Option("--cache", help="verifier result cache (SQLite path)")] = None,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="skip malformed rows instead of stopping")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="start OUT again instead of resuming")] = False,
    loose: Annotated[bool, typer.Option("--loose", help="IFEval loose mode for registry checkers")] = False,
    chunk_size: Annotated[int, typer.Option(help="rows per scoring batch")] = 64,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="totals only, no per-row lines")] = False,
    details: Annotated[bool, typer.Option("--details", "-d", help="one line per constraint: verdict, reason")] = False,
) -> None:
    """Score responses: hard constraints by code (sandboxed), soft ones by the LLM verifier."""
    from checkers.sandbox import error_class
    from verinstruct import __version__
    from verinstruct.scorer import Scorer

    if not input.is_file():
        raise _fail(f"no such input file: {str(input)!r}")
    if mode not in ("score", "generate"):
        raise _fail(f"--mode must be score or generate, got {mode!r}")
    if chunk_size < 1:
        raise _fail(f"--chunk-size must be >= 1, got {chunk_size}")
    meta = {"verinstruct_version": __version__, "input": str(input), "verifier": None if no_llm else verifier_spec,
            "mode": None if no_llm else mode, "template": None if no_llm else template,
            "ifeval_mode": "loose" if loose else "strict"}

    # validate every row first, so a malformed line fails before any work (and names its line)
    try:
        rows = list(read_rows(input, skip_invalid))
    except SchemaError as e:
        raise _fail(str(e)) from None

    done: list[str] = []
    if output is not None:
        meta_path = output.with_name(output.name + ".meta.json")
        if overwrite or not output.exists():
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text("", encoding="utf-8")
        else:
            done = _existing(output)
            if meta_path.exists():
                old = json.loads(meta_path.read_text(encoding="utf-8"))
                diff = [k for k in ("verifier", "mode", "template", "ifeval_mode") if old.get(k) != meta[k]]
                if diff and done:
                    raise _fail(f"{output} was written with different settings ({', '.join(diff)}); "
                                "use --overwrite to start again")
            expected = [inst.id for _, inst, _ in rows[: len(done)]]
            if done != expected:
                raise _fail(f"{output} holds rows that do not match the input's first {len(done)} rows; "
                            "use --overwrite to start again")
        meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if done:
            typer.echo(f"resuming after {len(done)} rows already in {output}", err=True)

    todo = rows[len(done):]
    verifier = None
    if not no_llm and todo:
        verifier = _build_verifier(verifier_spec, mode, template, base_url, cache)
    totals: Counter[str] = Counter()
    undecided: Counter[str] = Counter()
    row_rates: list[float] = []
    with Scorer(verifier, mode="loose" if loose else "strict", no_llm_error=NO_LLM_ERROR) as scorer:
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start:start + chunk_size]
            scored = scorer.score_batch([c[1] for c in chunk], [c[2] for c in chunk])
            lines = []
            for s in scored:
                for k in ("hard", "soft"):
                    totals[f"{k}_passed"] += getattr(s, f"{k}_passed")
                    totals[f"{k}_total"] += getattr(s, f"{k}_total")
                    totals[f"{k}_undecided"] += getattr(s, f"{k}_undecided")
                for r in s.constraints:
                    if r.verdict.passed is None:
                        undecided[error_class(r.verdict.error or "") or "error"] += 1
                row_rates.append(s.hard_pass_rate)
                lines.append(json.dumps(s.to_dict(), ensure_ascii=False) + "\n")
                if not quiet:
                    typer.echo(f"{s.id:<16} hard {s.hard_passed}/{s.hard_total}"
                               f"{f' ({s.hard_undecided} undecided)' if s.hard_undecided else ''}"
                               f"   soft {s.soft_passed}/{s.soft_total}"
                               f"{f' ({s.soft_undecided} undecided)' if s.soft_undecided else ''}")
                    if details:
                        for r in s.constraints:
                            typer.echo("    " + _detail_line(r))
            if output is not None:
                with output.open("a", encoding="utf-8") as f:
                    f.writelines(lines)
    if verifier is not None:
        verifier.close()
    _report(len(rows), len(done), totals, undecided, row_rates)


_MARK = {True: "pass", False: "FAIL", None: "  ? "}


def _detail_line(r: Any) -> str:
    """One constraint's verdict for humans: mark, kind/check, name, then the reason or the error."""
    v = r.verdict
    why = v.error if v.passed is None else v.reason
    if v.passed is not None and (not why or why.startswith("check_following returned")):
        why = f"{r.text!r}" if r.text else why  # the code's own reason is just its bool: show what it checks
    if v.prob is not None and "P(yes)" not in (why or ""):
        why = f"P(yes)={v.prob:.2f}" + (f"; {why}" if why else "")
    why = " ".join((why or "").split())
    if len(why) > 90:
        why = why[:87] + "..."
    return f"{_MARK[v.passed]}  {r.kind:<4} {r.check_type:<8} {r.name[:40]:<40} {why}"


def _report(n_rows: int, n_resumed: int, totals: Counter[str], undecided: Counter[str], rates: list[float]) -> None:
    typer.echo(f"scored {len(rates)} rows" + (f" ({n_resumed} already done)" if n_resumed else "")
               + f" of {n_rows}")
    for k in ("hard", "soft"):
        p, t, u = totals[f"{k}_passed"], totals[f"{k}_total"], totals[f"{k}_undecided"]
        pct = f"{100 * p / t:.1f}%" if t else "n/a"
        typer.echo(f"  {k}: {p}/{t} passed ({pct}), {u} undecided")
    if rates:
        typer.echo(f"  mean hard_pass_rate per row: {sum(rates) / len(rates):.3f}")
    if undecided:
        typer.echo("  undecided by error class: " + ", ".join(f"{k} {v}" for k, v in undecided.most_common()))


def _build_verifier(spec: str, mode: str, template: str | None, base_url: list[str] | None,
                    cache: Path | None) -> Any:
    try:
        from verifier import build_verifier
    except ImportError as e:
        raise _fail(f"the LLM verifier is not available ({e}); use --no-llm") from None
    url: Any = None
    if base_url:
        url = base_url[0] if len(base_url) == 1 else list(base_url)
    try:
        return build_verifier(spec, mode=mode, template=template, base_url=url,
                              cache_path=str(cache) if cache else None)
    except (ValueError, FileNotFoundError, ImportError, OSError) as e:
        raise _fail(f"cannot build verifier {spec!r}: {e}") from None


def register(app: typer.Typer) -> None:
    app.command("score")(score_cmd)


def main() -> None:  # pragma: no cover
    app = typer.Typer()
    register(app)
    app(sys.argv[1:])
