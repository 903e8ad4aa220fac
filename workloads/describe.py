"""What a request stream looks like: how many requests, how fast they come, how long they are, and
how much of their prompts a prefix cache could reuse.

Pure functions over columns (so a trace can be described without building a `Requests` table) and a
plotly figure, and both for a request table (`describe_requests`) or a trace file (`describe_trace`);
the CLI prints and writes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workloads.blocks import reuse_fraction
from workloads.requests import Requests
from workloads.trace_format import open_trace
from workloads.traces import read_rows

PERCENTILES = (50, 90, 99)


def summarize(arrival_s: np.ndarray | None, prompt_tokens: np.ndarray, output_tokens: np.ndarray,
              block_ids: np.ndarray | None = None, block_tokens: int | None = None,
              classes: dict[str, int] | None = None, skipped_rows: int = 0) -> dict:
    """One flat mapping: `requests`, `duration_s` (first to last arrival), `rate_per_s` (requests per
    second of that span), token means, nearest-rank percentiles (the smallest observed length with at
    least q% of requests at or below it) and maxima, `block_reuse_fraction` (blocks seen
    before, with an unbounded cache; None without block ids), request counts per class."""
    n = len(prompt_tokens)
    duration = float(arrival_s[-1] - arrival_s[0]) if arrival_s is not None and n else None
    out: dict = {"requests": n, "duration_s": duration,
                 "rate_per_s": n / duration if duration else None}
    for name, values in (("prompt_tokens", prompt_tokens), ("output_tokens", output_tokens)):
        out[f"{name}_mean"] = float(np.mean(values)) if n else None
        for q in PERCENTILES:
            out[f"{name}_p{q}"] = int(np.percentile(values, q, method="inverted_cdf")) if n else None
        out[f"{name}_max"] = int(np.max(values)) if n else None
    out["block_tokens"] = block_tokens
    out["block_reuse_fraction"] = reuse_fraction(block_ids)
    out["classes"] = classes if classes is not None else {"default": n}
    out["skipped_rows"] = skipped_rows
    return out


def summarize_requests(reqs: Requests) -> dict:
    ids = np.concatenate(reqs.block_hashes) if reqs.block_hashes else None
    counts = np.bincount(reqs.cls, minlength=len(reqs.class_names))
    return summarize(reqs.arrival_s, reqs.prompt_tokens, reqs.output_tokens, ids, reqs.block_tokens,
                     {name: int(c) for name, c in zip(reqs.class_names, counts, strict=True)},
                     int(reqs.meta.get("skipped_rows", 0)))


def rate_curve(arrival_s: np.ndarray, bins: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Arrival rate over time: (bin start in seconds, requests per second in that bin), `bins` equal
    bins from the first to the last arrival."""
    if len(arrival_s) == 0:
        return np.zeros(0), np.zeros(0)
    span = max(float(arrival_s[-1] - arrival_s[0]), 1e-9)
    counts, edges = np.histogram(arrival_s, bins=bins, range=(arrival_s[0], arrival_s[0] + span))
    return edges[:-1], counts / np.diff(edges)


def figure(arrival_s: np.ndarray | None, prompt_tokens: np.ndarray, output_tokens: np.ndarray,
           cls: np.ndarray | None = None, class_names: tuple[str, ...] = ("default",),
           title: str = "workload") -> go.Figure:
    """Prompt and output length histograms (per class) and the arrival-rate curve."""
    fig = make_subplots(rows=2, cols=2, specs=[[{}, {}], [{"colspan": 2}, None]],
                        subplot_titles=("prompt tokens", "output tokens", "arrival rate (requests/s)"))
    cls = np.zeros(len(prompt_tokens), np.int32) if cls is None else cls
    for i, name in enumerate(class_names):
        rows = cls == i
        if not rows.any():
            continue
        for col, values in ((1, prompt_tokens), (2, output_tokens)):
            fig.add_trace(go.Histogram(x=values[rows], name=name, legendgroup=name, showlegend=col == 1,
                                       opacity=0.7, nbinsx=60), row=1, col=col)
    if arrival_s is not None and len(arrival_s):
        t, rate = rate_curve(arrival_s)
        curve = go.Scatter(x=t, y=rate, mode="lines", line_shape="hv", name="all requests")
        fig.add_trace(curve, row=2, col=1)
    fig.update_layout(title=title, barmode="overlay", height=700)
    fig.update_xaxes(title_text="tokens", row=1)
    fig.update_xaxes(title_text="time (s)", row=2, col=1)
    return fig


def describe_requests(reqs: Requests, title: str) -> tuple[dict, go.Figure]:
    """`summarize_requests` and the `figure` of a request table."""
    fig = figure(reqs.arrival_s, reqs.prompt_tokens, reqs.output_tokens, reqs.cls, reqs.class_names,
                 title=title)
    return summarize_requests(reqs), fig


def describe_trace(path: Path, format: str = "auto", skip_bad_rows: bool = False) -> tuple[dict, go.Figure]:
    """The summary of a trace file (its detected `format` first; one class named after the file) and
    its figure, read without building a `Requests` table."""
    layout = open_trace(path, format)
    rows = read_rows(layout, skip_bad_rows)
    summary = summarize(rows.arrival_s, rows.prompt_tokens, rows.output_tokens, rows.hash_values,
                        rows.block_tokens, {path.stem: len(rows)}, rows.skipped)
    fig = figure(rows.arrival_s, rows.prompt_tokens, rows.output_tokens, class_names=(path.stem,),
                 title=f"{layout.format} trace {path.name}")
    return {"format": layout.format, **summary}, fig

