"""Token-length distributions for prompts and outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

import numpy as np
from pydantic import Field, model_validator

from hardware.base import Frozen

MAX_TOKENS = 1_000_000_000
"""The longest length any field or trace row may give: a thousand times the longest context a
model offers, and small enough that sums of many such lengths stay inside int64."""
Tokens = Annotated[int, Field(ge=1, le=MAX_TOKENS)]


class Fixed(Frozen):
    kind: Literal["fixed"] = "fixed"
    tokens: Tokens


class Uniform(Frozen):
    kind: Literal["uniform"] = "uniform"
    low: Tokens
    high: Tokens

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be at least low ({self.low})")
        return self


class LogNormal(Frozen):
    """Lengths whose logarithm is normal: `median` tokens, `sigma` the log-space spread; clipped."""

    kind: Literal["lognormal"] = "lognormal"
    median: float = Field(gt=0, le=MAX_TOKENS)
    sigma: float = Field(ge=0)
    min: Tokens = 1
    max: Tokens | None = None


class Empirical(Frozen):
    """Draw (with replacement) from observed lengths: inline `values`, or a CSV `path` + `column`."""

    kind: Literal["empirical"] = "empirical"
    values: tuple[Tokens, ...] | None = None
    path: Path | None = None
    column: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.values is None) == (self.path is None):
            raise ValueError("give exactly one of values or path (+ column)")
        if self.path is not None and not self.column:
            raise ValueError("path needs column: the CSV column that holds the lengths")
        return self


Length = Annotated[Fixed | Uniform | LogNormal | Empirical, Field(discriminator="kind")]


def shortest(length: Length) -> int:
    """The fewest tokens `length` can draw (1 where only a file knows)."""
    if isinstance(length, Fixed):
        return length.tokens
    if isinstance(length, Uniform):
        return length.low
    if isinstance(length, LogNormal):
        return length.min
    return min(length.values) if length.values else 1


def sample_lengths(dist: Fixed | Uniform | LogNormal | Empirical, rng: np.random.Generator,
                   n: int) -> np.ndarray:
    if isinstance(dist, Fixed):
        return np.full(n, dist.tokens, np.int64)
    if isinstance(dist, Uniform):
        return rng.integers(dist.low, dist.high + 1, n, dtype=np.int64)
    if isinstance(dist, LogNormal):
        x = np.rint(rng.lognormal(np.log(dist.median), dist.sigma, n))
        return np.clip(x, dist.min, dist.max or np.inf).astype(np.int64)
    values = np.asarray(dist.values if dist.values is not None else _column(dist.path, dist.column), np.int64)
    if len(values) == 0 or values.min() < 1:
        raise ValueError(f"empirical lengths must be non-empty and positive ({dist.path or 'values'})")
    return values[rng.integers(0, len(values), n)]


def _column(path: Path, column: str) -> np.ndarray:
    import pandas as pd

    try:
        frame = pd.read_csv(path, usecols=[column])
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read column {column!r}: {exc}") from exc
    return frame[column].to_numpy()
