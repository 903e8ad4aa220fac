"""The terminal the CLI writes to: `out` for results, `err` for progress and errors, and `fail`,
which prints one red line and exits non-zero. Command modules import these from here, so none of
them needs `sim.cli` (which imports them) while it is being built."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)
