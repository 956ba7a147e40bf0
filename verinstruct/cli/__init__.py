"""The `verif` command line. Each command group lives in its own module and registers itself here."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="verif",
    help="Verifiable instruction following: check, score and serve verdicts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from verinstruct import __version__

        typer.echo(f"verinstruct {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Verifiable instruction following: check, score and serve verdicts."""


def _register() -> None:
    from verinstruct.cli import check, checkers_cmd, data, score, serve

    for mod in (check, checkers_cmd, data, score, serve):
        mod.register(app)


def main() -> None:
    _register()
    app()
