"""The Typer app and how every command fails: one ``error:`` line on stderr, exit code 2."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import typer
from typer.core import TyperGroup

try:  # recent Typer vendors its own copy of click; older Typer uses click itself
    from typer._click.core import Context
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover
    from click.core import Context
    from click.exceptions import UsageError

from auditkit.errors import AuditkitError

MAX_ERROR_CHARS = 300
"""An error line is cut to this many characters: a message may quote user input (a table header, a file)."""


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` as one line of at most :data:`MAX_ERROR_CHARS` on stderr; the Exit(2) to raise.

    The one place the CLI prints an error, so the cap and the one-line rule hold for every message."""
    line = " ".join(f"error: {message}".split())
    if len(line) > MAX_ERROR_CHARS:
        line = f"{line[: MAX_ERROR_CHARS - 30]}... ({len(line):,} characters cut)"
    typer.echo(line, err=True)
    return typer.Exit(2)


class OneLineGroup(TyperGroup):
    """A bad option value (``--positions foo``, ``--max-examples x``), an unknown option or command prints
    one ``error:`` line and exits 2, like every other bad input, instead of Typer's usage box. ``--help``
    is not an error and still prints the help."""

    def invoke(self, ctx: Context) -> object:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "auditkit"
            raise fail(f"{exc.format_message()} (`{command} --help` lists the options)") from None


app = typer.Typer(
    cls=OneLineGroup, add_completion=False, no_args_is_help=True, help="Controls for interpretability claims."
)


def one_line_errors(func: Callable[..., None]) -> Callable[..., None]:
    """Turn an AuditkitError into one line on stderr and exit code 2 (only the CLI does this)."""

    @functools.wraps(func)
    def wrapper(*args: object, **kwargs: object) -> None:
        try:
            func(*args, **kwargs)
        except AuditkitError as exc:
            raise fail(str(exc)) from None

    return wrapper


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
