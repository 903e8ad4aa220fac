"""The one base class of every schema in ctxsim's files: hardware, models, workloads, scenarios.

Unknown keys are errors (a misspelt field must not be silently ignored), infinite and NaN numbers are
refused (no rate, bandwidth or length means anything at infinity), and a validated object never
changes (what-if studies copy with `model_copy(update=...)` instead). It lives in the lowest layer
so the hardware, workloads and scenario schemas all share it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """A pydantic model that forbids unknown fields and non-finite numbers, immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
