"""The `verif` command line. Each command group lives in its own module and registers itself here."""

from __future__ import annotations

import typer


def _no_type_label_on_flags() -> None:
    """typer's rich help labels every flag ``<bool>``, as if it took a value; show no type for flags.

    Patched once here (every command, `--help` included, also those other packages register) rather than
    with a metavar on each option.
    """
    from typer.core import TyperOption

    original = TyperOption.display_type_rich
    if getattr(original, "_verif_flags", False):
        return

    def display_type_rich(self: TyperOption, ctx: object) -> str | None:
        if self.is_flag and not self.count:
            return None
        return original(self, ctx)  # type: ignore[arg-type]

    display_type_rich._verif_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_no_type_label_on_flags()

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


#: entry-point group through which other packages add commands (``rl`` -> ``verif rl``, ``benchmarks``
#: -> ``verif eval``): each entry point is a callable ``register(app: typer.Typer) -> None``, so
#: ``verinstruct`` never imports the packages above it
ENTRY_POINT_GROUP = "verinstruct.cli"


def _register() -> None:
    from verinstruct.cli import check, checkers_cmd, data, score, serve

    for mod in (check, checkers_cmd, data, score, serve):
        mod.register(app)
    _register_plugins()


def _register_plugins() -> None:
    """Commands of other packages (``benchmarks``: eval/compare, ``rl``) through the ``verinstruct.cli``
    entry-point group, whose values are ``register(app)`` callables: verinstruct never imports them itself."""
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            register = ep.load()
        except ImportError as e:  # a command group whose extra is not installed: say so, keep the rest
            import sys

            print(f"verif: commands {ep.name!r} unavailable ({ep.value}: {e})", file=sys.stderr)
            continue
        if not callable(register):
            raise TypeError(f"entry point {ep.name!r} in {ENTRY_POINT_GROUP!r} must be a callable register(app), "
                            f"got {type(register).__name__}")
        register(app)


def main() -> None:
    _register()
    app()
