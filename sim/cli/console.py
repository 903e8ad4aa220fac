"""The terminal the CLI writes to: `out` for results, `err` for progress and errors, `fail`,
which prints one red line and exits non-zero, the checked writers for single output files, and
`guard_commands`, the error boundary every command runs inside. Command modules import these from
here, so none of them needs `sim.cli` (which imports them) while it is being built."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated, NoReturn

import click
import typer
from rich.console import Console, ConsoleDimensions

from sim.errors import explain

PIPE_WIDTH = 160
"""Columns a table is laid out in when the output is a file or a pipe, not a terminal."""


class PipeConsole(Console):
    """A rich console that, writing to a file or a pipe, lays tables out `PIPE_WIDTH` columns wide
    rather than rich's 80, so a saved or piped run keeps every word of its tables (the SLO verdict's
    seven columns cut "conversation" to "conver…" at 80). A terminal's width, and `COLUMNS`, still
    rule where they are known."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self.is_terminal or "COLUMNS" in os.environ:
            return size
        return ConsoleDimensions(max(size.width, PIPE_WIDTH), size.height)


out = PipeConsole()
err = PipeConsole(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


Overwrite = Annotated[
    bool, typer.Option("--overwrite", help="replace an existing output (a folder only if ctxsim wrote it)")
]


def check_output_file(path: Path | None, overwrite: bool, flag: str = "--out") -> None:
    """Fail before any work when `path` may not be written (see `sim.files.check_file`)."""
    from sim.files import OutputError, check_file

    if path is not None:
        try:
            check_file(path, overwrite, flag)
        except OutputError as exc:
            fail(str(exc))


def write_output_file(path: Path, write, overwrite: bool, flag: str = "--out") -> None:
    """Write `path` atomically, or fail with one line saying why nothing was written."""
    from sim.files import OutputError, write_file

    try:
        write_file(path, write, overwrite, flag)
    except (OutputError, OSError) as exc:
        fail(f"{flag} {path}: nothing written: {exc}")


def guarded(command):
    """`command` inside the error boundary (`sim.errors.explain`): an input error is one red line
    and exit 2, anything unexpected one line with the path of its saved traceback and exit 1. No
    traceback reaches the terminal, and since every output is written whole or not at all,
    nothing half-written is left behind."""

    @functools.wraps(command)
    def boundary(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            code, message = explain(exc)
            fail(message, code)

    return boundary


def guard_commands(app: typer.Typer) -> None:
    """Put every command of `app` and of its sub-apps inside `guarded`."""
    for info in app.registered_commands:
        info.callback = guarded(info.callback)
    for group in app.registered_groups:
        guard_commands(group.typer_instance)
