"""Plotly figures built from result tables: pure `DataFrame -> go.Figure`, shared by the HTML report
and the dashboard."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sim.engine.summary import Summary
from sim.format import number


def latency_cdfs(requests: pd.DataFrame, label: str = "") -> go.Figure:
    fig = make_subplots(rows=1, cols=3, subplot_titles=("TTFT", "TPOT", "end to end"))
    for col, metric in enumerate(("ttft_s", "tpot_s", "e2e_s"), start=1):
        values = np.sort(requests[metric].dropna().to_numpy())
        if len(values):
            fig.add_trace(
                go.Scatter(
                    x=values,
                    y=np.arange(1, len(values) + 1) / len(values),
                    mode="lines",
                    name=f"{label} {metric}".strip(),
                    showlegend=bool(label),
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text="seconds", type="log", row=1, col=col)
    fig.update_yaxes(title_text="fraction of requests", row=1, col=1)
    fig.update_layout(title="Latency CDFs", height=360, margin={"t": 60, "b": 40})
    return fig


def occupancy(timeseries: pd.DataFrame) -> go.Figure:
    fig = make_subplots(
        rows=3, cols=1, shared_xaxes=True, subplot_titles=("batch size", "KV occupancy", "requests in system")
    )
    ts = timeseries
    if len(ts) > 20_000:  # keep the page light: every k-th row
        ts = ts.iloc[:: len(ts) // 20_000 + 1]
    for replica, group in ts.groupby("replica"):
        name = f"replica {replica}"
        for row, column in ((1, "batch_size"), (2, "kv_used_fraction")):
            fig.add_trace(
                go.Scattergl(
                    x=group.time_s,
                    y=group[column],
                    mode="lines",
                    name=name,
                    line={"shape": "hv"},
                    legendgroup=name,
                    showlegend=None if row == 1 else False,  # one legend entry per replica, from row 1
                ),
                row=row,
                col=1,
            )
    fig.add_trace(
        go.Scattergl(x=ts.time_s, y=ts.in_system, mode="lines", name="in system", line={"shape": "hv"}),
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
        ("$ / 1M input tokens", summary.cost_per_1m_input_tokens_usd),
        ("$ / 1M output tokens", summary.cost_per_1m_output_tokens_usd),
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
