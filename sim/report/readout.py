"""A run summary read out for a person: its estimates with their confidence intervals, and the notes
a reader must see before trusting them (an overload, a load still drifting, a p99 without an
interval). Worded once here; the terminal table, the HTML report and the dashboard each style them
their own way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

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


REJECTION_REASONS = {
    "kv_capacity": "the KV cache cannot hold it even alone",
    "prompt_exceeds_batch_tokens": "the prompt exceeds the step's token budget",
    "context_limit": "prompt + output exceed the model's context",
}
"""What each rejection reason in the request table means, for a reader."""


def rejected_counts(requests: pd.DataFrame) -> dict[str, int]:
    """Rejected requests per reason, most first."""
    counts = requests["rejected_reason"].dropna().value_counts()
    return {str(k): int(v) for k, v in counts.items()}


def rejected_text(finished: int, rejected: int, reasons: dict[str, int]) -> str:
    """'296 / 4 (context_limit 4)': finished and rejected requests, and the rejected per reason."""
    base = f"{count(finished)} / {count(rejected)}"
    if not rejected or not reasons:
        return base
    return f"{base} ({', '.join(f'{k} {count(v)}' for k, v in reasons.items())})"


@dataclass(frozen=True)
class TargetCheck:
    """One SLO target of one class against what the run achieved: `values` holds the p50, p90, p99
    (and the target's own percentile), `achieved` the value at the target's percentile."""

    metric: str  # ttft, tpot or e2e
    percentile: float
    limit_s: float
    values: dict[float, float | None]
    achieved: float | None

    @property
    def passed(self) -> bool:
        return self.achieved is not None and self.achieved <= self.limit_s

    @property
    def headroom(self) -> float | None:
        """1 - achieved / limit: 0.4 is 40% below the limit, negative over it."""
        return None if self.achieved is None else 1.0 - self.achieved / self.limit_s

    @property
    def label(self) -> str:
        return f"{self.metric.upper()} p{self.percentile:g} ≤ {seconds_ci(self.limit_s)}"


@dataclass(frozen=True)
class ClassVerdict:
    """A request class's SLO targets against the run, with its rejections (a rejected request never
    meets an SLO, so any rejection is a miss)."""

    name: str
    requests: int
    rejected: int
    targets: tuple[TargetCheck, ...]

    @property
    def passed(self) -> bool:
        return not self.rejected and all(t.passed for t in self.targets)


@dataclass(frozen=True)
class SloVerdict:
    """Every class's verdict, and the run's: it passes when every class does and it is not overloaded."""

    classes: tuple[ClassVerdict, ...]
    overloaded: bool
    window: str  # which requests the percentiles measure

    @property
    def passed(self) -> bool:
        return not self.overloaded and all(c.passed for c in self.classes)


PERCENTILES = (50.0, 90.0, 99.0)
METRICS = ("ttft", "tpot", "e2e")


def slo_verdict(
    scenario, summary: Summary, classes: pd.DataFrame, requests: pd.DataFrame | None = None
) -> SloVerdict | None:
    """The run's SLO targets (each class's own `slo`, else the scenario's) against the latencies it
    achieved, per class; None when no class has a target. With the request table the percentiles are
    exact, over the requests the summary measures (its steady window), at any target percentile; a
    streamed run has only the per-class p50, p90 and p99 of every request (`classes`)."""
    measured = None
    if requests is not None and len(requests):
        measured = _measured(requests, summary)
    found = []
    rows = {str(r["class"]): r for r in classes.to_dict("records")} if len(classes) else {}
    for c in scenario.workload.classes:
        slo = c.slo or scenario.slo
        if slo is None:
            continue
        row = rows.get(c.name, {})
        targets = []
        for metric in METRICS:
            limit = getattr(slo, f"{metric}_s")
            if limit is None:
                continue
            wanted = sorted({*PERCENTILES, float(slo.percentile)})
            if measured is not None:
                picked = measured[measured["class"] == c.name][f"{metric}_s"].to_numpy(dtype=float)
                picked = picked[~np.isnan(picked)]
                values = {q: float(np.percentile(picked, q)) if len(picked) else None for q in wanted}
            else:
                values = {q: _float(row.get(f"{metric}_p{q:g}_s")) for q in wanted}
            q = float(slo.percentile)
            targets.append(TargetCheck(metric, q, limit, values, values[q]))
        found.append(
            ClassVerdict(c.name, int(row.get("requests", 0)), int(row.get("rejected", 0)), tuple(targets))
        )
    if not found:
        return None
    window = (
        "over the measured (steady) window of requests"
        if measured is not None
        else "over every request (a streamed run keeps p50, p90 and p99 per class)"
    )
    return SloVerdict(tuple(found), bool(summary.overloaded), window)


def _measured(requests: pd.DataFrame, s: Summary) -> pd.DataFrame:
    """The finished requests the summary's latencies measure: arrived from the steady window's start
    on, less the drained tail (`sim.engine.steady.window`)."""
    arrival = requests["arrival_s"].to_numpy()
    keep = np.ones(len(requests), dtype=bool)
    if s.steady_start_s is not None:
        keep &= arrival >= s.steady_start_s
    drain = int(s.drain_requests_dropped or 0)
    if drain:
        order = np.argsort(arrival, kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        keep &= rank < len(requests) - drain
    picked = requests[keep]
    return picked[picked["finish_s"].notna()]


def _float(v) -> float | None:
    return None if is_missing(v) else float(v)
