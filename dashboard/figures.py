"""Figures only the dashboard draws: pure `DataFrame -> go.Figure`, plus `figure_csv` that turns any
figure back into the table it plots (the data behind every "CSV" button). Figures shared with the
HTML report live in `sim.report.figures`."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from sim.engine.summary import Summary
from sim.report import figures as shared
from sim.studies.costcurve import Jump

PHASE_COLORS = {"prefill": "#1f77b4", "decode": "#d62728"}
BOUND_SYMBOLS = {"compute": "circle", "memory": "square", "link": "diamond"}


def roofline(ops: pd.DataFrame, roofs: dict[str, tuple[float, float]]) -> go.Figure:
    """Operators placed by arithmetic intensity (FLOPs per byte) against the FLOP/s they achieve,
    under each device's roofline min(peak, intensity x bandwidth). `roofs` maps a label to
    (peak FLOP/s, bytes/s); the first is drawn solid, the others dashed."""
    lo = max(float(ops["intensity_flops_per_byte"].min()) / 4, 1e-2) if len(ops) else 1e-1
    hi = max(float(ops["intensity_flops_per_byte"].max()) * 4, 1e4) if len(ops) else 1e4
    x = np.geomspace(lo, hi, 200)
    traces = [
        go.Scatter(
            x=x,
            y=np.minimum(peak, x * bw),
            mode="lines",
            name=f"roofline: {label}",
            line={"color": "black" if i == 0 else "grey", "dash": "solid" if i == 0 else "dash"},
        )
        for i, (label, (peak, bw)) in enumerate(roofs.items())
    ]
    for phase, group in ops.groupby("phase", sort=False):
        traces.append(
            go.Scatter(
                x=group["intensity_flops_per_byte"],
                y=group["achieved_flops_per_s"],
                mode="markers",
                name=phase,
                marker={
                    "size": 11,
                    "color": PHASE_COLORS.get(str(phase)),
                    "symbol": [BOUND_SYMBOLS.get(b, "circle") for b in group["bound"]],
                },
                text=[
                    f"{op} ({b}-bound, {t * 1e3:.3g} ms)"
                    for op, b, t in zip(group["op"], group["bound"], group["time_s"], strict=True)
                ],
                hovertemplate="%{text}<br>%{x:.3g} FLOP/B, %{y:.3g} FLOP/s<extra></extra>",
            )
        )
    return go.Figure(
        traces,
        _log_log(
            "arithmetic intensity (FLOPs per byte)",
            "achieved FLOP/s per device",
            "Roofline: prefill and decode operators (circle compute-, square memory-bound)",
        ),
    )


def cost_curve(
    curve: pd.DataFrame,
    jumps: Sequence[Jump],
    model_context_tokens: int | None,
    prompt_tokens: int | None = None,
) -> go.Figure:
    """Cost per request against prompt length on the cheapest device group, one line per hardware of
    a `sim.studies.costcurve` curve (the first solid), with the price cliffs marked: the cost on the
    last prompt before and the first at each jump of the fewest devices that hold a request. The
    model's context limit is a labelled vertical line, and `prompt_tokens` (the prompt asked about)
    another, first among the shapes (`prompt_marker`), so a page can move it alone."""
    traces = []
    for i, (label, group) in enumerate(curve.groupby("hardware", sort=False)):
        traces.append(
            go.Scatter(
                x=group["context_tokens"],
                y=group["cost_per_request_usd"],
                mode="lines",
                name=label,
                line={"dash": "solid" if i == 0 else "dash", "shape": "linear"},
                customdata=group[["devices", "tp", "pp", "batch"]].to_numpy(),
                hovertemplate="%{x:,} tokens: $%{y:.4g}<br>%{customdata[0]} devices (tp %{customdata[1]}, "
                "pp %{customdata[2]}), batch %{customdata[3]}<extra></extra>",
            )
        )
        at = [j.context_tokens for j in jumps if j.hardware == label]
        if at:
            cost = group.set_index("context_tokens")["cost_per_request_usd"]
            y = np.column_stack(
                [cost.reindex([c - 1 for c in at]), cost.reindex(at), np.full(len(at), np.nan)]
            ).ravel()
            traces.append(
                go.Scatter(
                    x=np.repeat(np.array(at) - 1, 3).astype(float),
                    y=y.astype(float),
                    mode="lines+markers",
                    name=f"price cliffs: {label}",
                    line={"dash": "dot", "color": "firebrick" if i == 0 else "salmon"},
                    marker={"symbol": "x", "size": 9},
                    hovertemplate="stops fitting after %{x:,} tokens: $%{y:.4g}<extra></extra>",
                )
            )
    layout = _log_log("prompt tokens", "$ per request", "Cost per request vs context (cheapest device group)")
    marks = [prompt_marker(prompt_tokens)] if prompt_tokens else []
    if model_context_tokens:  # vertical lines as add_vline draws them, cheaper
        marks.append(
            _vertical(
                model_context_tokens,
                f"context limit: {model_context_tokens:,}",
                {"dash": "dot", "color": "grey"},
                "limit",
            )
        )
    if marks:
        layout["shapes"], layout["annotations"] = [m[0] for m in marks], [m[1] for m in marks]
    return go.Figure(traces, layout)


def prompt_marker(prompt_tokens: int) -> tuple[dict, dict]:
    """The cost curve's mark of the prompt asked about: a vertical line and its label at the foot."""
    line = {"dash": "dash", "color": "#6f42c1"}
    return _vertical(prompt_tokens, f"prompt: {prompt_tokens:,}", line, "prompt")


def _vertical(x: float, text: str, line: dict, name: str) -> tuple[dict, dict]:
    """A vertical line across a log-x plot at `x`, and its label (at the top for the model's limit,
    at the foot for the prompt); annotations on a log axis take log10(x)."""
    top = name == "limit"
    shape = {
        "type": "line",
        "name": name,
        "xref": "x",
        "yref": "paper",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "line": line,
    }
    label = {
        "text": text,
        "name": name,
        "xref": "x",
        "yref": "paper",
        "x": float(np.log10(x)),
        "y": 1 if top else 0,
        "xanchor": "right",
        "yanchor": "top" if top else "bottom",
        "showarrow": False,
        "font": {"color": line["color"], "size": 11},
        "bgcolor": "rgba(255,255,255,0.7)",
    }
    return shape, label


def _log_log(x_title: str, y_title: str, title: str) -> dict:
    """The layout the log-log figures share: both axes logarithmic, legend below. Built as one
    layout rather than by updating a figure: plotly validates each update, and these figures are
    redrawn on every move of a designer knob."""
    return {
        "xaxis": {"type": "log", "title": {"text": x_title}},
        "yaxis": {"type": "log", "title": {"text": y_title}},
        "title": {"text": title},
        "height": 420,
        "margin": {"t": 60, "b": 40},
        "legend": {"orientation": "h", "y": -0.2},
    }


def latency_cdfs(requests: dict[str, pd.DataFrame]) -> go.Figure:
    """TTFT, TPOT and end-to-end CDFs of several runs on shared axes, one colour per run."""
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
    empty = pd.DataFrame({"ttft_s": [], "tpot_s": [], "e2e_s": []})
    fig = shared.latency_cdfs(empty)
    for i, (label, frame) in enumerate(requests.items()):
        traces = list(shared.latency_cdfs(frame, label).data)
        for k, trace in enumerate(traces):
            trace.update(
                name=label, legendgroup=label, showlegend=k == 0, line={"color": palette[i % len(palette)]}
            )
        fig.add_traces(traces)
    return fig


def bound_shares(summaries: dict[str, Summary]) -> go.Figure:
    """Compute-bound, memory-bound and communication share of step time, one bar per run."""
    labels = list(summaries)
    fig = go.Figure()
    runs = list(summaries.values())
    for part, shares in (
        ("compute-bound", [s.compute_bound_time_fraction for s in runs]),
        ("memory-bound", [s.memory_bound_time_fraction for s in runs]),
        ("communication", [s.link_time_fraction for s in runs]),
    ):
        fig.add_trace(go.Bar(x=labels, y=shares, name=part))
    fig.update_layout(
        barmode="stack",
        title="Where step time goes",
        height=320,
        yaxis={"tickformat": ".0%"},
        margin={"t": 60, "b": 40},
    )
    return fig


def pareto(points: pd.DataFrame, x: str, y: str, front: pd.Series, color: str | None) -> go.Figure:
    """Every sweep point, with the Pareto front (the points no other point beats on both axes)."""
    fig = go.Figure()
    hover = [
        ", ".join(f"{k}={v}" for k, v in row.items())
        for row in points.drop(columns=[x, y]).to_dict("records")
    ]
    marker = {"size": 9, "opacity": 0.6}
    if color and color in points:
        marker |= {
            "color": points[color],
            "colorscale": "Viridis",
            "showscale": True,
            "colorbar": {"title": color},
        }
    fig.add_trace(
        go.Scatter(
            x=points[x],
            y=points[y],
            mode="markers",
            name="points",
            marker=marker,
            text=hover,
            hovertemplate="%{x:.4g}, %{y:.4g}<br>%{text}<extra></extra>",
        )
    )
    best = points[front].sort_values(x)
    fig.add_trace(
        go.Scatter(
            x=best[x],
            y=best[y],
            mode="lines+markers",
            name="Pareto front",
            line={"color": "firebrick", "shape": "hv"},
            marker={"size": 11, "symbol": "star"},
        )
    )
    fig.update_xaxes(title_text=x)
    fig.update_yaxes(title_text=y)
    fig.update_layout(title=f"Pareto front: {y} against {x}", height=440, margin={"t": 60, "b": 40})
    return fig


def _tick(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def heatmap(grid: pd.DataFrame, metric: str) -> go.Figure:
    """A metric over two parameters: `grid` is a pivot (rows: one parameter, columns: the other)."""
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=[_tick(c) for c in grid.columns],
            y=[_tick(i) for i in grid.index],
            colorscale="Viridis",
            colorbar={"title": metric},
            texttemplate="%{z:.3g}",
            hovertemplate="%{y}, %{x}: %{z:.4g}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text=str(grid.columns.name), type="category")
    fig.update_yaxes(title_text=str(grid.index.name), type="category")
    fig.update_layout(
        title=f"{metric} over {grid.index.name} and {grid.columns.name}",
        height=440,
        margin={"t": 60, "b": 40},
    )
    return fig


def figure_csv(figure: dict) -> str:
    """The data a figure plots as one CSV table: a row per point (trace, x, y, and z for heatmaps),
    or a table trace's header and cells as they are."""
    frames = []
    for trace in figure.get("data", []):
        name = trace.get("name") or trace.get("type", "trace")
        if trace.get("type") == "table":
            header = trace.get("header", {}).get("values", [])
            cells = trace.get("cells", {}).get("values", [])
            frames.append(pd.DataFrame(dict(zip(header, cells, strict=False))).assign(trace=name))
        elif trace.get("type") == "heatmap":
            z = np.asarray(_values(trace.get("z")), dtype=float).reshape(-1, len(_values(trace.get("x"))))
            ys, xs = _values(trace.get("y")), _values(trace.get("x"))
            frames.append(
                pd.DataFrame(
                    [
                        {"trace": name, "y": yv, "x": xv, "z": z[i, j]}
                        for i, yv in enumerate(ys)
                        for j, xv in enumerate(xs)
                    ]
                )
            )
        elif trace.get("type") == "pie":
            frames.append(
                pd.DataFrame({"trace": name, "x": trace.get("labels", []), "y": trace.get("values", [])})
            )
        else:
            x, y = _values(trace.get("x")), _values(trace.get("y"))
            n = max(len(x), len(y))
            frames.append(
                pd.DataFrame(
                    {
                        "trace": name,
                        "x": x if len(x) == n else [None] * n,
                        "y": y if len(y) == n else [None] * n,
                    }
                )
            )
    buf = io.StringIO()
    (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()).to_csv(buf, index=False)
    return buf.getvalue()


def _values(values) -> list:
    """Trace data as a list: plotly sends large numeric arrays as {"dtype", "bdata"} (base64)."""
    if values is None:
        return []
    if isinstance(values, dict) and "bdata" in values:
        arr = np.frombuffer(base64.b64decode(values["bdata"]), dtype=np.dtype(values["dtype"]))
        shape = values.get("shape")
        return (arr.reshape([int(s) for s in str(shape).split(",")]) if shape else arr).tolist()
    return list(values)


def empty(message: str) -> go.Figure:
    """A blank figure that says why it is blank."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font={"size": 14, "color": "grey"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=200, plot_bgcolor="white", margin={"t": 20, "b": 20})
    return fig


def _row_fill(frame: pd.DataFrame, flagged: pd.Series | None) -> list[str]:
    """Each row's background: amber where flagged, else white."""
    if flagged is None:
        return ["white"] * len(frame)
    return ["#fff3cd" if f else "white" for f in flagged]


def table(frame: pd.DataFrame, title: str, flagged: pd.Series | None = None) -> go.Figure:
    """A table as a figure, so it downloads like the others; floats to 4 significant figures, the
    `flagged` rows (a boolean per row) shaded amber."""
    cells = [
        [
            f"{v:,.4g}" if isinstance(v, float) and not np.isnan(v) else ("" if v is None or v != v else v)
            for v in frame[c]
        ]
        for c in frame.columns
    ]
    fig = go.Figure(
        go.Table(
            header={"values": list(frame.columns), "align": "left"},
            cells={"values": cells, "align": "left", "fill_color": [_row_fill(frame, flagged)]},
        )
    )
    fig.update_layout(
        title=title, height=max(200, 120 + 45 * len(frame)), margin={"t": 50, "b": 10, "l": 10, "r": 10}
    )
    return fig
