"""When requests arrive: open-loop arrival processes."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from workloads.lengths import Frozen


class Poisson(Frozen):
    """Independent arrivals at `rate_per_s`: exponential gaps, coefficient of variation 1."""

    kind: Literal["poisson"] = "poisson"
    rate_per_s: float = Field(gt=0)


class Burst(Frozen):
    """Every request at t=0, as offline throughput benchmarks run."""

    kind: Literal["burst"] = "burst"


Arrivals = Annotated[Poisson | Burst, Field(discriminator="kind")]


def arrival_times(spec: Poisson | Burst, rng: np.random.Generator, n: int) -> np.ndarray:
    """The first n arrival times (seconds from 0), non-decreasing."""
    if isinstance(spec, Burst):
        return np.zeros(n)
    return np.cumsum(rng.exponential(1.0 / spec.rate_per_s, n))


def expected_count(spec: Poisson | Burst, duration_s: float) -> float:
    return spec.rate_per_s * duration_s if isinstance(spec, Poisson) else float("inf")
