"""The `verif` command line. Each command group lives in its own module and registers itself here.

``app`` (the typer application) is built on first use: ``verif check`` with plain options runs without
typer, pydantic, the other commands or the entry-point scan (:func:`main`), about 0.15 s of a 1 s run.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


def _version(value: bool) -> None:
    if value:
        import typer

        from verinstruct import __version__

        typer.echo(f"verinstruct {__version__}")
        raise typer.Exit()


def _make_app() -> typer.Typer:
    import typer

    _no_type_label_on_flags()
    app = typer.Typer(
        name="verif",
        help="Verifiable instruction following: check, score and serve verdicts.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _root(
        version: bool = typer.Option(  # noqa: B008 - typer's declaration style
            False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ) -> None:
        """Verifiable instruction following: check, score and serve verdicts."""

    return app


def _app() -> typer.Typer:
    """The one typer application of this process, made on first use."""
    app = globals().get("app")
    if app is None:
        globals()["app"] = app = _make_app()
    return app


def __getattr__(name: str) -> Any:
    """``verinstruct.cli.app``: the typer application, made on first access (see the module docstring)."""
    if name == "app":
        return _app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: entry-point group through which other packages add commands (``rl`` -> ``verif rl``, ``benchmarks``
#: -> ``verif eval``): each entry point is a callable ``register(app: typer.Typer) -> None``, so
#: ``verinstruct`` never imports the packages above it
ENTRY_POINT_GROUP = "verinstruct.cli"


def _register() -> None:
    from verinstruct.cli import check, checkers_cmd, data, score, serve

    for mod in (check, checkers_cmd, data, score, serve):
        mod.register(_app())
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
        register(_app())


def main() -> None:
    if sys.argv[1:2] == ["check"]:
        from verinstruct.cli import check

        args = check.fast_args(sys.argv[2:])
        if args is not None:
            _run_plain(check.run, args)
            return
    _register()
    _app()()


def _run_plain(fn: Any, args: dict[str, Any]) -> None:
    """Run a command outside typer as typer's standalone mode would: Ctrl-C prints "Aborted!" and exits 1;
    a closed stdout pipe (``verif check ... | head``) exits 1 quietly."""
    import os

    try:
        fn(**args)
        sys.stdout.flush()
    except KeyboardInterrupt:
        print("\nAborted!", file=sys.stderr)
        sys.exit(1)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        sys.exit(1)
