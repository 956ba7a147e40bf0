"""The one way a `verif` command refuses bad input or options: one line on stderr, then exit 2.

Messages quote other people's data (ids, paths, kwargs values, exception texts), so control characters are
escaped (:func:`verinstruct.progress.terminal_safe`) here, once, for every command that uses it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer


def fail(msg: str, code: int = 2) -> typer.Exit:
    """Print ``error: msg`` on stderr and return the exit to raise (``raise fail(...)``)."""
    import typer

    from verinstruct.progress import terminal_safe

    typer.echo(f"error: {terminal_safe(msg)}", err=True)
    return typer.Exit(code=code)
