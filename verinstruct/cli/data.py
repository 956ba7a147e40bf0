"""`verif data info|convert|lint`: inspect, convert (raw VerIF / IFEval -> typed + card) and lint datasets."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from verinstruct.cli.errors import fail as _fail
from verinstruct.schema import CodeCheck, Instance, LLMCheck, SchemaError

data_app = typer.Typer(help="Inspect, convert and lint VerInstruct-style datasets.", no_args_is_help=True)


def _read(path: Path, fmt: str | None = None) -> list[Instance]:
    from verinstruct.dataset import DatasetUnavailableError, read_instances

    if not path.exists():
        raise _fail(f"no such file or folder: {str(path)!r}")
    try:
        return read_instances(path, format=fmt)
    except (SchemaError, DatasetUnavailableError, ValueError) as e:
        raise _fail(str(e)) from None


def info_stats(instances: list[Instance]) -> dict[str, Any]:
    from verinstruct.convert import category

    kinds: Counter[str] = Counter()
    types: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    untagged: Counter[str] = Counter()
    text_src: Counter[str] = Counter()
    cats: Counter[str] = Counter()
    formats: Counter[str] = Counter()
    per_row: Counter[int] = Counter()
    for inst in instances:
        formats[str(inst.source.get("format", "typed"))] += 1
        per_row[len(inst.constraints)] += 1
        for c in inst.constraints:
            kinds[c.kind] += 1
            t = c.check_type + ("+llm" if isinstance(c.check, CodeCheck) and c.check.uses_llm
                                else "<-code" if isinstance(c.check, LLMCheck) and c.check.call else "")
            types[t] += 1
            tags[c.tag or "(untagged)"] += 1
            text_src[c.text_source] += 1
            cats[category(c.name)] += 1
            if c.tag is None and inst.source.get("format") == "verif":
                untagged[f"{c.kind}/{t}"] += 1
    n_cons = sum(kinds.values())
    return {
        "rows": len(instances),
        "constraints": n_cons,
        "constraints_per_row": round(n_cons / len(instances), 2) if instances else 0.0,
        "formats": dict(formats),
        "kind": dict(kinds),
        "check_type": dict(types),
        "tag": dict(tags),
        "untagged_classified_as": dict(untagged),
        "text_source": dict(text_src),
        "category": dict(cats),
    }


def info(
    path: Annotated[Path, typer.Argument(help="JSONL/Parquet file or folder (raw VerIF, IFEval or typed rows)")],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Rows, constraint counts by kind / check type / tag, how untagged checkers were classified, text sources."""
    from verinstruct.progress import terminal_safe

    stats = info_stats(_read(path))
    if as_json:
        typer.echo(json.dumps(stats, ensure_ascii=False, indent=2))
        return
    typer.echo(f"{path}: {stats['rows']} rows, {stats['constraints']} constraints "
               f"({stats['constraints_per_row']} per row)")
    for key, title in (("formats", "row format"), ("kind", "kind"), ("check_type", "check type"), ("tag", "tag"),
                       ("untagged_classified_as", "untagged ->"), ("text_source", "text from"),
                       ("category", "category (from name)")):
        items = sorted(stats[key].items(), key=lambda kv: (-kv[1], kv[0]))
        typer.echo(terminal_safe(f"  {title:<22}" + (", ".join(f"{k} {v}" for k, v in items) if items else "-")))


def convert(
    src: Annotated[Path, typer.Argument(help="input: raw VerIF / IFEval / typed JSONL, Parquet or a folder")],
    out: Annotated[Path, typer.Argument(help="output folder (gets SPLIT.jsonl + README.md), or a .jsonl / .parquet "
                                        "file (README.md is written beside it)")],
    fmt: Annotated[str | None, typer.Option("--from", help="force the input format: verif, ifeval or typed")] = None,
    split: Annotated[str, typer.Option(help="split name recorded in the card (and the file name in a folder)")] = "train",
    to: Annotated[str, typer.Option("--to", help="file format when OUT is a folder: jsonl or parquet")] = "jsonl",
    source: Annotated[str | None, typer.Option("--source", help="Hub dataset the input came from (e.g. "
                                               "THU-KEG/VerInstruct): linked from the card")] = None,
    license: Annotated[str | None, typer.Option("--license", help="license recorded in the card (default: "
                                                "apache-2.0 for THU-KEG/VerInstruct, else 'other')")] = None,
    no_card: Annotated[bool, typer.Option("--no-card", help="do not write README.md")] = False,
) -> None:
    """Convert to typed rows (nothing dropped) and write a dataset card so the folder can be pushed to the Hub."""
    from verinstruct.dataset import export

    if to not in ("jsonl", "parquet"):
        raise _fail(f"--to must be jsonl or parquet, got {to!r}")
    if out.is_dir() or not out.suffix:
        out = out / f"{split}.{to}"
    elif out.suffix.lower() not in (".jsonl", ".parquet"):
        raise _fail(f"output {str(out)!r}: the extension must be .jsonl or .parquet (or give a folder)")
    if out.exists() and out.is_dir():
        raise _fail(f"output {str(out)!r} is a folder")
    if fmt not in (None, "verif", "ifeval", "typed"):
        raise _fail(f"--from must be verif, ifeval or typed, got {fmt!r}")
    instances = _read(src, fmt)
    try:
        export(instances, out, card=not no_card, split=split, source_name=source, origin=src.name, license=license)
    except OSError as e:
        raise _fail(f"cannot write {str(out)!r}: {e.strerror or e}") from None
    n = sum(len(i.constraints) for i in instances)
    card = "" if no_card else f" and {out.parent / 'README.md'}"
    typer.echo(f"wrote {len(instances)} rows ({n} constraints) to {out}{card}")


def lint_cmd(
    path: Annotated[Path, typer.Argument(help="dataset file or folder")],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    worst: Annotated[int, typer.Option(help="how many offenders to list")] = 20,
    workers: Annotated[int | None, typer.Option(help="sandbox worker processes (default: CPU count)")] = None,
    timeout: Annotated[float | None, typer.Option(help="seconds per checker call (default: sandbox default)")] = None,
) -> None:
    """Run every code checker against probe responses in the sandbox and report the broken ones."""
    from verinstruct.lint import CLASSES, lint, summarize
    from verinstruct.progress import Progress, terminal_safe

    instances = _read(path)
    box = _sandbox(workers, timeout)
    findings = []
    with box, Progress(len(instances), "lint") as progress:
        for start in range(0, len(instances), 64):  # in slices, so the bar moves; findings stay in order
            part = instances[start:start + 64]
            findings += lint(part, sandbox=box)
            progress.update(len(part))
    summary = summarize(findings, worst=worst)
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False, indent=2))
        return
    typer.echo(f"{path}: {summary['checked']} code checkers: {summary['broken']} broken, "
               f"{summary['needs_llm']} need the LLM verifier, {summary['ok']} ok")
    typer.echo(f"  {'class':<20}{'count':>6}")
    for c in CLASSES:
        typer.echo(f"  {c:<20}{summary['classes'][c]:>6}")
    if summary["worst"]:
        typer.echo("worst offenders:")
        for f in summary["worst"]:
            msg = f["message"].splitlines()[0][:100] if f["message"] else ""
            typer.echo(terminal_safe(f"  {f['id']:<14} {f['constraint'][:30]:<30} {f['class']:<18} {msg}"))


def _sandbox(workers: int | None, timeout: float | None) -> Any:
    from checkers.sandbox import Sandbox, SandboxLimits

    limits = SandboxLimits()
    if timeout is not None:
        import dataclasses

        field = next((f.name for f in dataclasses.fields(limits) if "timeout" in f.name), None)
        if field is None:
            raise _fail("this sandbox has no timeout limit to set")
        limits = dataclasses.replace(limits, **{field: timeout})
    return Sandbox(workers=workers, limits=limits)


def register(app: typer.Typer) -> None:
    data_app.command("info")(info)
    data_app.command("convert")(convert)
    data_app.command("lint")(lint_cmd)
    app.add_typer(data_app, name="data")


def main() -> None:  # pragma: no cover - for `python -m verinstruct.cli.data`
    app = typer.Typer()
    register(app)
    app(sys.argv[1:])
