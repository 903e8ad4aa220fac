"""A run summary read out for a person: its estimates with their confidence intervals, and the notes
a reader must see before trusting them (an overload, a load still drifting, a p99 without an
interval). Worded once here; the terminal table, the HTML report and the dashboard each style them
their own way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sim.engine.steady import INTERVAL_FIELDS, LATENCY_FIELDS, ci_names
from sim.engine.summary import Summary
from sim.format import count, is_missing, percent_ci, rate_ci, seconds_ci
from sim.stats import quantile_min_samples

P99_MIN_REQUESTS = quantile_min_samples(99)
"""Measured requests a p99 needs before it gets an interval."""
P99_FIELDS = tuple(f for f in LATENCY_FIELDS if f.endswith("_p99_s"))


BORDERLINE = (
    "borderline: within the confidence interval of an SLO's limit even at the most requests simulated, "
    "or its load never settled; its point estimates decided it"
)
"""What a plan's borderline verdict means, for `ctxsim plan` and the sizing page alike."""


@dataclass(frozen=True)
class Note:
    """One caveat on a run's numbers: `warning` changes how far they can be trusted, `info` explains."""

    level: Literal["warning", "info"]
    text: str


def estimate(s: Summary, field: str) -> str:
    """A field that has an interval (`sim.engine.steady.INTERVAL_FIELDS`), with it, in the unit its
    name ends in: seconds (_s), a rate (_rps) or else a fraction: '12.03 req/s [11.65–12.41]'."""
    fmt = seconds_ci if field.endswith("_s") else rate_ci if field.endswith("_rps") else percent_ci
    return fmt(s.metric(field), *(s.metric(name) for name in ci_names(field)))


def latency(s: Summary, metric: str) -> str:
    """`metric`'s (ttft, tpot, e2e) p50 / p99, the p99 with its interval: '41.5 ms / 301 ms [290–313]'."""
    return f"{seconds_ci(s.metric(f'{metric}_p50_s'))} / {estimate(s, f'{metric}_p99_s')}"


MODEL_BAND_FIELDS = ("ttft_p99_s", "tpot_p99_s", "e2e_p99_s", "throughput_rps")
"""The fields whose model-uncertainty interval the run table and report show."""


def model_band(s: Summary, field: str) -> str | None:
    """The serving stack's 80% interval of `field` (`*_lo*` to `*_hi*`, model uncertainty), as
    '240 ms – 410 ms'; None without one."""
    unit = "_rps" if field.endswith("_rps") else "_s"
    stem = field.removesuffix(unit)
    lo, hi = s.metric(f"{stem}_lo{unit}"), s.metric(f"{stem}_hi{unit}")
    if lo is None or hi is None:
        return None
    fmt = seconds_ci if unit == "_s" else rate_ci
    return f"{fmt(lo)} – {fmt(hi)}"


def model_band_rows(s: Summary) -> list[tuple[str, str]]:
    """(label, text) of each field in `MODEL_BAND_FIELDS` that has a model interval."""
    labels = {"ttft_p99_s": "TTFT p99", "tpot_p99_s": "TPOT p99", "e2e_p99_s": "e2e p99"}
    rows = []
    for field in MODEL_BAND_FIELDS:
        text = model_band(s, field)
        if text is not None:
            rows.append((f"{labels.get(field, 'throughput')}, stack's 80% band", text))
    return rows


def measured(s: Summary) -> str | None:
    """How many requests the numbers measure and how many were dropped at each end of the run:
    '4,931 (dropped 26 warm-up, 43 drain)'; None when the summary does not say."""
    counts = (s.requests_total, s.warmup_requests_dropped, s.drain_requests_dropped)
    if any(is_missing(n) for n in counts):
        return None
    total, warmup, drain = counts
    return f"{count(total - warmup - drain)} (dropped {count(warmup)} warm-up, {count(drain)} drain)"


def overload(s: Summary) -> str | None:
    """Offered against sustainable load when arrivals outran service (latency then goes unreported),
    else None."""
    if not s.overloaded:
        return None
    return f"offered {rate_ci(s.offered_rps)}, sustainable {rate_ci(s.sustainable_rps)}"


def notes(s: Summary) -> list[Note]:
    """The caveats on `s`, most important first."""
    found = []
    if s.steady_state is False:
        found.append(Note("warning", "the load was still drifting: simulate more requests"))
    if any(s.metric(f) is not None and not _has_interval(s, f) for f in P99_FIELDS):
        found.append(Note("info", f"p99 intervals need ≥ {P99_MIN_REQUESTS:,} measured requests"))
    if any(_has_interval(s, f) for f in INTERVAL_FIELDS):
        found.append(Note("info", f"[lo–hi]: {s.ci_level:.0%} confidence intervals"))
    if model_band_rows(s):
        found.append(
            Note(
                "info",
                "stack's 80% band: where 80% of held-out public measurements fell against this stack's "
                "predictions (model uncertainty, which no run length narrows)",
            )
        )
    return found


def _has_interval(s: Summary, field: str) -> bool:
    """Whether `field` has both interval bounds (None: too few samples for one)."""
    return all(s.metric(name) is not None for name in ci_names(field))
