"""A self-contained HTML report of one run (plotly.js inlined once, works offline)."""

from __future__ import annotations

import html

import plotly.io as pio

from sim.engine.summary import Summary
from sim.format import number, percent, seconds, usd
from sim.report import figures


def _number(v: float) -> str:
    """Counts and rates in the report's table: integers grouped by thousands."""
    return number(v, thousands=True)


def summary_rows(s: Summary, caching: bool) -> list[tuple[str, str]]:
    """The run's headline numbers as (label, text) rows, the cache's when it was on; a row with a
    missing value (no price, nothing finished) is left out."""
    rows = [
        ("requests finished", (s.requests_finished,), _number),
        ("requests rejected", (s.requests_rejected,), _number),
        ("throughput (requests/s)", (s.throughput_rps,), _number),
        ("output tokens/s", (s.output_tokens_per_s,), _number),
        ("TTFT p50 / p99", (s.ttft_p50_s, s.ttft_p99_s), seconds),
        ("TPOT p50 / p99", (s.tpot_p50_s, s.tpot_p99_s), seconds),
        ("end to end p50 / p99", (s.e2e_p50_s, s.e2e_p99_s), seconds),
        ("mean queueing", (s.mean_queue_s,), seconds),
        ("goodput (requests/s)", (s.goodput_rps,), _number),
        ("SLO attainment", (s.slo_attainment,), percent),
        ("KV peak occupancy", (s.kv_peak_fraction,), percent),
        ("preemptions", (s.preemptions,), _number),
        ("busy share of device time", (s.utilization,), percent),
        ("cost per 1M output tokens", (s.cost_per_1m_output_tokens_usd,), usd),
    ]
    if caching:
        rows += [
            (
                "prefix hit rate (tokens / blocks)",
                (s.prefix_hit_rate_tokens, s.prefix_hit_rate_blocks),
                percent,
            ),
            ("of which reloaded from offload", (s.offload_hit_rate_tokens,), percent),
            ("cache evictions / offload writes", (s.cache_evictions, s.offload_writes), _number),
            ("prefill time saved by hits", (s.cache_prefill_saved_s,), seconds),
            (
                "storing cached KV cost / prefill it saved",
                (s.cache_storage_cost_usd, s.cache_prefill_saved_usd),
                usd,
            ),
        ]
    return [
        (label, " / ".join(fmt(v) for v in values))
        for label, values, fmt in rows
        if not any(v is None for v in values)
    ]


def describe(scenario) -> str:
    """One line on what was simulated: load, stop condition, SLO."""
    wl = scenario.workload
    arrivals = wl.arrivals.kind + (
        f" at {wl.arrivals.rate_per_s:g} requests/s" if hasattr(wl.arrivals, "rate_per_s") else ""
    )
    stop = scenario.stop
    until = f"{stop.requests:,} requests" if stop.requests else f"{stop.duration_s:g} s of arrivals"
    classes = ", ".join(c.name for c in wl.classes)
    slo = scenario.slo
    target = ""
    if slo is not None:
        parts = [
            f"{m} ≤ {seconds(v)}"
            for m, v in (("TTFT", slo.ttft_s), ("TPOT", slo.tpot_s), ("e2e", slo.e2e_s))
            if v
        ]
        target = f"; SLO {', '.join(parts)} at p{slo.percentile:g}"
    return f"{arrivals}, {until}, classes: {classes}{target}; seed {scenario.seed}"


def run_report(result) -> str:
    s = result.summary
    sc = result.scenario
    figs = [
        figures.latency_cdfs(result.requests),
        figures.occupancy(result.timeseries),
        figures.bound_share(s),
        figures.cost_table(s),
    ]
    parts = [pio.to_html(f, full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figs)]
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
        for k, v in summary_rows(s, sc.kv_cache.prefix_caching)
    )
    classes = (
        "<h2>By class</h2>" + result.classes.to_html(index=False, float_format=lambda v: f"{v:.4g}")
        if len(result.classes) > 1
        else ""
    )
    title = html.escape(
        f"{sc.name}: {sc.model.name} on {sc.replicas} x {sc.par.devices} x {sc.hardware.name}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse}td,th{padding:2px 10px;border-bottom:1px solid #ddd}"
        "td:last-child{text-align:right}</style>"
        f"</head><body><h1>{title}</h1><p>{html.escape(describe(sc))}</p><table>{rows}</table>{classes}"
        f"{''.join(parts)}</body></html>"
    )
