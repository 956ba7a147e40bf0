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
    _register_plugins()


def _register_plugins() -> None:
    """Commands of other packages (``benchmarks``: eval/compare, ``rl``) through the ``verinstruct.cli``
    entry-point group, whose values are ``register(app)`` callables: verinstruct never imports them itself."""
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group="verinstruct.cli"), key=lambda e: e.name):
        ep.load()(app)


def main() -> None:
    _register()
    app()
