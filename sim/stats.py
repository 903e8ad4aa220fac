"""Output analysis of one run: where its steady state starts and ends, and how sure its numbers are.

A simulation that starts empty reports, at first, a system that is lighter loaded than the one it
models; one that stops sending requests ends with a drain that is lighter still. Its per-request
latencies are also correlated (a request that waits behind a long queue is followed by others that
do), so the textbook standard error of n independent samples is far too small. The methods here are
the standard ones of steady-state simulation output analysis (Law, "Simulation Modeling and
Analysis", 5th ed., ch. 9):

- `mser5`: the MSER-5 truncation rule (White, Cobb and Spratt 2000; Franklin and White 2008). Average
  the series in batches of 5, and drop the d leading batches that minimise the standard error of the
  mean of what is left, d at most half the batches. `warmup_samples` applies it to the number of
  requests in the system on an even time grid and keeps the truncation only when the dropped head
  is lighter than the rest (a fill-up, never an excursion): a run started empty loses its fill-up
  (at 90% load on the chat example, about 5% of the arrival window), a stationary series next to
  nothing (0.1% on average over independent and autocorrelated test series, tests/test_stats.py).
- `trending`: a load series whose last third still differs from its middle third has no steady
  state yet (still filling, or overloaded); its numbers depend on the run's length.
- `mean_ci`: non-overlapping batch means over `BATCHES` contiguous batches, a Student-t interval on
  their spread (Law 9.5.3). Contiguous batches of a long run are nearly independent even when the
  requests in them are not.
- `quantile_ci`: the sectioning interval for a quantile (Asmussen and Glynn, "Stochastic
  Simulation", III.5a): the point estimate from the whole sample, the spread from the same quantile
  of each batch; given only when each batch has enough values in the tail (`TAIL_SAMPLES`).
- `rate_ci`: events per second over equal time windows, batch means again.
- `overload`: offered load above what the system serves. In the second half of the arrivals, a
  stable system completes about as many requests as arrive (the backlog changes by its own
  fluctuation, O(sqrt(arrivals))); an overloaded one falls behind in proportion to the arrivals.

Every function is pure numpy on the series in arrival order, and returns NaN where the sample is too
short to say anything (fewer than `MIN_SAMPLES` values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GRID = 2000
"""Samples of the number in system for warm-up detection: 400 MSER-5 batches."""
BATCHES = 20
"""Batches for batch-means intervals: 10-30 is the usual advice (Law 9.5.3; Schmeiser 1982)."""
MIN_SAMPLES = 2 * BATCHES
TAIL_SAMPLES = 10
"""Values beyond a percentile each batch must hold for the percentile's interval to be given."""
Z_TREND = 3.0
"""Standard errors between the last and the middle third of a load series that mean it still drifts."""
TREND_SHARE = 0.25
OVERLOAD_SIGMAS = 5.0
"""How many Poisson standard deviations the backlog must grow by before a run is called overloaded."""
OVERLOAD_SHARE = 0.05
"""...and by at least this share of the arrivals (so huge runs need a real, not a tiny, imbalance)."""

# Student-t 97.5% and 95% quantiles for BATCHES - 1 = 19 degrees of freedom (any statistics table).
_T_QUANTILES = {0.95: 2.093024054, 0.90: 1.729132812}


def t_quantile(level: float) -> float:
    """The two-sided Student-t critical value at `level` for BATCHES - 1 degrees of freedom."""
    try:
        return _T_QUANTILES[level]
    except KeyError:
        known = sorted(_T_QUANTILES)
        raise ValueError(f"confidence level {level} not tabulated; use one of {known}") from None


def _batches(x: np.ndarray, size: int) -> np.ndarray:
    """Means of consecutive batches of `size`, the leftover tail (under one batch) left out."""
    k = len(x) // size
    return x[: k * size].reshape(k, size).mean(axis=1)


def _mser_index(batch_means: np.ndarray) -> int:
    """The d in [0, len/2] minimising sum((y[d:] - mean)^2) / (len - d)^2 (the MSER statistic)."""
    y = batch_means
    m = np.arange(len(y), 0, -1, dtype=np.float64)  # values left after dropping d = 0, 1, ...
    s1 = np.cumsum(y[::-1])[::-1]
    s2 = np.cumsum((y * y)[::-1])[::-1]
    stat = (s2 - s1 * s1 / m) / (m * m)
    half = len(y) // 2
    return int(np.argmin(stat[: half + 1]))


def mser5(x: np.ndarray) -> int:
    """How many leading values of `x` are a transient by the MSER-5 rule: a multiple of 5, at most
    half the series, 0 when the series is too short to judge."""
    y = _batches(np.asarray(x, dtype=np.float64), 5)
    if len(y) < MIN_SAMPLES:
        return 0
    return 5 * _mser_index(y)


def sample_steps(time_s: np.ndarray, values: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
    """A step function (value `values[i]` from `time_s[i]` on, 0 before the first) at `GRID` even
    times over [start_s, end_s]."""
    grid = np.linspace(start_s, end_s, GRID)
    at = np.searchsorted(time_s, grid, side="right") - 1
    return np.where(at >= 0, np.asarray(values)[np.clip(at, 0, None)], 0).astype(np.float64)


def warmup_samples(samples: np.ndarray) -> int:
    """How many leading samples of a load series (requests in the system) are a fill-up: MSER-5's
    truncation, kept only when what it drops is lighter than what it keeps. A heavier head is an
    excursion of the steady state (or a run too short to have one), and dropping it would flatter
    the run."""
    d = mser5(samples)
    if d == 0 or samples[:d].mean() >= samples[d:].mean():
        return 0
    return d


def trending(samples: np.ndarray) -> bool:
    """Whether a load series still drifts at its end: the mean of its last third differs from that
    of its middle third by more than `Z_TREND` standard errors (batch means over each third) and by
    more than `TREND_SHARE` of it (a busy steady state wanders by a few tens of percent over a
    third of a run; batch means that short understate how much)."""
    third = len(samples) // 3
    if third < MIN_SAMPLES:
        return False
    middle, last = samples[third : 2 * third], samples[2 * third : 3 * third]
    errors = [_batches(x, len(x) // BATCHES).std(ddof=1) / math.sqrt(BATCHES) for x in (middle, last)]
    se = math.hypot(*errors)
    return abs(last.mean() - middle.mean()) > max(Z_TREND * se, TREND_SHARE * middle.mean(), 1e-12)


@dataclass(frozen=True)
class Interval:
    """A point estimate and its confidence interval; NaN bounds when the sample is too short."""

    value: float
    lo: float
    hi: float

    @property
    def relative_half_width(self) -> float:
        """Half the interval's width over the estimate (inf for a zero or missing estimate)."""
        if not np.isfinite(self.lo) or self.value == 0:
            return math.inf
        return (self.hi - self.lo) / 2.0 / abs(self.value)

    def within(self, low: float, high: float = math.inf) -> Interval:
        """The interval cut to the values the quantity can take (a share in [0, 1], a rate >= 0)."""
        return Interval(self.value, min(max(self.lo, low), high), min(max(self.hi, low), high))


NAN = float("nan")


def interval(point: float, batch_values: np.ndarray, level: float) -> Interval:
    """`point` with the Student-t interval of the spread of its batch values."""
    if len(batch_values) < 2:
        return Interval(point, NAN, NAN)
    half = t_quantile(level) * batch_values.std(ddof=1) / math.sqrt(len(batch_values))
    return Interval(point, point - half, point + half)


def _sections(x: np.ndarray) -> list[np.ndarray]:
    size = len(x) // BATCHES
    return [x[i * size : (i + 1) * size] for i in range(BATCHES)]


def mean_ci(x: np.ndarray, level: float = 0.95) -> Interval:
    """The mean of `x` (in arrival order) with its batch-means interval."""
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return Interval(NAN, NAN, NAN)
    if len(x) < MIN_SAMPLES:
        return Interval(float(x.mean()), NAN, NAN)
    return interval(float(x.mean()), np.array([s.mean() for s in _sections(x)]), level)


def quantile_ci(x: np.ndarray, q: float, level: float = 0.95) -> Interval:
    """The `q`th percentile of `x` (in arrival order) with its sectioning interval; no interval
    unless each batch holds `TAIL_SAMPLES` values beyond the percentile (a p99 needs 1,000 values
    a batch, 20,000 in all: fewer, and each batch's p99 is one of its few largest values, whose
    spread understates the uncertainty of the whole sample's)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return Interval(NAN, NAN, NAN)
    point = float(np.percentile(x, q))
    if len(x) < MIN_SAMPLES or len(x) // BATCHES * (100.0 - q) / 100.0 < TAIL_SAMPLES:
        return Interval(point, NAN, NAN)
    return interval(point, np.array([np.percentile(s, q) for s in _sections(x)]), level)


def quantile_min_samples(q: float) -> int:
    """The fewest values `quantile_ci` gives the `q`th percentile an interval for (20,000 for a p99),
    so a reader can be told how many requests to simulate."""
    per_batch = math.ceil(TAIL_SAMPLES * 100.0 / (100.0 - q) - 1e-9)
    return max(MIN_SAMPLES, per_batch * BATCHES)


def rate_ci(times_s: np.ndarray, start_s: float, end_s: float, level: float = 0.95) -> Interval:
    """Events per second in [start_s, end_s) with the batch-means interval over equal windows."""
    span = end_s - start_s
    if not span > 0:
        return Interval(NAN, NAN, NAN)
    t = np.asarray(times_s, dtype=np.float64)
    counts = np.histogram(t, bins=BATCHES, range=(start_s, end_s))[0].astype(np.float64)
    rates = counts / (span / BATCHES)
    point = float(counts.sum() / span)
    if counts.sum() < MIN_SAMPLES:
        return Interval(point, NAN, NAN)
    return interval(point, rates, level)


@dataclass(frozen=True)
class Load:
    """Whether arrivals outran service in the second half of the arrivals, and the rates seen."""

    overloaded: bool
    offered_rps: float
    sustainable_rps: float


def overload(arrival_s: np.ndarray, finish_s: np.ndarray) -> Load:
    """Compare arrivals and completions between the median and the last arrival."""
    arrival_s = np.sort(np.asarray(arrival_s, dtype=np.float64))
    n = len(arrival_s)
    if n < MIN_SAMPLES:
        return Load(False, NAN, NAN)
    start, end = arrival_s[n // 2], arrival_s[-1]
    span = end - start
    if not span > 0:
        return Load(False, NAN, NAN)
    finish = np.asarray(finish_s, dtype=np.float64)
    served = float(np.count_nonzero((finish >= start) & (finish <= end)))
    return load_verdict(float(n - n // 2), served, span)


def load_verdict(arrived: float, served: float, span: float) -> Load:
    """`overload`'s verdict from its counts: requests arrived and served over the `span` seconds
    from the median to the last arrival."""
    behind = arrived - served
    overloaded = behind > max(OVERLOAD_SIGMAS * math.sqrt(arrived), OVERLOAD_SHARE * arrived)
    return Load(bool(overloaded), arrived / span, served / span)
