"""Whether one run meets latency SLOs, judged on its confidence intervals, not its point estimates.

A p99 from a few thousand simulated requests is itself uncertain; a planner that buys hardware on it
flips its answer with the seed and the sample size. Each target is therefore judged on the summary's
interval (`sim.engine.steady`):

- **meets**: the pessimistic edge (`*_ci_hi_s`) is within the limit, for every target;
- **misses**: the optimistic edge (`*_ci_lo_s`) is over a limit, or requests were rejected, nothing
  finished, or the run is overloaded;
- **borderline**: anything else: an interval straddling a limit, a run too short to have an interval,
  or one whose load never settled (`steady_state: false`). More simulated requests narrow the
  interval, so a planner simulates a borderline configuration again with more (`next_requests`).
  One still borderline at `MAX_REQUESTS` is within the simulation's resolution of a limit (a p99
  at 64,000 requests is known to about 2%): it is decided by its point estimates
  (`meets_at_cap`) and stays marked borderline, so the answer does not flip with the seed and the
  user sees how close it is.

With `margin`, a target is judged at the pessimistic edge of the model's own uncertainty: its
latency (and that interval) times the ratio of the summary's `*_hi_s` (the serving stack's 80%
band on held-out measurements, `sim.api.model_intervals`) to its point estimate, so a configuration
is bought for the slow end of how far this stack's predictions have been off. A stack without bands
(`none`, `roofline`) leaves the latency as simulated.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

from pydantic import Field

from hardware.base import Frozen
from hardware.units import parse_seconds
from sim.engine.steady import ci_names
from sim.engine.summary import Summary

DEFAULT_REQUESTS = 2000
"""Requests a plan simulates per configuration at first, in the CLI and the dashboard alike."""
MAX_REQUESTS = 64_000
"""The most requests a borderline configuration is simulated with before it counts as a miss."""
_SLO = re.compile(r"^(ttft|tpot|e2e)_p(50|90|99)$")


class PlanError(ValueError):
    """A planning request that cannot be answered; the message names the input at fault."""


class Verdict(StrEnum):
    meets = "meets"
    borderline = "borderline"
    misses = "misses"


class SloTarget(Frozen):
    """`metric` at `percentile` must not exceed `limit_s` seconds, e.g. ttft_p99=2s."""

    metric: Literal["ttft", "tpot", "e2e"]
    percentile: Literal[50, 90, 99]
    limit_s: float = Field(gt=0)
    margin: bool = False

    @property
    def key(self) -> str:
        """The summary field this target reads, e.g. `ttft_p99_s`."""
        return f"{self.metric}_p{self.percentile}_s"

    @property
    def name(self) -> str:
        return f"{self.metric}_p{self.percentile}"

    def _scale(self, summary: Summary) -> float:
        """What the latency is multiplied by before it is judged: the model band's pessimistic edge
        over the point estimate with `margin`, else 1."""
        point, edge = summary.metric(self.key), summary.metric(self.key.removesuffix("_s") + "_hi_s")
        return edge / point if self.margin and edge is not None and point else 1.0

    def _read(self, summary: Summary, name: str) -> float | None:
        value = summary.metric(name)
        return None if value is None else value * self._scale(summary)

    def headroom(self, summary: Summary) -> float | None:
        """1 - observed / limit: positive when met (0.4 = 40% below the limit), None when unmeasured."""
        observed = self._read(summary, self.key)
        return None if observed is None else 1.0 - observed / self.limit_s

    def pessimistic_headroom(self, summary: Summary) -> float | None:
        """`headroom` at the interval's pessimistic edge; None without an interval."""
        edge = self._read(summary, ci_names(self.key)[1])
        return None if edge is None else 1.0 - edge / self.limit_s

    def verdict(self, summary: Summary) -> Verdict:
        lo, hi = (self._read(summary, name) for name in ci_names(self.key))
        point = summary.metric(self.key)
        if point is None:
            return Verdict.misses
        if lo is None or hi is None:
            return Verdict.borderline
        if lo > self.limit_s:
            return Verdict.misses
        return Verdict.meets if hi <= self.limit_s else Verdict.borderline


def verdict(summary: Summary, slos: tuple[SloTarget, ...]) -> Verdict:
    """The run's verdict against every target (see the module docstring)."""
    if summary.requests_rejected or not summary.requests_finished or summary.overloaded:
        return Verdict.misses
    each = {s.verdict(summary) for s in slos}
    if Verdict.misses in each:
        return Verdict.misses
    if Verdict.borderline in each or not summary.steady_state:
        return Verdict.borderline
    return Verdict.meets


def meets_at_cap(summary: Summary, slos: tuple[SloTarget, ...]) -> bool:
    """Whether a run still borderline at `MAX_REQUESTS` meets every target at its point estimate."""
    return all((h := s.headroom(summary)) is not None and h >= 0 for s in slos)


def next_requests(requests: int) -> int | None:
    """How many requests to simulate a borderline configuration with next; None at the cap."""
    return None if requests >= MAX_REQUESTS else min(2 * requests, MAX_REQUESTS)


def parse_slo(text: str, margin: bool = False) -> SloTarget:
    """`ttft_p99=2s` -> SloTarget(ttft, 99, 2.0); metrics ttft, tpot, e2e at p50, p90 or p99; judged
    at the model band's pessimistic edge with `margin`."""
    key, sep, value = text.partition("=")
    match = _SLO.match(key.strip())
    if not sep or not match:
        raise PlanError(
            f"--slo {text!r}: expected METRIC_pNN=DURATION with METRIC ttft, tpot or e2e and "
            "NN 50, 90 or 99, e.g. ttft_p99=2s"
        )
    try:
        limit = parse_seconds(_number(value.strip()))
    except ValueError as exc:
        raise PlanError(f"--slo {text!r}: {exc}") from None
    if limit <= 0:
        raise PlanError(f"--slo {text!r}: the limit must be positive")
    return SloTarget(metric=match.group(1), percentile=int(match.group(2)), limit_s=limit, margin=margin)


def _number(text: str) -> str | float:
    try:
        return float(text)
    except ValueError:
        return text
