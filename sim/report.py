"""A self-contained HTML report of one run (plotly.js inlined once, works offline)."""

from __future__ import annotations

import html

import plotly.io as pio

from sim import figures


def run_report(result) -> str:
    s = result.summary
    figs = [
        figures.latency_cdfs(result.requests),
        figures.occupancy(result.timeseries),
        figures.bound_share(s),
        figures.cost_table(s),
    ]
    parts = [pio.to_html(f, full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figs)]
    keys = [
        "requests_finished",
        "requests_rejected",
        "throughput_rps",
        "output_tokens_per_s",
        "ttft_p50_s",
        "ttft_p99_s",
        "tpot_p50_s",
        "tpot_p99_s",
        "e2e_p99_s",
        "goodput_rps",
        "slo_attainment",
        "kv_peak_fraction",
        "preemptions",
    ]
    rows = "".join(f"<tr><td>{k}</td><td>{_fmt(s.get(k))}</td></tr>" for k in keys)
    classes = (
        result.classes.to_html(index=False, float_format=lambda v: f"{v:.4g}")
        if len(result.classes) > 1
        else ""
    )
    sc = result.scenario
    title = html.escape(
        f"{sc.name}: {sc.model.name} on {sc.replicas} x {sc.par.devices} x {sc.hardware.name}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse}td,th{padding:2px 10px;border-bottom:1px solid #ddd}</style>"
        f"</head><body><h1>{title}</h1><table>{rows}</table>{classes}{''.join(parts)}</body></html>"
    )


def _fmt(v) -> str:
    if v is None:
        return "—"
    return f"{v:,.4g}" if isinstance(v, float) else str(v)
