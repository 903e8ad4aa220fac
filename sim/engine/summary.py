"""A run's summary as one typed, frozen record: what `metrics.summarize()` and the cache metrics
report, one field per number, so readers name fields the type checker knows instead of retyping
dictionary keys.

The field order is the order summary.json, `ctxsim run --json` and sweep rows use; `to_dict()`
gives that mapping back, None values included. The latency, throughput and SLO numbers measure the
steady window of the run (`sim.engine.steady`); each has a confidence interval, `*_ci_lo*` and
`*_ci_hi*` at `ci_level`, with the unit suffix kept last (`ttft_p99_ci_lo_s`). A run asked to
converge (`stop: {until: converged}`) says whether it did and the `stop.requests` of its final
run (`sim.converge`); for other runs both are None. Every dollar figure is on the basis
`cost_basis` states (`sim.cost.pricing.DevicePrice.label`; None without a price), and the run's cost
is split between its input and its output tokens by `prefill_cost_share`, the share of the device
time that prefill took (`sim.api.prefill_share`). The model-uncertainty intervals `*_lo*` and
`*_hi*` (`sim.api.model_intervals`: how far the serving stack's predictions were off on held-out
measurements) are a different thing from the `*_ci_*` intervals, which say only how precisely this
simulated run measured its own numbers; they are None under `stack: none` or a stack without bands.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Summary:
    """The numbers of one run; None where a number is undefined (no price, nothing finished)."""

    requests_total: int
    requests_finished: int
    requests_rejected: int
    duration_s: float
    throughput_rps: float
    input_tokens_per_s: float
    output_tokens_per_s: float
    ttft_p50_s: float | None
    ttft_p90_s: float | None
    ttft_p99_s: float | None
    tpot_p50_s: float | None
    tpot_p90_s: float | None
    tpot_p99_s: float | None
    e2e_p50_s: float | None
    e2e_p90_s: float | None
    e2e_p99_s: float | None
    mean_queue_s: float | None
    goodput_rps: float
    slo_attainment: float | None
    kv_peak_fraction: float
    preemptions: int
    compute_bound_time_fraction: float
    memory_bound_time_fraction: float
    link_time_fraction: float
    utilization: float
    devices: int
    cost_usd: float | None
    cost_per_hour_usd: float | None
    cost_per_1m_input_tokens_usd: float | None
    cost_per_1m_output_tokens_usd: float | None
    energy_j: float
    energy_j_per_output_token: float | None
    sim_wall_s: float
    sim_events: int
    prefix_hit_rate_tokens: float
    offload_hit_rate_tokens: float
    prefix_hit_rate_blocks: float
    offload_hit_rate_blocks: float
    prefix_hit_rate_by_replica: list[float]
    recomputed_tokens: int
    kv_transfer_mean_s: float
    cache_storage_cost_usd: float
    cache_prefill_saved_s: float
    cache_prefill_saved_usd: float | None
    cache_evictions: int
    offload_writes: int
    offload_evictions: int
    offload_bytes_read: float
    kv_transfers: int
    steady_start_s: float
    steady_end_s: float
    warmup_requests_dropped: int
    drain_requests_dropped: int
    steady_state: bool
    overloaded: bool
    offered_rps: float | None
    sustainable_rps: float | None
    ci_level: float
    ttft_p50_ci_lo_s: float | None
    ttft_p50_ci_hi_s: float | None
    ttft_p90_ci_lo_s: float | None
    ttft_p90_ci_hi_s: float | None
    ttft_p99_ci_lo_s: float | None
    ttft_p99_ci_hi_s: float | None
    tpot_p50_ci_lo_s: float | None
    tpot_p50_ci_hi_s: float | None
    tpot_p90_ci_lo_s: float | None
    tpot_p90_ci_hi_s: float | None
    tpot_p99_ci_lo_s: float | None
    tpot_p99_ci_hi_s: float | None
    e2e_p50_ci_lo_s: float | None
    e2e_p50_ci_hi_s: float | None
    e2e_p90_ci_lo_s: float | None
    e2e_p90_ci_hi_s: float | None
    e2e_p99_ci_lo_s: float | None
    e2e_p99_ci_hi_s: float | None
    mean_queue_ci_lo_s: float | None
    mean_queue_ci_hi_s: float | None
    throughput_ci_lo_rps: float | None
    throughput_ci_hi_rps: float | None
    goodput_ci_lo_rps: float | None
    goodput_ci_hi_rps: float | None
    slo_attainment_ci_lo: float | None
    slo_attainment_ci_hi: float | None
    converged: bool | None = None
    converged_requests: int | None = None
    prefill_cost_share: float | None = None
    cost_basis: str | None = None
    ttft_p50_lo_s: float | None = None
    ttft_p50_hi_s: float | None = None
    ttft_p90_lo_s: float | None = None
    ttft_p90_hi_s: float | None = None
    ttft_p99_lo_s: float | None = None
    ttft_p99_hi_s: float | None = None
    tpot_p50_lo_s: float | None = None
    tpot_p50_hi_s: float | None = None
    tpot_p90_lo_s: float | None = None
    tpot_p90_hi_s: float | None = None
    tpot_p99_lo_s: float | None = None
    tpot_p99_hi_s: float | None = None
    e2e_p50_lo_s: float | None = None
    e2e_p50_hi_s: float | None = None
    e2e_p90_lo_s: float | None = None
    e2e_p90_hi_s: float | None = None
    e2e_p99_lo_s: float | None = None
    e2e_p99_hi_s: float | None = None
    throughput_lo_rps: float | None = None
    throughput_hi_rps: float | None = None
    output_tokens_lo_per_s: float | None = None
    output_tokens_hi_per_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The summary as the JSON-ready mapping of field name to value, in field order."""
        return {name: getattr(self, name) for name in FIELDS}

    def metric(self, name: str) -> Any:
        """The field called `name`, for code that picks a field by a computed name (an SLO such as
        `ttft_p99` reads `ttft_p99_s`); a name that is no field is a KeyError, not a silent None."""
        if name not in FIELDS:
            raise KeyError(f"no summary field {name!r}")
        return getattr(self, name)


FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Summary))
