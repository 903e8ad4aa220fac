"""`ctxsim cache-curve`: prefix-cache hit rate against cache capacity for a trace's block hashes."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import typer
from rich.table import Table

from sim.cli.console import Overwrite, check_output_file, fail, out, write_output_file
from sim.engine.eviction import KNEE_TOKENS, POLICIES
from sim.studies.cachecurve import block_reuse, block_stream, cache_curve, capacity_grid


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


def curve_figure(curve: pd.DataFrame, title: str) -> go.Figure:
    """Hit rate against capacity, one colour per policy; solid by blocks, dotted by tokens."""
    fig = go.Figure()
    colors = dict(zip(POLICIES, ("#1f77b4", "#ff7f0e", "#2ca02c"), strict=True))
    for policy, rows in curve.groupby("policy", sort=False):
        for column, dash in (("hit_rate_blocks", "solid"), ("hit_rate_tokens", "dot")):
            fig.add_trace(
                go.Scatter(
                    x=rows["capacity_blocks"],
                    y=rows[column],
                    mode="lines+markers",
                    name=f"{policy} ({column.removeprefix('hit_rate_')})",
                    line={"color": colors[policy], "dash": dash},
                )
            )
    fig.update_layout(
        title=title,
        xaxis_title="cache capacity (blocks)",
        yaxis_title="prefix hit rate",
        xaxis_type="log",
        yaxis_rangemode="tozero",
    )
    return fig


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
    from workloads.traces import open_trace, read_rows

    check_output_file(html, overwrite, "--html")
    try:
        layout = open_trace(trace, format.value)
        rows = read_rows(layout)
        if rows.hash_values is None:
            raise ValueError(
                f"{trace}: format {layout.format} has no prefix-block hashes; "
                "cache-curve needs a trace that has them (Mooncake's hash_ids)"
            )
        hashes = np.split(rows.hash_values, rows.hash_offsets[1:-1])
        stream = block_stream(hashes, rows.prompt_tokens, rows.block_tokens, knee_tokens)
        caps = parse_capacities(capacities, stream.distinct_blocks)
        curve = cache_curve(stream, caps, parse_policies(policies))
    except ValueError as exc:
        fail(str(exc))
    unbounded = float(cache_curve(stream, [max(stream.distinct_blocks, 1)], ["lru"]).hit_rate_blocks.iloc[0])
    reuse = block_reuse(hashes)
    title = (
        f"prefix cache on {trace.name}: {len(rows):,} requests, {len(stream.keys):,} blocks of "
        f"{rows.block_tokens} tokens, {stream.distinct_blocks:,} distinct"
    )
    if html is not None:
        figure = curve_figure(curve, title)
        write_output_file(html, lambda p: figure.write_html(p, include_plotlyjs=True), overwrite, "--html")
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "trace": str(trace),
                    "format": layout.format,
                    "requests": len(rows),
                    "blocks": len(stream.keys),
                    "distinct_blocks": stream.distinct_blocks,
                    "block_tokens": rows.block_tokens,
                    "block_reuse": reuse,
                    "unbounded_hit_rate_blocks": unbounded,
                    "curve": json.loads(curve.to_json(orient="records")),
                }
            )
        )
        return
    wide = curve.pivot(index="capacity_blocks", columns="policy")
    table = Table(
        title=title, caption="prefix hit rate by blocks (blk) and by tokens (tok); capacity in blocks"
    )
    table.add_column("capacity", justify="right")
    table.add_column("of distinct", justify="right")
    names = list(curve["policy"].unique())
    for name in names:
        table.add_column(f"{name} blk", justify="right")
        table.add_column(f"{name} tok", justify="right")
    for capacity, row in wide.iterrows():
        cells = [
            f"{row[(column, n)]:.4f}" for n in names for column in ("hit_rate_blocks", "hit_rate_tokens")
        ]
        table.add_row(f"{capacity:,}", f"{capacity / max(stream.distinct_blocks, 1):.1%}", *cells)
    out.print(table)
    out.print(
        f"unbounded cache: prefix hit rate {unbounded:.4f} of blocks; trace block reuse {reuse:.4f}",
        highlight=False,
    )
    if html is not None:
        out.print(f"wrote {html}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `cache-curve` to the `ctxsim` command line."""
    app.command("cache-curve")(cache_curve_cmd)
