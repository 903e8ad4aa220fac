"""A sweep's HTML report from its results table: the Pareto front of cost against tail latency,
heatmaps over two swept parameters and line plots over one (plotly.js inlined once, works offline).

Figures are pure `DataFrame -> go.Figure`. Where more parameters were swept than a figure has axes,
it shows the mean over the others and says so in its title.
"""

from __future__ import annotations

import html
import itertools

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from sim.format import number
from sim.report.figures import series_colors

COST = "cost_per_1m_output_tokens_usd"
LATENCIES = {"ttft_p99_s": "TTFT p99 (s)", "tpot_p99_s": "TPOT p99 (s)", "e2e_p99_s": "end to end p99 (s)"}
METRICS = {
    "ttft_p99_s": "TTFT p99 (s)",
    "tpot_p99_s": "TPOT p99 (s)",
    "throughput_rps": "throughput (req/s)",
    COST: "$ / 1M output tokens",
}
TABLE_METRICS = [
    "throughput_rps",
    "output_tokens_per_s",
    "ttft_p99_s",
    "tpot_p99_s",
    "e2e_p99_s",
    "goodput_rps",
    "slo_attainment",
    "devices",
    "cost_per_hour_usd",
    "cost_per_1m_input_tokens_usd",
    COST,
    "cost_basis",
]
MAX_PAIRS = 3


def pareto_mask(cost: pd.Series, latency: pd.Series) -> pd.Series:
    """True where no other point is at least as cheap and as fast and strictly better in one."""
    c, lat = cost.to_numpy(float), latency.to_numpy(float)
    ok = ~(np.isnan(c) | np.isnan(lat))
    front = np.zeros(len(c), bool)
    for i in np.flatnonzero(ok):
        dominated = ok & (c <= c[i]) & (lat <= lat[i]) & ((c < c[i]) | (lat < lat[i]))
        front[i] = not dominated.any()
    return pd.Series(front, index=cost.index)


def pareto(results: pd.DataFrame) -> go.Figure:
    fig = make_subplots(rows=1, cols=len(LATENCIES), subplot_titles=list(LATENCIES.values()))
    for col, (metric, title) in enumerate(LATENCIES.items(), start=1):
        if metric not in results or COST not in results:
            continue
        front = pareto_mask(results[COST], results[metric])
        fig.add_trace(
            go.Scatter(
                x=results[COST],
                y=results[metric],
                mode="markers",
                text=results["label"],
                marker={"color": "#bbb"},
                name="point",
                showlegend=col == 1,
            ),
            row=1,
            col=col,
        )
        edge = results[front].sort_values(COST)
        fig.add_trace(
            go.Scatter(
                x=edge[COST],
                y=edge[metric],
                mode="lines+markers",
                text=edge["label"],
                line={"shape": "hv", "color": "#d62728"},
                name="Pareto front",
                showlegend=col == 1,
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(title_text="$ / 1M output tokens", row=1, col=col)
        fig.update_yaxes(title_text=title, type="log", row=1, col=col)
    fig.update_layout(title="Cost against tail latency (lower left is better)", height=420)
    return fig


def _tick(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _others(params: list[str], used: tuple[str, ...]) -> str:
    rest = [p for p in params if p not in used]
    return f" (mean over {', '.join(rest)})" if rest else ""


def heatmap(results: pd.DataFrame, x: str, y: str, params: list[str]) -> go.Figure:
    metrics = [m for m in METRICS if m in results and results[m].notna().any()]
    fig = make_subplots(
        rows=1, cols=len(metrics), subplot_titles=[METRICS[m] for m in metrics], horizontal_spacing=0.08
    )
    for col, metric in enumerate(metrics, start=1):
        grid = results.pivot_table(index=y, columns=x, values=metric, aggfunc="mean")
        fig.add_trace(
            go.Heatmap(
                z=grid.to_numpy(),
                x=[_tick(v) for v in grid.columns],
                y=[_tick(v) for v in grid.index],
                showscale=False,
                texttemplate="%{z:.3g}",
                hovertemplate=f"{x}=%{{x}}<br>{y}=%{{y}}<br>%{{z:.4g}}",
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(title_text=x if col == 1 else None, type="category", row=1, col=col)
        fig.update_yaxes(title_text=y if col == 1 else None, type="category", row=1, col=col)
    fig.update_layout(title=f"{y} against {x}{_others(params, (x, y))}", height=380)
    return fig


def lines(results: pd.DataFrame, x: str, params: list[str]) -> go.Figure:
    """Each metric against `x`, one line per value of the next varying parameter; a text-valued `x`
    (a hardware name) keeps one sorted category order across lines."""
    metrics = [m for m in METRICS if m in results and results[m].notna().any()]
    colour = next((p for p in params if p != x and results[p].nunique() > 1), None)
    fig = make_subplots(
        rows=1, cols=len(metrics), subplot_titles=[METRICS[m] for m in metrics], horizontal_spacing=0.06
    )
    groups = list(results.groupby(colour, sort=True)) if colour else [(None, results)]
    colors = series_colors(value for value, _ in groups)
    for value, group in groups:
        mean = group.groupby(x, sort=True)[metrics].mean()
        name = f"{colour}={_tick(value)}" if colour else x
        for col, metric in enumerate(metrics, start=1):
            fig.add_trace(
                go.Scatter(
                    x=mean.index,
                    y=mean[metric],
                    mode="lines+markers",
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                    line={"color": colors[value]},
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text=x, row=1, col=1)
    if not pd.api.types.is_numeric_dtype(results[x]):
        fig.update_xaxes(type="category", categoryorder="array", categoryarray=sorted(results[x].unique()))
    used = (x, colour) if colour else (x,)
    fig.update_layout(title=f"Metrics against {x}{_others(params, used)}", height=360)
    return fig


def _table(results: pd.DataFrame, params: list[str]) -> str:
    cols = ["point", *params, *(m for m in TABLE_METRICS if m in results), "error"]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(number(row.get(c)))}</td>" for c in cols) + "</tr>"
        for row in results.to_dict("records")
    )
    return f"<h2>Points</h2><table><tr>{head}</tr>{body}</table>"


def sweep_report(results: pd.DataFrame, params: list[str], name: str) -> str:
    """The report page for a sweep's `results` (one row per point) over the swept `params`."""
    ok = results[results["error"].isna()] if "error" in results else results
    varying = [p for p in params if p in ok and ok[p].nunique() > 1]
    figs = []
    if len(ok) > 1 and COST in ok and ok[COST].notna().any():
        figs.append(pareto(ok))
    for x, y in list(itertools.combinations(varying, 2))[:MAX_PAIRS]:
        figs.append(heatmap(ok, x, y, varying))
    figs.extend(lines(ok, x, varying) for x in varying)
    parts = [pio.to_html(f, full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figs)]
    failed = len(results) - len(ok)
    title = html.escape(f"sweep {name}: {len(results)} points" + (f", {failed} failed" if failed else ""))
    bases = sorted(set(ok["cost_basis"].dropna())) if "cost_basis" in ok else []
    priced = (
        "<p>Dollars priced at: " + "; ".join(html.escape(b) for b in bases) + " (each point's: its row).</p>"
        if bases
        else ""
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em}"
        "table{border-collapse:collapse;font-size:13px}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
        "</style></head>"
        f"<body><h1>{title}</h1>{priced}{''.join(parts)}{_table(results, params)}</body></html>"
    )
