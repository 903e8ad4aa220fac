"""The terminal the CLI writes to: `out` for results, `err` for progress and errors, `fail`,
which prints one red line and exits non-zero, and the checked writers for single output files.
Command modules import these from here, so none of them needs `sim.cli` (which imports them) while
it is being built."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True)


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
