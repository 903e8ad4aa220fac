"""`ctxsim workload ...`: look at a request stream before simulating it."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.table import Table

from sim.cli.console import err, out
from sim.format import number
from workloads import describe as stats
from workloads.mixes import PRESETS, preset_names

workload_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode="markdown",
    help="Request streams: describe a scenario's workload or a trace file, list the task-mix presets.",
)


class Format(StrEnum):
    auto = "auto"
    azure = "azure"
    mooncake = "mooncake"
    vidur = "vidur"


def _fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(2)


@workload_app.command("describe")
def describe_cmd(
    source: Annotated[Path, typer.Argument(help="a scenario YAML, or a trace file (CSV or JSONL)")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    html: Annotated[Path | None, typer.Option("--html", help="write length histograms and the arrival-rate "
                                              "curve to this HTML file")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace an existing --html file")] = False,
    format: Annotated[Format, typer.Option("--format", help="trace format (default: detected)")] = "auto",
    skip_bad_rows: Annotated[bool, typer.Option("--skip-bad-rows", help="skip and count malformed trace "
                                                "rows instead of stopping at the first")] = False,
) -> None:
    """Counts, rate over time, length percentiles and prefix-block reuse of a workload or trace."""
    is_scenario = source.suffix in (".yaml", ".yml")
    if is_scenario and (format != "auto" or skip_bad_rows):
        _fail("--format and --skip-bad-rows apply to trace files; a scenario names its traces itself")
    from sim.cli.console import check_output_file, write_output_file

    check_output_file(html, overwrite, "--html")
    try:
        if is_scenario:
            summary, fig = _scenario(source)
        else:
            summary, fig = stats.describe_trace(source, str(format), skip_bad_rows)
    except ValueError as exc:
        _fail(str(exc))
    if html is not None:
        write_output_file(html, lambda p: fig.write_html(p, include_plotlyjs=True), overwrite, "--html")
    if as_json:
        typer.echo(json.dumps(summary))
        return
    table = Table(title=f"workload: {source}", show_header=False)
    for key, value in summary.items():
        table.add_row(key, _show(value))
    out.print(table)
    if html is not None:
        out.print(f"wrote {html}", highlight=False)


def _scenario(path: Path):
    from sim.api import make_requests
    from sim.runnable import load_scenario

    return stats.describe_requests(make_requests(load_scenario(path)), f"workload of {path.name}")


def _show(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v:,}" for k, v in value.items())
    return number(value, missing="-", thousands=True)


@workload_app.command("presets")
def presets_cmd(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """The task-mix presets a workload class can name with `preset:`."""
    if as_json:
        typer.echo(json.dumps({name: {"description": PRESETS[name].description, **PRESETS[name].fields}
                               for name in preset_names()}))
        return
    table = Table(title="task-mix presets")
    table.add_column("preset", no_wrap=True)
    table.add_column("description")
    for name in preset_names():
        table.add_row(name, PRESETS[name].description)
    out.print(table)
