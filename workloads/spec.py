"""A workload: an arrival process and one or more request classes mixed by weight.

`generate()` turns it into a `Requests` table, drawing every random number from the generator it is
given (the scenario's seed), so the same seed gives the same requests.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from pydantic import Field, model_validator

from hardware.spec import Seconds
from workloads.arrivals import Arrivals, Poisson, arrival_times
from workloads.lengths import Frozen, Length, sample_lengths
from workloads.requests import Requests


class Slo(Frozen):
    """Latency targets at a percentile; a request 'meets the SLO' when all set thresholds hold."""

    ttft_s: Seconds | None = Field(default=None, gt=0)
    tpot_s: Seconds | None = Field(default=None, gt=0)
    e2e_s: Seconds | None = Field(default=None, gt=0)
    percentile: float = Field(default=99.0, gt=0, le=100)


class RequestClass(Frozen):
    name: str = "default"
    weight: float = Field(default=1.0, gt=0)
    prompt_tokens: Length
    output_tokens: Length
    slo: Slo | None = None


class Workload(Frozen):
    arrivals: Arrivals = Poisson(rate_per_s=1.0)
    classes: tuple[RequestClass, ...] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _single_class_shorthand(cls, data: Any) -> Any:
        """`prompt_tokens`/`output_tokens` at the top level mean one class named 'default'."""
        if isinstance(data, dict) and ("prompt_tokens" in data or "output_tokens" in data):
            data = dict(data)
            if "classes" in data:
                raise ValueError("give either classes or prompt_tokens/output_tokens, not both")
            data["classes"] = [{"prompt_tokens": data.pop("prompt_tokens", None),
                                "output_tokens": data.pop("output_tokens", None)}]
        return data

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise ValueError(f"classes: names must be unique, got {names}")
        return self


def generate(workload: Workload, rng: np.random.Generator, requests: int | None = None,
             duration_s: float | None = None) -> Requests:
    """Draw requests until `requests` of them, or until arrivals pass `duration_s` (whichever is set)."""
    if requests is None and duration_s is None:
        raise ValueError("stop: give requests or duration_s")
    if requests is not None:
        arrival = arrival_times(workload.arrivals, rng, requests)
    else:
        chunks, t_last, n = [], 0.0, 1024
        while t_last <= duration_s:
            chunk = arrival_times(workload.arrivals, rng, n) + t_last
            chunks.append(chunk)
            t_last = chunk[-1]
            if chunk[-1] == chunk[0] == 0.0:
                raise ValueError("stop.duration_s needs an arrival process that advances in time (not burst)")
            n *= 2
        arrival = np.concatenate(chunks)
        arrival = arrival[arrival <= duration_s]
    n = len(arrival)
    weights = np.array([c.weight for c in workload.classes])
    klass = rng.choice(len(weights), size=n, p=weights / weights.sum()).astype(np.int32)
    prompt, output = np.empty(n, np.int64), np.empty(n, np.int64)
    for i, c in enumerate(workload.classes):
        rows = np.flatnonzero(klass == i)
        prompt[rows] = sample_lengths(c.prompt_tokens, rng, len(rows))
        output[rows] = sample_lengths(c.output_tokens, rng, len(rows))
    return Requests(arrival, prompt, output, klass, tuple(c.name for c in workload.classes))
