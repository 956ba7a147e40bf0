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

from verinstruct.cli.errors import fail as _fail
from verinstruct.jsonl import JSONLineError, dumps_line
from verinstruct.schema import Instance, SchemaError, check_unicode

NO_LLM_ERROR = "needs LLM verifier (--no-llm)"


def read_rows(path: Path, skip_invalid: bool, skipped: list[int] | None = None) -> Iterator[tuple[int, Instance, str]]:
    """(line number, instance, response) per valid row; malformed rows raise unless ``skip_invalid``, then
    their line numbers are appended to ``skipped``. Lines are decoded one by one so a non-UTF-8 line is named."""
    from verinstruct.convert import row_to_instance
    from verinstruct.jsonl import iter_lines

    for n, row in iter_lines(path):
        try:
            if isinstance(row, JSONLineError):
                raise SchemaError(str(row))
            response = row.get("response")
            rid = row.get("id", row.get("key"))
            if not isinstance(response, str):
                what = "is missing (expected a string)" if "response" not in row else f"must be a string, got {type(response).__name__}"
                raise SchemaError(f"line {n}{f' (id {rid!r})' if rid is not None else ''}: field 'response' {what}")
            check_unicode({"response": response}, f"line {n}{f' (id {rid!r})' if rid is not None else ''}")
            if "constraints" in row:
                from verinstruct.dataset import from_row

                inst = from_row({k: v for k, v in row.items() if k != "response"}, f"line {n}")
            else:
                inst = row_to_instance(row, f"line {n}")
        except SchemaError as e:
            if not skip_invalid:
                raise
            if skipped is not None:
                skipped.append(n)
            from verinstruct.progress import terminal_safe

            typer.echo(f"skipped: {terminal_safe(str(e))}", err=True)
            continue
        yield n, inst, response


def _existing(out: Path) -> list[dict[str, Any]]:
    """The complete rows already in ``out`` (parsed); a torn last line (interrupted write) is cut off."""
    from verinstruct.jsonl import complete_records

    rows = complete_records(out)
    for row in rows:
        row["id"] = str(row["id"])
    return rows


def score_cmd(
    input: Annotated[Path, typer.Option("--input", "-i", help="JSONL rows (raw VerIF / IFEval / typed) with a 'response'")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write one JSON object per row (resumable)")] = None,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="no LLM verifier: soft constraints are undecided")] = False,
    verifier_spec: Annotated[str, typer.Option("--verifier", help="BACKEND:MODEL, e.g. transformers:default, openai:NAME")] = "transformers:default",
    mode: Annotated[str, typer.Option("--mode", help="verifier decision: score (one forward pass) or generate")] = "score",
    template: Annotated[str | None, typer.Option("--template", help="verifier prompt template name or path", show_default="en for --mode score, en-reason for --mode generate")] = None,
    base_url: Annotated[list[str] | None, typer.Option("--base-url", help="OpenAI-compatible endpoint (repeatable)")] = None,
    granularity: Annotated[str, typer.Option("--granularity", help="judge each soft constraint alone (constraint) or all of a row's soft constraints at once (item: VerIF's soft factor)")] = "constraint",
    api_key: Annotated[str | None, typer.Option("--api-key", help="bearer token for openai:<model> (default: $VERIF_API_KEY, else $OPENAI_API_KEY)")] = None,
    cache: Annotated[Path | None, typer.Option("--cache", help="verifier result cache (SQLite path)")] = None,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="skip malformed rows instead of stopping")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="start OUT again instead of resuming")] = False,
    force_resume: Annotated[bool, typer.Option("--force-resume", help="resume OUT even when OUT.meta.json is missing or records other settings")] = False,
    loose: Annotated[bool, typer.Option("--loose", help="IFEval loose mode for registry checkers")] = False,
    chunk_size: Annotated[int, typer.Option(help="rows per scoring batch")] = 64,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="totals only, no per-row lines")] = False,
    details: Annotated[bool, typer.Option("--details", "-d", help="one line per constraint: verdict, reason")] = False,
) -> None:
    """Score responses: hard constraints by code (sandboxed), soft ones by the LLM verifier."""
    from verinstruct import __version__
    from verinstruct.scorer import Scorer

    if not input.is_file():
        raise _fail(f"no such input file: {str(input)!r}")
    if mode not in ("score", "generate"):
        raise _fail(f"--mode must be score or generate, got {mode!r}")
    if chunk_size < 1:
        raise _fail(f"--chunk-size must be >= 1, got {chunk_size}")
    if output is not None and output.is_dir():
        raise _fail(f"--output {str(output)!r} is a folder; give a file name, e.g. {str(output / 'scored.jsonl')!r}")
    if granularity not in ("constraint", "item"):
        raise _fail(f"--granularity must be constraint or item, got {granularity!r}")
    meta = {"verinstruct_version": __version__, "input": str(input), "verifier": None if no_llm else verifier_spec,
            "mode": None if no_llm else mode, "template": None if no_llm else template,
            "granularity": None if no_llm else granularity,
            "ifeval_mode": "loose" if loose else "strict"}

    # validate every row first, so a malformed line fails before any work (and names its line)
    skipped: list[int] = []
    try:
        rows = list(read_rows(input, skip_invalid, skipped))
    except SchemaError as e:
        raise _fail(str(e)) from None
    except OSError as e:
        raise _fail(f"cannot read {str(input)!r}: {e.strerror or e}") from None
    if not rows:
        raise _fail(f"{input}: no valid rows" + (f" ({_lines(len(skipped))} skipped)" if skipped else ""))

    tally = _Tally()
    done: list[dict[str, Any]] = []
    if output is not None:
        try:
            done = _prepare_output(output, rows, meta, overwrite, force_resume)
        except JSONLineError as e:
            raise _fail(f"{e} (or use --overwrite to start again)") from None
        except OSError as e:
            raise _fail(f"cannot write {str(output)!r}: {e.strerror or e}") from None
        for d in done:
            tally.add(d)
        if done:
            typer.echo(f"resuming after {len(done)} rows already in {output}", err=True)

    todo = rows[len(done):]
    verifier = None
    if not no_llm and todo:
        verifier = _build_verifier(verifier_spec, mode, template, base_url, cache, granularity, api_key)
    from verinstruct.progress import Progress

    written = 0
    try:
        with Scorer(verifier, mode="loose" if loose else "strict", no_llm_error=NO_LLM_ERROR) as scorer, \
                Progress(len(todo), "score") as progress:
            for start in range(0, len(todo), chunk_size):
                chunk = todo[start:start + chunk_size]
                scored = scorer.score_batch([c[1] for c in chunk], [c[2] for c in chunk])
                lines = []
                for s in scored:
                    d = s.to_dict()
                    tally.add(d)
                    tally.new += 1
                    lines.append(dumps_line(d))
                    if not quiet:
                        progress.echo(f"{s.id:<16} hard {s.hard_passed}/{s.hard_total}"
                                      f"{f' ({s.hard_undecided} undecided)' if s.hard_undecided else ''}"
                                      f"   soft {s.soft_passed}/{s.soft_total}"
                                      f"{f' ({s.soft_undecided} undecided)' if s.soft_undecided else ''}")
                        if details:
                            for r in s.constraints:
                                progress.echo("    " + _detail_line(r))
                if output is not None:
                    _append(output, lines)
                    written += len(lines)
                progress.update(len(chunk))
    except KeyboardInterrupt:  # a week-long run stopped by hand: say what is kept and how to go on
        kept = (f": {len(done) + written} rows are in {output}; run the same command again to resume"
                if output is not None else "")
        typer.echo(f"interrupted{kept}", err=True)
        raise typer.Exit(130) from None
    if verifier is not None:
        verifier.close()
    _report(tally, len(rows), len(done), len(skipped), output if done else None)
    if verifier is not None:
        _report_verifier(verifier.stats, verifier_spec, base_url, tally, output)


def _append(output: Path, lines: list[str]) -> None:
    """One chunk's rows in one write: a failure leaves whole rows and at most a torn last line, which
    resuming cuts; a full disk or a vanished folder is one line, not a traceback."""
    try:
        with output.open("a", encoding="utf-8") as f:
            f.write("".join(lines))
    except OSError as e:
        raise _fail(f"cannot write {str(output)!r}: {e.strerror or e}; the rows written so far are kept: "
                    "run the same command again to resume") from None


def _lines(n: int) -> str:
    return f"{n} invalid line{'s' if n != 1 else ''}"


def _prepare_output(output: Path, rows: list[tuple[int, Instance, str]], meta: dict[str, Any], overwrite: bool,
                    force_resume: bool) -> list[dict[str, Any]]:
    """Start ``output`` or resume it: the rows already there, after checking they came from this input with
    these settings (``OUT.meta.json``); refuses to mix settings unless ``force_resume``."""
    meta_path = output.with_name(output.name + ".meta.json")
    done: list[dict[str, Any]] = []
    if overwrite or not output.exists():
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text("", encoding="utf-8")
    else:
        done = _existing(output)
        expected = [inst.id for _, inst, _ in rows[: len(done)]]
        if [d["id"] for d in done] != expected:
            raise _fail(f"{output} holds rows that do not match the input's first {len(done)} rows; "
                        "use --overwrite to start again")
        if done and not force_resume:
            hint = "use --overwrite to start again or --force-resume to continue anyway"
            try:
                old = json.loads(meta_path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise _fail(f"{output} holds {len(done)} rows but no {meta_path.name} records the settings that "
                            f"produced them; {hint}") from None
            except (ValueError, UnicodeDecodeError):
                raise _fail(f"{meta_path} is not valid JSON; {hint}") from None
            old.setdefault("granularity", "constraint" if old.get("verifier") else None)  # older metas
            diff = [k for k in ("verifier", "mode", "template", "granularity", "ifeval_mode")
                    if old.get(k) != meta[k]]
            if diff:
                raise _fail(f"{output} was written with different settings ({', '.join(diff)}); {hint}")
        if done and force_resume:
            meta["force_resumed"] = True
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return done


class _Tally:
    """Totals over output rows (``ScoredResponse.to_dict()`` form), so resumed rows count like new ones."""

    def __init__(self) -> None:
        self.totals: Counter[str] = Counter()
        self.undecided: Counter[str] = Counter()
        self.rates: dict[str, list[float]] = {"hard": [], "soft": []}
        self.rows = 0
        self.new = 0

    def add(self, d: dict[str, Any]) -> None:
        from checkers.sandbox import error_class

        self.rows += 1
        for c in d.get("constraints", []):
            k = c.get("kind")
            if k not in ("hard", "soft"):
                continue
            self.totals[f"{k}_total"] += 1
            if c.get("passed") is True:
                self.totals[f"{k}_passed"] += 1
            elif c.get("passed") is None:
                self.totals[f"{k}_undecided"] += 1
                self.undecided[error_class(c.get("error") or "")] += 1
        for k in ("hard", "soft"):
            rate = d.get(f"{k}_pass_rate")
            if isinstance(rate, (int, float)):
                self.rates[k].append(float(rate))


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
    from rich.cells import set_cell_size  # display width: a CJK character takes two columns

    return f"{_MARK[v.passed]}  {r.kind:<4} {r.check_type:<8} {set_cell_size(r.name, 40)} {why}"


def _report(t: _Tally, n_rows: int, n_resumed: int, n_skipped: int, resumed_from: Path | None) -> None:
    typer.echo(f"scored {t.new} rows" + (f" ({n_resumed} already done)" if n_resumed else "") + f" of {n_rows}"
               + (f"; {_lines(n_skipped)} skipped" if n_skipped else ""))
    if resumed_from is not None:
        typer.echo(f"  totals over all {t.rows} rows in {resumed_from}:")
    for k in ("hard", "soft"):
        p, n, u = t.totals[f"{k}_passed"], t.totals[f"{k}_total"], t.totals[f"{k}_undecided"]
        pct = f"{100 * p / n:.1f}%" if n else f"no {k} constraints"
        typer.echo(f"  {k}: {p}/{n} passed ({pct}), {u} undecided")
    for k in ("hard", "soft"):
        if t.rates[k]:
            typer.echo(f"  mean {k}_pass_rate per row: {sum(t.rates[k]) / len(t.rates[k]):.3f}"
                       + (f" (rows with no {k} constraints count as 1.0)" if k == "soft" else ""))
    if t.undecided:
        typer.echo("  undecided by error class: " + ", ".join(f"{k} {v}" for k, v in t.undecided.most_common()))


def _report_verifier(st: Any, spec: str, base_url: list[str] | None, t: _Tally, output: Path | None = None) -> None:
    """Verifier requests, cache hits/misses and failures; a verifier that never answered is an error (exit 1)."""
    cache = f"cache hits {st.cache_hits}, misses {st.cache_misses}" if (st.cache_hits or st.cache_misses) \
        else "no cache (--cache DB keeps results across runs)"
    typer.echo(f"  verifier: {st.calls} requests ({st.unique} distinct), {cache}, {st.backend_items} sent, "
               f"{st.errors} failed")
    if st.backend_items and st.errors == st.backend_items and not st.cache_hits:
        where = f" at {', '.join(base_url)}" if base_url else ""
        classes = ", ".join(f"{k} {v}" for k, v in t.undecided.most_common(3))
        again = f" (kept in {output}: --overwrite to score again)" if output is not None else ""
        raise _fail(f"the verifier {spec}{where} never answered: all {st.errors} requests failed ({classes}); "
                    f"their verdicts are undecided{again}", code=1)
    if st.errors:
        typer.echo(f"warning: {st.errors} of {st.backend_items} verifier requests failed; "
                   "those verdicts are undecided", err=True)


def _build_verifier(spec: str, mode: str, template: str | None, base_url: list[str] | None,
                    cache: Path | None, granularity: str = "constraint", api_key: str | None = None) -> Any:
    try:
        from verifier import build_verifier
    except ImportError as e:
        raise _fail(f"the LLM verifier is not available ({e}); use --no-llm") from None
    url: Any = None
    if base_url:
        url = base_url[0] if len(base_url) == 1 else list(base_url)
    try:
        extra = {"api_key": api_key} if api_key else {}
        return build_verifier(spec, mode=mode, template=template, base_url=url,
                              cache_path=str(cache) if cache else None, granularity=granularity, **extra)
    except (ValueError, FileNotFoundError, ImportError, OSError) as e:
        raise _fail(f"cannot build verifier {spec!r}: {e}") from None


def register(app: typer.Typer) -> None:
    app.command("score")(score_cmd)


def main() -> None:  # pragma: no cover
    app = typer.Typer()
    register(app)
    app(sys.argv[1:])
