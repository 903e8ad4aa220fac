"""The `ctxsim` command line (typer): commands only, each a thin shell that parses, calls the layers
below, prints with `console` and writes files through `sim.files`. Nothing imports the CLI."""

from sim.cli.main import app, main

__all__ = ["app", "main"]
