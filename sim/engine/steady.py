"""Which requests a run's summary measures, and how sure it is of its numbers.

A run starts empty and, once arrivals stop, drains; neither is the steady state a capacity plan is
about. For stationary arrivals (Poisson, gamma, closed-loop users) the summary measures only the
requests of the steady window:

- the warm-up ends where MSER-5 on the number of requests in the system says the fill-up is over
  (`sim.stats.warmup_samples`); requests arriving before it are dropped;
- the drain is the tail of requests still in the system when the last request arrives: they finish
  in a system that receives no more work. That many of the last arrivals are dropped;
- a run whose load still drifts after its warm-up (`sim.stats.trending`: still filling, falling
  behind, or too short for the slow swings of a busy queue) is flagged `steady_state: false`: its
  numbers depend on how long it ran, so simulate more requests.

Time-varying arrivals (bursts, diurnal curves, traces) have no steady state to find; their summary
measures every request, as before. Either way every latency percentile and mean, the throughputs
and the SLO attainment get a confidence interval from batch means over the measured requests in
arrival order (`sim.stats`), and an open-loop run whose arrivals outrun its service is flagged
`overloaded` with the rate it does sustain.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from sim import stats

LATENCIES = ("ttft", "tpot", "e2e")
PERCENTILES = (50, 90, 99)


def ci_names(field: str) -> tuple[str, str]:
    """The summary's interval fields for `field`, the unit kept last: ttft_p99_s -> ttft_p99_ci_lo_s."""
    for unit in ("_s", "_rps"):
        if field.endswith(unit):
            stem = field.removesuffix(unit)
            return f"{stem}_ci_lo{unit}", f"{stem}_ci_hi{unit}"
    return f"{field}_ci_lo", f"{field}_ci_hi"


LATENCY_FIELDS: tuple[str, ...] = tuple(f"{m}_p{q}_s" for m in LATENCIES for q in PERCENTILES)
INTERVAL_FIELDS: tuple[str, ...] = (
    *LATENCY_FIELDS,
    "mean_queue_s",
    "throughput_rps",
    "goodput_rps",
    "slo_attainment",
)


@dataclass(frozen=True)
class Window:
    """The measured requests (`measured`, a mask over the request table) and the time span their
    rates are taken over; how many were dropped at each end, and whether the measured span looks
    steady (no drift in the number of requests in the system)."""

    start_s: float
    end_s: float
    measured: np.ndarray
    warmup_dropped: int = 0
    drain_dropped: int = 0
    steady: bool = True


def window(requests: pd.DataFrame, timeseries: pd.DataFrame, stationary: bool) -> Window:
    """The steady window of a run (all of it for time-varying arrivals or a very short run), and
    whether the load in it still drifts."""
    arrival = requests["arrival_s"].to_numpy()
    finish = requests["finish_s"].to_numpy()
    everything = Window(
        float(np.nanmin(arrival)) if len(arrival) else 0.0,
        float(np.nanmax(finish)) if np.isfinite(finish).any() else 0.0,
        np.ones(len(requests), dtype=bool),
    )
    if not stationary or len(requests) < stats.MIN_SAMPLES or len(timeseries) == 0:
        return everything
    first, last = float(arrival.min()), float(arrival.max())
    times, in_system = timeseries["time_s"].to_numpy(), timeseries["in_system"].to_numpy()
    load = stats.sample_steps(times, in_system, first, last)
    warm = stats.warmup_samples(load)
    steady = not stats.trending(load[warm:])
    start = float(np.linspace(first, last, stats.GRID)[warm])
    order = np.argsort(arrival, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    drain = int(load[-1])  # requests in the system at the last arrival
    kept_by_rank = rank < len(requests) - drain
    measured = (arrival >= start) & kept_by_rank
    if measured.sum() < stats.MIN_SAMPLES:
        return replace(everything, steady=False)
    end = float(arrival[measured].max())
    dropped = int((arrival < start).sum()), int((~kept_by_rank).sum())
    return Window(start, end, measured, *dropped, steady=steady)


def load(requests: pd.DataFrame, open_loop: bool) -> stats.Load:
    """Whether an open-loop run's arrivals outran its service (never for closed loops or bursts)."""
    if not open_loop:
        return stats.Load(False, float("nan"), float("nan"))
    return stats.overload(requests["arrival_s"].to_numpy(), requests["finish_s"].to_numpy())


def intervals(requests: pd.DataFrame, win: Window, meets: pd.Series, level: float) -> dict[str, float]:
    """Point estimates and confidence bounds of the measured requests, keyed by summary field and
    its `ci_names`; None for what cannot be estimated."""
    # row positions of the measured requests in arrival order; columns are read one at a time, so
    # a million-request table is never copied whole
    rows = np.flatnonzero(win.measured)
    rows = rows[np.argsort(requests["arrival_s"].to_numpy()[rows], kind="stable")]
    finish = requests["finish_s"].to_numpy()
    done = rows[~np.isnan(finish[rows])]

    def column(name: str) -> np.ndarray:
        return requests[name].to_numpy(dtype=np.float64)[done]

    out: dict[str, stats.Interval] = {}
    for m in LATENCIES:
        values = column(f"{m}_s")
        for q in PERCENTILES:
            out[f"{m}_p{q}_s"] = stats.quantile_ci(values, q, level).within(0.0)
    out["mean_queue_s"] = stats.mean_ci(column("scheduled_s") - column("arrival_s"), level).within(0.0)
    met = meets.to_numpy(dtype=bool)
    out["throughput_rps"] = stats.rate_ci(finish, win.start_s, win.end_s, level).within(0.0)
    out["goodput_rps"] = stats.rate_ci(finish[met], win.start_s, win.end_s, level).within(0.0)
    out["slo_attainment"] = stats.mean_ci(met[rows].astype(np.float64), level).within(0.0, 1.0)
    fields: dict[str, float] = {}
    for name, ci in out.items():
        lo, hi = ci_names(name)
        fields[name], fields[lo], fields[hi] = (finite_or_none(v) for v in (ci.value, ci.lo, ci.hi))
    return fields


def finite_or_none(v: float) -> float | None:
    """`v` as a float, or None for NaN and infinities (JSON has neither)."""
    return float(v) if np.isfinite(v) else None
