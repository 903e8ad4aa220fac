"""Plotly figures built from result tables: pure `DataFrame -> go.Figure`, shared by the HTML report
and the dashboard."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from sim.engine.summary import Summary
from sim.format import number
from sim.studies.costcurve import Jump

_STEP = {"shape": "hv"}
OTHER_COLOR = "#444444"
"""A series that is none of the named ones (requests in system, summed over replicas)."""
LATENCY_METRICS = ("ttft_s", "tpot_s", "e2e_s")


def series_colors(names: Iterable) -> dict:
    """One colour per name (a replica, a run, a swept value), in the order first given: every
    panel that draws these series takes its colours from here, so a series has the same colour in
    each panel and in the legend. Plotly's ten-colour palette, its 24-colour one past ten."""
    unique = list(dict.fromkeys(names))
    palette = qualitative.Plotly if len(unique) <= len(qualitative.Plotly) else qualitative.Dark24
    return {name: palette[i % len(palette)] for i, name in enumerate(unique)}


def placeholder(message: str, height: int = 200) -> go.Figure:
    """A figure with no axes that says why there is nothing to plot, instead of empty axes."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font={"size": 14, "color": "grey"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=height, plot_bgcolor="white", margin={"t": 20, "b": 20})
    return fig


def _add_line(fig: go.Figure, row: int, x, y, name: str, *, trace=go.Scatter, **style) -> None:
    """Add `y` against `x` as a line named `name` to subplot `row` of a one-column figure, in the
    legend group `name` unless `style` names another; `trace` is the trace type (WebGL for long
    series)."""
    fig.add_trace(trace(x=x, y=y, mode="lines", name=name, **{"legendgroup": name, **style}), row=row, col=1)


def cdf_axes() -> go.Figure:
    """The three latency-CDF panels (TTFT, TPOT, end to end) on log time axes, with no lines yet."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=("TTFT", "TPOT", "end to end"))
    for col in (1, 2, 3):
        fig.update_xaxes(title_text="seconds", type="log", row=1, col=col)
    fig.update_yaxes(title_text="fraction of requests", row=1, col=1)
    fig.update_layout(title="Latency CDFs", height=360, margin={"t": 60, "b": 40})
    return fig


def has_latencies(requests: pd.DataFrame) -> bool:
    """Whether any request finished with a latency to plot."""
    return any(m in requests and requests[m].notna().any() for m in LATENCY_METRICS)


def add_cdfs(fig: go.Figure, requests: pd.DataFrame, label: str = "", color: str | None = None) -> None:
    """One run's CDFs into `cdf_axes` panels, in `color` and one legend entry (`label`) for all three."""
    first = True
    for col, metric in enumerate(LATENCY_METRICS, start=1):
        values = np.sort(requests[metric].dropna().to_numpy())
        if not len(values):
            continue
        fig.add_trace(
            go.Scatter(
                x=values,
                y=np.arange(1, len(values) + 1) / len(values),
                mode="lines",
                name=label or metric,
                legendgroup=label or None,
                showlegend=bool(label) and first,
                line={"color": color} if color else None,
            ),
            row=1,
            col=col,
        )
        first = False


def latency_cdfs(requests: pd.DataFrame, label: str = "") -> go.Figure:
    """TTFT, TPOT and end-to-end CDFs of one run; a placeholder when no request finished."""
    if not has_latencies(requests):
        return placeholder("no finished requests: no latencies to plot")
    fig = cdf_axes()
    add_cdfs(fig, requests, label, series_colors([label])[label] if label else None)
    return fig


def occupancy(timeseries: pd.DataFrame) -> go.Figure:
    """Batch size and KV occupancy per replica and requests in the system over time. Each replica
    has one colour (`series_colors`) in both panels and the legend; a placeholder when empty."""
    ts = timeseries
    if not len(ts):
        return placeholder("no data yet: nothing was simulated")
    fig = make_subplots(
        rows=3, cols=1, shared_xaxes=True, subplot_titles=("batch size", "KV occupancy", "requests in system")
    )
    if len(ts) > 20_000:  # keep the page light: every k-th row
        ts = ts.iloc[:: len(ts) // 20_000 + 1]
    colors = series_colors(sorted(ts.replica.unique()))
    for replica, group in ts.groupby("replica"):
        name = f"replica {replica}"
        line = {**_STEP, "color": colors[replica]}
        t = group.time_s
        _add_line(fig, 1, t, group.batch_size, name, trace=go.Scattergl, line=line)
        _add_line(fig, 2, t, group.kv_used_fraction, name, trace=go.Scattergl, line=line, showlegend=False)
    fig.add_trace(
        go.Scattergl(
            x=ts.time_s, y=ts.in_system, mode="lines", name="in system", line={**_STEP, "color": OTHER_COLOR}
        ),
        row=3,
        col=1,
    )
    fig.update_xaxes(title_text="simulated seconds", row=3, col=1)
    fig.update_yaxes(tickformat=".0%", row=2, col=1)
    fig.update_layout(height=640, title="Batch and memory over time", margin={"t": 60})
    return fig


def bound_share(summary: Summary) -> go.Figure:
    labels = ["compute-bound", "memory-bound", "communication"]
    values = [
        summary.compute_bound_time_fraction,
        summary.memory_bound_time_fraction,
        summary.link_time_fraction,
    ]
    fig = go.Figure(go.Pie(labels=labels, values=values, hole=0.5, sort=False))
    fig.update_layout(title="Where step time goes", height=320)
    return fig


def cost_table(summary: Summary) -> go.Figure:
    rows = [
        ("devices", summary.devices),
        ("cost per hour", summary.cost_per_hour_usd),
        ("$ / 1M input tokens (prefill)", summary.cost_per_1m_input_tokens_usd),
        ("$ / 1M output tokens (decode)", summary.cost_per_1m_output_tokens_usd),
        ("priced at", summary.cost_basis or "no price"),
        ("J / output token", summary.energy_j_per_output_token),
    ]
    fig = go.Figure(
        go.Table(
            header={"values": ["cost and energy", ""]},
            cells={"values": [[k for k, _ in rows], [number(v) for _, v in rows]]},
        )
    )
    fig.update_layout(height=260, margin={"t": 20, "b": 10})
    return fig


def cost_curve(curve: pd.DataFrame, edges: Sequence[Jump], model_name: str, output_tokens: int) -> go.Figure:
    """A `sim.studies.costcurve` curve: USD per 1M prompt tokens (log) on the cheapest and on the
    smallest group, and the fewest devices per request, against prompt length per hardware, with a
    dotted line at each jump."""
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.65, 0.35],
        vertical_spacing=0.06,
        subplot_titles=(
            "$ per 1M prompt tokens: cheapest group, fewest devices (dotted)",
            "fewest devices that hold one request",
        ),
    )
    for i, (name, group) in enumerate(curve.groupby("hardware", sort=False)):
        line = {**_STEP, "color": qualitative.Plotly[i % len(qualitative.Plotly)]}
        x = group.context_tokens
        _add_line(
            fig,
            1,
            x,
            group.cost_per_1m_input_tokens_usd,
            name,
            line=line,
            customdata=np.stack([group.devices, group.batch], axis=-1),
            hovertemplate="%{x:,} tokens: $%{y:.4g} per 1M<br>%{customdata[0]} devices, "
            "batch %{customdata[1]}",
        )
        fewest = f"{name} on the fewest devices"
        y = group.smallest_group_cost_per_1m_input_tokens_usd
        _add_line(fig, 1, x, y, fewest, legendgroup=name, line={**line, "dash": "dot"})
        _add_line(fig, 2, x, group.min_devices, name, showlegend=False, line=line)
    for jump in edges:
        fig.add_vline(x=jump.context_tokens, line={"dash": "dot", "width": 1, "color": "#888"})
    fig.update_xaxes(type="log", title_text="prompt tokens", row=2, col=1)
    fig.update_xaxes(type="log", row=1, col=1)
    fig.update_yaxes(type="log", row=1, col=1)
    title = f"{model_name}: cost per request against context ({output_tokens:,} output tokens)"
    fig.update_layout(title=title, height=620)
    return fig
