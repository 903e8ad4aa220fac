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
from sim.report import labels
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


NO_RUNS = "no data yet: run a scenario"
"""What a runs-page figure says before any run is kept."""


def latency_cdfs(requests: dict[str, pd.DataFrame]) -> go.Figure:
    """TTFT, TPOT and end-to-end CDFs of several runs on shared axes, one colour per run (the
    colours `sim.report.figures.series_colors` gives the runs); a placeholder with no latencies."""
    if not any(shared.has_latencies(frame) for frame in requests.values()):
        return empty(NO_RUNS if not requests else "no finished requests: no latencies to plot")
    fig = shared.cdf_axes()
    colors = shared.series_colors(requests)
    for label, frame in requests.items():
        shared.add_cdfs(fig, frame, label, colors[label])
    return fig


def bound_shares(summaries: dict[str, Summary]) -> go.Figure:
    """Compute-bound, memory-bound and communication share of step time, one bar per run."""
    if not summaries:
        return empty(NO_RUNS)
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


MAX_LABELLED = 40
"""Sweeps with more points than this label only the Pareto front's, so the labels stay legible."""


def point_names(points: pd.DataFrame, params: Sequence[str]) -> list[str]:
    """Each point's short name from the parameters that vary across `points`: 'h200, tp 4'."""
    varying = [p for p in params if p in points and points[p].astype(str).nunique() > 1] or [
        p for p in params if p in points
    ]
    return (
        [
            ", ".join(labels.point_text(p, v) for p, v in zip(varying, row, strict=True))
            for row in points[varying].itertuples(index=False)
        ]
        if varying
        else [str(i) for i in points.index]
    )


def _sorted_values(values: pd.Series) -> list:
    """A column's distinct values in reading order: numbers ascending, text alphabetically."""
    unique = values.dropna().unique().tolist()
    try:
        return sorted(unique)
    except TypeError:
        return sorted(unique, key=str)


LABEL_POSITIONS = {
    "top center": (0, 1),
    "bottom center": (0, -1),
    "middle right": (1, 0),
    "middle left": (-1, 0),
    "top right": (1, 1),
    "bottom right": (1, -1),
    "top left": (-1, 1),
    "bottom left": (-1, -1),
}
"""Where a point's label may go, tried in this order, as plotly's textposition and a direction."""


def _pixels(values: np.ndarray, log: bool, size: float) -> np.ndarray:
    """Values placed across an axis `size` pixels long as plotly's autorange would (5% margins)."""
    v = np.log10(np.where(values > 0, values, np.nan)) if log else values.astype(float)
    lo, hi = np.nanmin(v), np.nanmax(v)
    if not np.isfinite(lo) or hi == lo:
        return np.full(len(v), size / 2)
    return size * (0.05 + 0.9 * (v - lo) / (hi - lo))


def place_labels(
    x: np.ndarray,
    y: np.ndarray,
    texts: Sequence[str],
    order: Sequence[int],
    *,
    log_x: bool = False,
    log_y: bool = False,
    width: float = 760,
    height: float = 330,
) -> list[tuple[str, str]]:
    """(textposition, text) per point: each label of `texts` (in `order`, the most important first)
    goes to the first of `LABEL_POSITIONS` where it overlaps no marker and no label already placed
    and stays inside the plot; one that fits nowhere is left out (its point keeps its hover). The
    plot is taken as `width` x `height` pixels with 10-pixel text, so the labels survive in a PNG."""
    px, py = _pixels(np.asarray(x, float), log_x, width), _pixels(np.asarray(y, float), log_y, height)
    marker = 6.0
    taken = [(a - marker, b - marker, a + marker, b + marker) for a, b in zip(px, py, strict=True)]
    placed = [("top center", "")] * len(texts)
    for i in order:
        if not texts[i]:
            continue
        w, h = 6.0 * len(texts[i]), 12.0
        for position, (dx, dy) in LABEL_POSITIONS.items():
            cx, cy = px[i] + dx * (w / 2 + marker + 2), py[i] + dy * (h / 2 + marker + 1)
            box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
            inside = box[0] >= -20 and box[2] <= width + 20 and box[1] >= 0 and box[3] <= height
            clear = not any(
                box[0] < t[2] and t[0] < box[2] and box[1] < t[3] and t[1] < box[3]
                for j, t in enumerate(taken)
                if j != i
            )
            if inside and clear:
                placed[i] = (position, texts[i])
                taken.append(box)
                break
    return placed


def pareto(
    points: pd.DataFrame,
    x: str,
    y: str,
    front: pd.Series,
    color: str | None = None,
    *,
    params: Sequence[str] = (),
    discrete: bool = False,
    log_x: bool = False,
    log_y: bool = False,
    point_labels: bool = True,
) -> go.Figure:
    """Every sweep point that has both values, with the Pareto front (the points no other point beats
    on both axes).

    Axes, hover and colours read through `sim.report.labels` (units, human values). `color` colours
    the points: a `discrete` column (text such as hardware, or a swept parameter's few values) gets
    one legend entry and colour per value (`series_colors`, over every point so a value keeps its
    colour whichever points are drawn), any other a colour scale whose bar sits clear of the legend,
    which lies below the plot. With `point_labels` the points carry their short names where they fit
    (`place_labels`; the front's first, only the front's past `MAX_LABELLED` points), so an exported
    PNG says which configuration each point is."""
    drawn = (points[x].notna() & points[y].notna()).to_numpy()
    if log_x:
        drawn = drawn & (points[x] > 0).to_numpy()
    if log_y:
        drawn = drawn & (points[y] > 0).to_numpy()
    by_all = points[color] if color and color in points else None
    names_all = point_names(points, params)
    best_all = front.to_numpy(bool) & drawn
    points, front = points[drawn], pd.Series(best_all[drawn], index=points.index[drawn])
    names = [n for n, d in zip(names_all, drawn, strict=True) if d]
    ax, ay = labels.axis(x, points[x]), labels.axis(y, points[y])
    xs, ys = points[x].astype(float).to_numpy() * ax.scale, points[y].astype(float).to_numpy() * ay.scale
    hover = [
        f"<b>{name}</b><br>{labels.label(x)}: {labels.text(x, xv)}<br>{labels.label(y)}: {labels.text(y, yv)}"
        for name, xv, yv in zip(names, points[x], points[y], strict=True)
    ]
    best = front.to_numpy(bool)
    if point_labels and len(points):
        shown = (
            names
            if len(points) <= MAX_LABELLED
            else [n if b else "" for n, b in zip(names, best, strict=True)]
        )
        order = [*np.flatnonzero(best), *np.flatnonzero(~best)]
        placed = place_labels(xs, ys, shown, order, log_x=log_x, log_y=log_y)
    else:
        placed = [("top center", "")] * len(points)
    style = {"textfont": {"size": 10}, "hovertemplate": "%{customdata}<extra></extra>", "cliponaxis": False}

    def labelled(mask: np.ndarray) -> dict:
        here = [p for p, m in zip(placed, mask, strict=True) if m]
        if not any(t for _, t in here):
            return {"mode": "markers"}
        return {"mode": "markers+text", "text": [t for _, t in here], "textposition": [q for q, _ in here]}

    fig = go.Figure()
    by = points[color] if by_all is not None else None
    if by is not None and discrete:
        colors = shared.series_colors(_sorted_values(by_all))
        for value in colors:
            mask = (by == value).to_numpy()
            if not mask.any():
                continue
            fig.add_trace(
                go.Scatter(
                    x=xs[mask],
                    y=ys[mask],
                    name=labels.point_text(color, value),
                    marker={"size": 10, "color": colors[value], "opacity": 0.85},
                    customdata=[h for h, m in zip(hover, mask, strict=True) if m],
                    legendgroup=str(value),
                    **labelled(mask),
                    **style,
                )
            )
    else:
        marker: dict = {"size": 10, "opacity": 0.85, "color": "#4c78a8"}
        if by is not None:
            ac = labels.axis(color, by_all)
            marker |= {
                "color": by.astype(float) * ac.scale,
                "colorscale": "Viridis",
                "showscale": True,
                "colorbar": {"title": {"text": ac.title}, "x": 1.02, "len": 0.8},
            }
        everything = np.ones(len(points), bool)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                name="sweep points",
                marker=marker,
                customdata=hover,
                **labelled(everything),
                **style,
            )
        )
    order = np.argsort(xs[best], kind="stable")
    fig.add_trace(
        go.Scatter(
            x=xs[best][order],
            y=ys[best][order],
            mode="lines+markers",
            name="Pareto front",
            line={"color": "firebrick", "shape": "hv"},
            marker={"size": 14, "symbol": "star-open", "line": {"width": 2}},
            customdata=list(np.array(hover, dtype=object)[best][order]),
            hovertemplate="Pareto front<br>%{customdata}<extra></extra>",
        )
    )
    fig.update_layout(
        title={"text": f"Pareto front: {labels.label(y)} against {labels.label(x)}"},
        xaxis={"title": {"text": ax.title}, "type": "log" if log_x else "linear"},
        yaxis={"title": {"text": ay.title}, "type": "log" if log_y else "linear"},
        legend={
            "orientation": "h",
            "yanchor": "top",
            "y": -0.18,
            "x": 0,
            "title": {"text": f"{labels.label(color)}: " if by is not None and discrete else ""},
        },
        height=520,
        margin={"t": 60, "b": 60},
    )
    return fig


def heatmap(grid: pd.DataFrame, metric: str, averaged_over: Sequence[str] = ()) -> go.Figure:
    """A metric over two parameters: `grid` is a pivot (rows: one parameter, columns: the other),
    values in one unit (`sim.report.labels.axis`), each cell written as a person reads it, ticks with their
    units; `averaged_over` names the other swept parameters the cells are means over."""
    rows, cols = str(grid.index.name), str(grid.columns.name)
    az = labels.axis(metric, grid.to_numpy().ravel())
    cells = [[labels.text(metric, v) if not np.isnan(v) else "" for v in row] for row in grid.to_numpy(float)]
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(float) * az.scale,
            x=[labels.text(cols, c) for c in grid.columns],
            y=[labels.text(rows, i) for i in grid.index],
            text=cells,
            colorscale="Viridis",
            colorbar={"title": {"text": az.title}},
            texttemplate="%{text}",
            hovertemplate=f"%{{y}}, %{{x}}<br>{labels.label(metric)}: %{{text}}<extra></extra>",
        )
    )
    mean = f" (mean over {', '.join(labels.label(p) for p in averaged_over)})" if averaged_over else ""
    fig.update_layout(
        title={"text": f"{labels.label(metric)} by {labels.label(rows)} and {labels.label(cols)}{mean}"},
        xaxis={"title": {"text": labels.label(cols)}, "type": "category"},
        yaxis={"title": {"text": labels.label(rows)}, "type": "category"},
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
