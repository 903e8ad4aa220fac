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
"""Rates tried, at most, before giving up on finding a bracket, once the step has grown to 2."""
BISECT_STEPS = 6
"""Geometric bisections of a factor-2 bracket: it narrows to 2 ** (1 / 64), about 1.1%."""
RESOLUTION = 2 ** (1 / 2**BISECT_STEPS)
"""The factor between the highest rate that met the limits and the lowest that did not, at which a
search stops."""
NEAR_STEP = 2 ** (1 / 16)
"""The first step of a search started near the edge (`highest_rate`'s `step`): a rate found a few
percent away (a fit trying knobs close to the last ones) is bracketed in two runs, and the bracket
bisected twice."""


def highest_rate(meets: Callable[[float], bool], start: float, step: float = 2.0) -> float | None:
    """The highest rate r with `meets(r)`, to within a factor `RESOLUTION`, assuming that meeting the
    limits only gets harder as the rate grows. From `start`, multiply by `step` while the limits
    are met or divide while they are not, the step squaring after each rate tried up to a factor 2,
    until one rate that meets them and one that does not are known, then bisect geometrically
    between the two. With `step` 2 (a start with no idea of the edge) that is doubling or halving
    and six bisections. None when no rate tried meets them, down to start / 2 ** (BRACKET_STEPS - 1)
    or below; the highest rate tried when all of them do, up to start x 2 ** (BRACKET_STEPS - 1) or
    above."""
    if not start > 0:
        raise ValueError(f"start rate must be positive, got {start}")
    if not 1 < step <= 2:
        raise ValueError(f"step must be in (1, 2], got {step}")
    good = bad = None
    rate = start
    squarings = math.ceil(math.log2(1 / math.log2(step)) - 1e-9)  # before the step reaches 2
    for _ in range(BRACKET_STEPS + squarings):
        if meets(rate):
            good = rate
            if bad is not None:
                break
            rate *= step
        else:
            bad = rate
            if good is not None:
                break
            rate /= step
        step = min(step * step, 2.0)
    if good is None or bad is None:
        return good
    while bad / good > RESOLUTION * (1 + 1e-9):
        mid = math.sqrt(good * bad)
        if meets(mid):
            good = mid
        else:
            bad = mid
    return good
