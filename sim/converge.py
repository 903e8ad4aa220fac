"""Run-length control: simulate more requests until the numbers asked for are known well enough.

A scenario with `stop: {until: converged}` names summary fields (`metrics`) and a target
(`relative_ci`): the half-width of each field's confidence interval over its value. The run starts
at `stop.requests` and doubles them, regenerating the request stream at each count from the same
seed, until every field is within the target and the load is steady (`steady_state`: a drifting run's
intervals describe its length, not the system), or `max_requests` is reached. The last run is the
answer either way; its summary says whether it converged (`converged`) and with how many requests
(`converged_requests`), and `sim_wall_s` counts every attempt. An overloaded run stops at once: its
percentiles grow with the run instead of settling, so more requests cannot make them converge.

This module only decides how long to run; `sim.api.run` hands it the one-run function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol, TypeVar

from sim.engine.steady import ci_names
from sim.engine.summary import Summary
from sim.scenario import Stop


class _Run(Protocol):
    @property
    def summary(self) -> Summary: ...


R = TypeVar("R", bound=_Run)


def relative_half_width(summary: Summary, field: str) -> float:
    """Half the width of `field`'s confidence interval over its value; inf when it has none (a
    sample too small for the interval, or a zero or missing estimate)."""
    lo_name, hi_name = ci_names(field)
    value, lo, hi = summary.metric(field), summary.metric(lo_name), summary.metric(hi_name)
    if value is None or lo is None or hi is None or value == 0:
        return math.inf
    return (hi - lo) / 2.0 / abs(value)


def unconverged(summary: Summary, stop: Stop) -> dict[str, float]:
    """The fields of `stop.metrics` whose relative half-width is over `stop.relative_ci`, with it."""
    widths = {f: relative_half_width(summary, f) for f in stop.metrics}
    return {f: w for f, w in widths.items() if not w <= stop.relative_ci}


def is_converged(summary: Summary, stop: Stop) -> bool:
    """Whether a run's summary meets its convergence target: steady, and every field narrow enough."""
    return summary.steady_state and not summary.overloaded and not unconverged(summary, stop)


def request_counts(start: int, cap: int) -> list[int]:
    """The request counts to try: `start`, doubled each time, the last one `cap`."""
    counts = [start]
    while counts[-1] < cap:
        counts.append(min(2 * counts[-1], cap))
    return counts


def until_converged(stop: Stop, simulate: Callable[[int], R]) -> R:
    """Run `simulate(n)` for each of `request_counts` until the result converges, is overloaded, or
    the counts run out; the last result, its summary marked with the outcome."""
    wall = 0.0
    for n in request_counts(stop.requests, stop.max_requests):
        result = simulate(n)
        wall += result.summary.sim_wall_s
        if result.summary.overloaded or is_converged(result.summary, stop):
            break
    summary = replace(
        result.summary,
        sim_wall_s=wall,
        converged=is_converged(result.summary, stop),
        converged_requests=n,
    )
    return replace(result, summary=summary)
