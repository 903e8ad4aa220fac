"""A self-contained HTML report of one run (plotly.js inlined once, works offline)."""

from __future__ import annotations

import html

import plotly.io as pio

from sim.report import figures


def _seconds(v: float) -> str:
    return f"{v * 1e3:,.1f} ms" if v < 1 else f"{v:,.2f} s"


def _percent(v: float) -> str:
    return f"{v:.1%}"


def _number(v: float) -> str:
    return f"{v:,.4g}" if isinstance(v, float) else f"{v:,}"


def _usd(v: float) -> str:
    return f"${v:,.4g}"


# (label, summary key, format); rows whose value is missing are left out
ROWS = [
    ("requests finished", "requests_finished", _number),
    ("requests rejected", "requests_rejected", _number),
    ("throughput (requests/s)", "throughput_rps", _number),
    ("output tokens/s", "output_tokens_per_s", _number),
    ("TTFT p50 / p99", ("ttft_p50_s", "ttft_p99_s"), _seconds),
    ("TPOT p50 / p99", ("tpot_p50_s", "tpot_p99_s"), _seconds),
    ("end to end p50 / p99", ("e2e_p50_s", "e2e_p99_s"), _seconds),
    ("mean queueing", "mean_queue_s", _seconds),
    ("goodput (requests/s)", "goodput_rps", _number),
    ("SLO attainment", "slo_attainment", _percent),
    ("KV peak occupancy", "kv_peak_fraction", _percent),
    ("preemptions", "preemptions", _number),
    ("busy share of device time", "utilization", _percent),
    ("cost per 1M output tokens", "cost_per_1m_output_tokens_usd", _usd),
]
CACHE_ROWS = [
    ("prefix hit rate (tokens / blocks)", ("prefix_hit_rate_tokens", "prefix_hit_rate_blocks"), _percent),
    ("of which reloaded from offload", "offload_hit_rate_tokens", _percent),
    ("cache evictions / offload writes", ("cache_evictions", "offload_writes"), _number),
    ("prefill time saved by hits", "cache_prefill_saved_s", _seconds),
    (
        "storing cached KV cost / prefill it saved",
        ("cache_storage_cost_usd", "cache_prefill_saved_usd"),
        _usd,
    ),
]


def summary_rows(summary: dict, caching: bool) -> list[tuple[str, str]]:
    out = []
    for label, key, fmt in ROWS + (CACHE_ROWS if caching else []):
        keys = key if isinstance(key, tuple) else (key,)
        values = [summary.get(k) for k in keys]
        if any(v is None for v in values):
            continue
        out.append((label, " / ".join(fmt(v) for v in values)))
    return out


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
            f"{m} ≤ {_seconds(v)}"
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
