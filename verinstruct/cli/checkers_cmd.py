"""`verif checkers list|show`: the registered checkers, their parameters and JSON schemas."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from checkers import UnknownCheckerError, get, specs

checkers_app = typer.Typer(help="List and describe the deterministic checkers.", no_args_is_help=True)


def _param_summary(spec) -> str:  # type: ignore[no-untyped-def]
    parts = []
    for p in spec.params:
        t = p.type.__name__ if p.type is not list else "list[str]"
        if p.choices is not None:
            t = " | ".join(repr(c) for c in p.choices)  # spaces: the table may wrap between choices
        parts.append(f"{p.name}: {t}" + ("" if p.required else f" = {p.default!r}"))
    return ", ".join(parts) or "-"


@checkers_app.command("list")
def list_checkers() -> None:
    """Print every checker id with its parameters and one-line description."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    # text is escaped ("[address]" is not markup) and folded, never cut, whatever the terminal width
    table = Table(title="checkers")
    table.add_column("id", no_wrap=True)
    table.add_column("parameters", overflow="fold")
    table.add_column("description", overflow="fold")
    all_specs = specs()
    for s in all_specs:
        table.add_row(s.id, escape(_param_summary(s)), escape(s.description))
    Console(highlight=False).print(table)
    typer.echo(f"{len(all_specs)} checkers")


@checkers_app.command("show")
def show(checker_id: Annotated[str, typer.Argument(help="a checker id, e.g. keywords:existence")]) -> None:
    """Describe one checker: description, parameters and JSON schema."""
    try:
        spec = get(checker_id)
    except UnknownCheckerError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(f"{spec.id}  [{spec.kind}{', ' + spec.group if spec.group else ''}]")
    typer.echo(spec.description)
    typer.echo("parameters:" if spec.params else "parameters: none")
    for p in spec.params:
        bits = [p.type.__name__ if p.type is not list else "list[str]"]
        if p.choices is not None:
            bits.append("one of " + ", ".join(repr(c) for c in p.choices))
        if p.min is not None:
            bits.append(f">= {p.min:g}")
        if p.max is not None:
            bits.append(f"<= {p.max:g}")
        bits.append("required" if p.required else f"default {p.default!r}")
        typer.echo(f"  {p.name} ({'; '.join(bits)}): {p.description}")
    typer.echo("json schema:")
    typer.echo(json.dumps(spec.json_schema(), indent=2, ensure_ascii=False))


def register(app: typer.Typer) -> None:
    app.add_typer(checkers_app, name="checkers")
