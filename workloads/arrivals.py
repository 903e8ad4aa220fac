"""When requests arrive: arrival processes.

Picture the door of a shop. Poisson customers come one at a time and independently; Gamma customers
come in clumps (a coefficient of variation above 1) or almost on a timetable (below 1); diurnal
customers follow the clock, many at noon and few at night. A closed loop is a fixed crowd of users
who each wait for an answer and think before asking again, so its arrivals depend on how fast the
shop serves them: only the engine can draw those.

Every process returns arrival times in seconds from 0, non-decreasing, drawn from the generator it
is given.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Literal, Self

import numpy as np
from pydantic import Field, model_validator

from hardware.base import Frozen
from hardware.spec import Seconds

FIRST_CHUNK = 1024


class Poisson(Frozen):
    """Independent arrivals at `rate_per_s`: exponential gaps, coefficient of variation 1."""

    kind: Literal["poisson"] = "poisson"
    rate_per_s: float = Field(gt=0)


class Gamma(Frozen):
    """Gamma-distributed gaps with mean `1/rate_per_s` and coefficient of variation `cv` (std/mean).

    `cv > 1` is bursty traffic, `cv = 1` is Poisson, `cv < 1` is more regular than Poisson."""

    kind: Literal["gamma"] = "gamma"
    rate_per_s: float = Field(gt=0)
    cv: float = Field(gt=0)


class Diurnal(Frozen):
    """A rate that follows the clock, repeating every period; a Poisson process with that rate.

    Either a sinusoid, `rate(t) = mean_rate_per_s * (1 + amplitude * cos(2π (t - peak_s) / period_s))`,
    or a table: `rates_per_s[i]` requests/s during bucket i of `bucket_s` seconds, the table repeating
    after `len(rates_per_s) * bucket_s` seconds. Drawn by thinning a Poisson process at the peak rate."""

    kind: Literal["diurnal"] = "diurnal"
    mean_rate_per_s: float | None = Field(default=None, gt=0)
    amplitude: float = Field(default=0.5, ge=0, le=1)
    period_s: Seconds = Field(default=86_400.0, gt=0)
    peak_s: Seconds = Field(default=0.0, ge=0)
    rates_per_s: tuple[Annotated[float, Field(ge=0)], ...] | None = None
    bucket_s: Seconds | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_shape(self) -> Self:
        sinusoid = {"mean_rate_per_s", "amplitude", "period_s", "peak_s"} & self.model_fields_set
        if self.rates_per_s is None:
            if self.mean_rate_per_s is None:
                raise ValueError("give mean_rate_per_s (a sinusoid) or rates_per_s + bucket_s (a table)")
            if self.bucket_s is not None:
                raise ValueError("bucket_s belongs to a rates_per_s table, not to a sinusoid")
            return self
        if sinusoid:
            raise ValueError(f"rates_per_s is a table; drop the sinusoid fields {sorted(sinusoid)}")
        if self.bucket_s is None:
            raise ValueError("rates_per_s needs bucket_s: the seconds each rate holds for")
        if not any(r > 0 for r in self.rates_per_s):
            raise ValueError("rates_per_s needs at least one positive rate")
        return self


class ClosedLoop(Frozen):
    """`users` users, each sending a request, waiting for its answer, then thinking for an
    exponential time of mean `think_time_s` before the next. Arrivals depend on response times, so
    the engine drives this process; `generate()` cannot draw it in advance."""

    kind: Literal["closed_loop"] = "closed_loop"
    users: int = Field(ge=1)
    think_time_s: Seconds = Field(ge=0)


class Burst(Frozen):
    """Every request at t=0, as offline throughput benchmarks run."""

    kind: Literal["burst"] = "burst"


Process = Poisson | Gamma | Diurnal | ClosedLoop | Burst
Arrivals = Annotated[Process, Field(discriminator="kind")]


class ArrivalError(ValueError):
    """An arrival process that cannot produce the asked-for arrivals."""


def arrival_times(spec: Process, rng: np.random.Generator, n: int | None = None,
                  duration_s: float | None = None, start_s: float = 0.0) -> np.ndarray:
    """The first `n` arrival times after `start_s`, or all arrivals in (`start_s`, `duration_s`]
    (seconds), non-decreasing. Drawing a long run piece by piece, each piece from where the last
    one's final arrival left off, gives the same process: the gaps are independent of the past
    (renewal processes) and a diurnal rate reads the clock, not the piece."""
    if (n is None) == (duration_s is None):
        raise ArrivalError("give n or duration_s")
    if isinstance(spec, ClosedLoop):
        raise ArrivalError("arrivals.kind closed_loop: arrivals depend on when answers finish, so the "
                           "engine drives them; requests cannot be drawn in advance")
    if isinstance(spec, Burst):
        if n is None:
            raise ArrivalError("stop.duration_s needs an arrival process that advances in time (not burst)")
        return np.full(n, start_s)
    if isinstance(spec, Diurnal):
        return _thinned(spec, rng, n, duration_s, start_s)
    if isinstance(spec, Gamma):
        shape = 1.0 / spec.cv**2
        scale = 1.0 / (spec.rate_per_s * shape)
        return _renewal(lambda k: rng.gamma(shape, scale, k), n, duration_s, start_s)
    return _renewal(lambda k: rng.exponential(1.0 / spec.rate_per_s, k), n, duration_s, start_s)


def mean_rate_per_s(spec: Poisson | Gamma | Diurnal) -> float:
    """Long-run requests per second of an open-loop process."""
    if isinstance(spec, Diurnal) and spec.rates_per_s is not None:
        return float(np.mean(spec.rates_per_s))
    return spec.mean_rate_per_s if isinstance(spec, Diurnal) else spec.rate_per_s


def rate_at(spec: Diurnal, t_s: np.ndarray) -> np.ndarray:
    """The instantaneous rate (requests/s) of a diurnal process at times `t_s` (seconds)."""
    t_s = np.asarray(t_s, dtype=np.float64)
    if spec.rates_per_s is None:
        phase = 2 * np.pi * (t_s - spec.peak_s) / spec.period_s
        return spec.mean_rate_per_s * (1 + spec.amplitude * np.cos(phase))
    rates = np.asarray(spec.rates_per_s)
    return rates[(t_s // spec.bucket_s).astype(np.int64) % len(rates)]


def _renewal(gaps: Callable[[int], np.ndarray], n: int | None, duration_s: float | None,
             start_s: float) -> np.ndarray:
    """Cumulative sums of independent gaps from `start_s`: `n` of them, or as many as fit before
    `duration_s`."""
    if n is not None:
        return np.cumsum(gaps(n)) + start_s
    chunks, t_last, k = [], start_s, FIRST_CHUNK
    while t_last <= duration_s:
        chunk = np.cumsum(gaps(k)) + t_last
        chunks.append(chunk)
        t_last = chunk[-1]
        k *= 2
    times = np.concatenate(chunks)
    return times[times <= duration_s]


def _thinned(spec: Diurnal, rng: np.random.Generator, n: int | None, duration_s: float | None,
             start_s: float) -> np.ndarray:
    """Lewis-Shedler thinning: candidates at the peak rate, each kept with probability rate(t)/peak."""
    peak = spec.mean_rate_per_s * (1 + spec.amplitude) if spec.rates_per_s is None else max(spec.rates_per_s)
    kept, count, t_last = [], 0, start_s
    k = FIRST_CHUNK if n is None else max(FIRST_CHUNK, math.ceil(2 * n * peak / mean_rate_per_s(spec)))
    while (n is not None and count < n) or (duration_s is not None and t_last <= duration_s):
        candidates = np.cumsum(rng.exponential(1.0 / peak, k)) + t_last
        chosen = candidates[rng.random(k) * peak < rate_at(spec, candidates)]
        kept.append(chosen)
        count += len(chosen)
        t_last = candidates[-1]
        k *= 2
    times = np.concatenate(kept)
    return times[:n] if n is not None else times[times <= duration_s]
