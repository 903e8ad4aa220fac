"""A self-contained HTML report of one run (plotly.js inlined once, works offline)."""

from __future__ import annotations

import html

import plotly.io as pio

from sim.engine.summary import Summary
from sim.format import number, percent, seconds, seconds_ci, usd
from sim.report import figures
from sim.report.readout import (
    SloVerdict,
    estimate,
    latency,
    measured,
    model_band_rows,
    notes,
    overload,
    slo_verdict,
)


def _number(v: float) -> str:
    """Counts and rates in the report's table: integers grouped by thousands."""
    return number(v, thousands=True)


def summary_rows(s: Summary, caching: bool) -> list[tuple[str, str]]:
    """The run's headline numbers as (label, text) rows, estimates with their confidence intervals,
    the cache's when it was on; a row with a missing value (no price, nothing finished) is left out,
    and an overloaded run leads with the load it was offered against the load it sustained."""
    rows = [
        ("overloaded", (overload(s),), overload(s)),
        ("requests finished", (s.requests_finished,), _number(s.requests_finished)),
        ("requests rejected", (s.requests_rejected,), _number(s.requests_rejected)),
        ("measured", (measured(s),), measured(s)),
        ("throughput", (s.throughput_rps,), estimate(s, "throughput_rps")),
        ("output tokens/s", (s.output_tokens_per_s,), _number(s.output_tokens_per_s)),
        ("TTFT p50 / p99", (s.ttft_p50_s, s.ttft_p99_s), latency(s, "ttft")),
        ("TPOT p50 / p99", (s.tpot_p50_s, s.tpot_p99_s), latency(s, "tpot")),
        ("end to end p50 / p99", (s.e2e_p50_s, s.e2e_p99_s), latency(s, "e2e")),
        ("mean queueing", (s.mean_queue_s,), estimate(s, "mean_queue_s")),
        ("goodput", (s.goodput_rps,), estimate(s, "goodput_rps")),
        ("SLO attainment", (s.slo_attainment,), estimate(s, "slo_attainment")),
        ("KV peak occupancy", (s.kv_peak_fraction,), percent(s.kv_peak_fraction)),
        ("preemptions", (s.preemptions,), _number(s.preemptions)),
        ("busy share of device time", (s.utilization,), percent(s.utilization)),
        ("cost per hour", (s.cost_per_hour_usd,), usd(s.cost_per_hour_usd)),
        (
            "cost per 1M input / output tokens",
            (s.cost_per_1m_input_tokens_usd, s.cost_per_1m_output_tokens_usd),
            f"{usd(s.cost_per_1m_input_tokens_usd)} / {usd(s.cost_per_1m_output_tokens_usd)}",
        ),
        ("prefill share of device time", (s.prefill_cost_share,), percent(s.prefill_cost_share)),
        ("priced at", (s.cost_basis,), s.cost_basis),
    ]
    rows += [(label, (text,), text) for label, text in model_band_rows(s)]
    if caching:
        rows += _cache_rows(s)
    return [(label, text) for label, values, text in rows if not any(v is None for v in values)]


def _cache_rows(s: Summary) -> list[tuple[str, tuple, str]]:
    """The prefix cache's rows: hit rates, evictions, and what storing KV cost against what it saved."""
    stored_saved = (s.cache_storage_cost_usd, s.cache_prefill_saved_usd)
    evicted_written = (s.cache_evictions, s.offload_writes)
    return [
        (
            "prefix hit rate (tokens / blocks)",
            (s.prefix_hit_rate_tokens, s.prefix_hit_rate_blocks),
            f"{percent(s.prefix_hit_rate_tokens)} / {percent(s.prefix_hit_rate_blocks)}",
        ),
        ("of which reloaded from offload", (s.offload_hit_rate_tokens,), percent(s.offload_hit_rate_tokens)),
        ("cache evictions / offload writes", evicted_written, " / ".join(map(_number, evicted_written))),
        ("prefill time saved by hits", (s.cache_prefill_saved_s,), seconds(s.cache_prefill_saved_s)),
        ("storing cached KV cost / prefill it saved", stored_saved, " / ".join(map(usd, stored_saved))),
    ]


def _row_html(label: str, text: str) -> str:
    """One summary row as HTML; the overloaded row in red, as the terminal prints it."""
    style = " class='overloaded'" if label == "overloaded" else ""
    return f"<tr{style}><td>{html.escape(label)}</td><td>{html.escape(text)}</td></tr>"


def verdict_html(verdict: SloVerdict | None) -> str:
    """The SLO verdict as `ctxsim run` prints it: each class's targets, its p50 / p90 / p99, the
    headroom at the target's percentile and PASS or MISS, then the run's."""
    if verdict is None:
        return "<p class='notes'>No SLO set: add <code>slo:</code> to the scenario for a verdict.</p>"

    def cell(ok: bool) -> str:
        return "<td class='pass'>PASS</td>" if ok else "<td class='miss'>MISS</td>"

    rows = []
    for c in verdict.classes:
        for t in c.targets:
            values = "".join(f"<td>{seconds_ci(t.values.get(q))}</td>" for q in (50.0, 90.0, 99.0))
            headroom = "—" if t.headroom is None else f"{t.headroom:+.0%}"
            rows.append(
                f"<tr><td>{html.escape(c.name)}</td><td>{html.escape(t.label)}</td>{values}"
                f"<td>{html.escape(seconds_ci(t.achieved))}</td><td>{headroom}</td>{cell(t.passed)}</tr>"
            )
        if c.rejected:
            rows.append(
                f"<tr><td>{html.escape(c.name)}</td><td>{c.rejected:,} of {c.requests:,} requests rejected"
                f"</td><td></td><td></td><td></td><td></td><td></td>{cell(False)}</tr>"
            )
    load = "overloaded: latency unmeasurable" if verdict.overloaded else ""
    rows.append(f"<tr><td><b>overall</b></td><td>{load}</td>{'<td></td>' * 5}{cell(verdict.passed)}</tr>")
    head = "".join(
        f"<th>{h}</th>" for h in ("class", "target", "p50", "p90", "p99", "achieved", "headroom", "verdict")
    )
    return (
        f"<h2>SLO verdict</h2><table class='verdict'><tr>{head}</tr>{''.join(rows)}</table>"
        f"<p class='notes'>percentiles {html.escape(verdict.window)}</p>"
    )


def notes_html(s: Summary) -> str:
    """The caveats on the run's numbers as a list under its table, warnings in amber."""
    items = "".join(f"<li class='{n.level}'>{html.escape(n.text)}</li>" for n in notes(s))
    return f"<ul class='notes'>{items}</ul>" if items else ""


def describe(scenario) -> str:
    """One line on what was simulated: load, stop condition, SLO."""
    wl = scenario.workload
    arrivals = wl.arrivals.kind + (
        f" at {wl.arrivals.rate_per_s:g} requests/s" if hasattr(wl.arrivals, "rate_per_s") else ""
    )
    stop = scenario.stop
    until = f"{stop.requests:,} requests" if stop.requests else f"{stop.duration_s:g} s of arrivals"
    if stop.until == "converged":
        until = f"requests until converged (within ±{stop.relative_ci:.0%}, at most {stop.max_requests:,})"
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
    rows = "".join(_row_html(k, v) for k, v in summary_rows(s, sc.kv_cache.prefix_caching))
    verdict = verdict_html(slo_verdict(sc, s, result.classes, result.requests))
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
        "td:last-child{text-align:right}tr.overloaded{color:#c00;font-weight:bold}"
        ".notes{color:#555}.notes .warning{color:#b36b00;font-weight:bold}"
        "td.pass{color:#080;font-weight:bold}td.miss{color:#c00;font-weight:bold}</style>"
        f"</head><body><h1>{title}</h1><p>{html.escape(describe(sc))}</p><table>{rows}</table>"
        f"{notes_html(s)}{verdict}{classes}"
        f"{''.join(parts)}</body></html>"
    )
