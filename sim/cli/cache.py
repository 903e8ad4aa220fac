"""`ctxsim cache-curve`: prefix-cache hit rate against cache capacity for a trace's block hashes."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.table import Table

from sim.cli.console import Overwrite, check_output_file, fail, out, write_output_file
from sim.engine.eviction import KNEE_TOKENS, POLICIES
from sim.studies.cachecurve import (
    TraceBlocks,
    cache_curve,
    capacity_grid,
    figure,
    trace_blocks,
    trace_summary,
)


class Format(StrEnum):
    auto = "auto"
    mooncake = "mooncake"


def parse_capacities(text: str, distinct_blocks: int) -> np.ndarray:
    """`auto` (halvings of the distinct block count) or comma-separated positive block counts."""
    if text.strip() == "auto":
        return capacity_grid(distinct_blocks)
    try:
        values = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(
            f"--capacities {text!r}: give 'auto' or whole block counts like 1000,10000"
        ) from None
    if not values or min(values) < 1:
        raise ValueError(f"--capacities {text!r}: give at least one block count, each at least 1")
    return np.unique(np.asarray(values, np.int64))


def parse_policies(text: str) -> list[str]:
    """Comma-separated policy names, each one of POLICIES, in the order given."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in POLICIES]
    if unknown or not names:
        raise ValueError(f"--policies {text!r}: choose from {', '.join(POLICIES)}")
    return list(dict.fromkeys(names))


def cache_curve_cmd(
    trace: Annotated[Path, typer.Argument(help="a trace with prefix-block hashes (Mooncake JSONL)")],
    format: Annotated[
        Format, typer.Option("--format", help="trace format (default: detected)")
    ] = Format.auto,
    capacities: Annotated[
        str,
        typer.Option(
            help="cache sizes in blocks, comma-separated, or 'auto' (halvings of the trace's distinct blocks)"
        ),
    ] = "auto",
    policies: Annotated[
        str, typer.Option(help="eviction policies, comma-separated: lru, lfu, cost")
    ] = "lru,lfu,cost",
    knee_tokens: Annotated[
        float,
        typer.Option(
            min=1.0,
            help="context length at which a token's attention work equals its weight work (cost policy)",
        ),
    ] = KNEE_TOKENS,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    html: Annotated[Path | None, typer.Option("--html", help="write the curve as a plotly figure")] = None,
    overwrite: Overwrite = False,
) -> None:
    """Prefix hit rate (by blocks and by tokens) against cache capacity, eviction policies side by side."""
    check_output_file(html, overwrite, "--html")
    try:
        blocks = trace_blocks(trace, format.value, knee_tokens)
        caps = parse_capacities(capacities, blocks.stream.distinct_blocks)
        curve = cache_curve(blocks.stream, caps, parse_policies(policies))
    except ValueError as exc:
        fail(str(exc))
    summary = trace_summary(blocks)
    if html is not None:
        fig = figure(curve, blocks.title)
        write_output_file(html, lambda p: fig.write_html(p, include_plotlyjs=True), overwrite, "--html")
    if as_json:
        typer.echo(json.dumps({**summary, "curve": json.loads(curve.to_json(orient="records"))}))
        return
    out.print(_curve_table(curve, blocks))
    out.print(
        f"unbounded cache: prefix hit rate {summary['unbounded_hit_rate_blocks']:.4f} of blocks; "
        f"trace block reuse {summary['block_reuse']:.4f}",
        highlight=False,
    )
    if html is not None:
        out.print(f"wrote {html}", highlight=False)


def _curve_table(curve: pd.DataFrame, blocks: TraceBlocks) -> Table:
    """Hit rates by capacity, a blocks and a tokens column per policy."""
    wide = curve.pivot(index="capacity_blocks", columns="policy")
    table = Table(
        title=blocks.title, caption="prefix hit rate by blocks (blk) and by tokens (tok); capacity in blocks"
    )
    table.add_column("capacity", justify="right")
    table.add_column("of distinct", justify="right")
    names = list(curve["policy"].unique())
    for name in names:
        table.add_column(f"{name} blk", justify="right")
        table.add_column(f"{name} tok", justify="right")
    distinct = max(blocks.stream.distinct_blocks, 1)
    for capacity, row in wide.iterrows():
        cells = [
            f"{row[(column, n)]:.4f}" for n in names for column in ("hit_rate_blocks", "hit_rate_tokens")
        ]
        table.add_row(f"{capacity:,}", f"{capacity / distinct:.1%}", *cells)
    return table


def register(app: typer.Typer) -> None:
    """Add `cache-curve` to the `ctxsim` command line."""
    app.command("cache-curve")(cache_curve_cmd)
