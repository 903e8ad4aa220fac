"""The highest request rate a system sustains within latency limits, found the way an MLPerf Server
submitter finds it: raise the rate while a run meets its limits, then narrow down between the last
rate that met them and the first that did not.

An MLPerf Server result is that rate: the submitter raises the scheduled queries per second until the
99th percentile of TTFT or TPOT crosses its limit. Its latencies are read at that edge, where a
queue's delay is steepest in the rate, so simulating the submitter's rate on a device a few percent
faster or slower than the real one gives latencies several times off either way. Simulating the
search instead compares like with like: the rate each system holds within the limits, and its
latencies there.
"""

from __future__ import annotations

import math
from collections.abc import Callable

BRACKET_STEPS = 8
"""Doublings or halvings of the rate tried, at most, before giving up on finding a bracket."""
BISECT_STEPS = 6
"""Geometric bisections of the bracket: a factor-2 bracket narrows to 2 ** (1 / 64), about 1.1%."""


def highest_rate(meets: Callable[[float], bool], start: float) -> float | None:
    """The highest rate r with `meets(r)`, to within a factor 2 ** (1 / 2 ** BISECT_STEPS) when the
    bracket is a factor 2, assuming that meeting the limits only gets harder as the rate grows.
    From `start`, double while the limits are met or halve while they are not, until one rate that
    meets them and one that does not are known, then bisect geometrically between the two. None when
    no rate down to start / 2 ** (BRACKET_STEPS - 1) meets them; the highest rate tried when every
    rate up to start x 2 ** (BRACKET_STEPS - 1) does."""
    if not start > 0:
        raise ValueError(f"start rate must be positive, got {start}")
    good = bad = None
    rate = start
    for _ in range(BRACKET_STEPS):
        if meets(rate):
            good = rate
            if bad is not None:
                break
            rate *= 2
        else:
            bad = rate
            if good is not None:
                break
            rate /= 2
    if good is None or bad is None:
        return good
    for _ in range(BISECT_STEPS):
        mid = math.sqrt(good * bad)
        if meets(mid):
            good = mid
        else:
            bad = mid
    return good
