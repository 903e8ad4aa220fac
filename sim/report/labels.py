"""What a person reads for a column name: its label, its unit and its values, in one table.

Sweep results, run summaries and compare tables are keyed by machine names (`ttft_p99_s`,
`hardware.memory.hbm.bandwidth_bytes_per_s`) holding SI values (seconds, bytes/s, fractions). Every
axis, dropdown, table header and cell that shows one goes through this module, so a quantity reads
the same everywhere: `label` names it ("TTFT p99"), `text` writes one value with its unit
("298 ms", "2 TB/s", "87.0%", "$0.136"), and `axis` gives a plot or a table column one unit for all
its values ("TTFT p99 (ms)" and the factor that turns seconds into ms).

A name the table does not list is read from its suffix (`_s` seconds, `_bytes_per_s` bytes/s,
`_usd` dollars, `_fraction` a share ...), so a new summary field or swept parameter still gets a
unit; its label is its last dotted part with the unit suffix dropped. Pure functions, no plotting.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from sim.format import MISSING, count, is_missing, number, percent, seconds_ci, si, usd

Kind = Literal[
    "seconds",
    "fraction",
    "usd",
    "rate",
    "tokens_rate",
    "count",
    "bytes_per_s",
    "bytes",
    "flops",
    "joules",
    "number",
    "text",
]
Better = Literal["lower", "higher"] | None


@dataclass(frozen=True)
class Quantity:
    """How one named quantity reads: `label` (no unit), `kind` (its unit family), `short` (a
    point label's prefix, e.g. "tp" for tensor parallelism) and which direction is `better`."""

    label: str
    kind: Kind = "number"
    better: Better = None
    short: str | None = None


@dataclass(frozen=True)
class Axis:
    """One unit for a whole axis or column: `title` is the label with the unit, `scale` turns a
    stored value into that unit, `unit` is the unit alone ("" for counts and text)."""

    title: str
    scale: float
    unit: str


_LAT = {"ttft": "TTFT", "tpot": "TPOT", "e2e": "end to end"}
_LATENCY = re.compile(r"^(ttft|tpot|e2e)_p(\d+)_s$")
_CI = re.compile(r"^(.+)_ci_(lo|hi)(_s|_rps)?$")

QUANTITIES: dict[str, Quantity] = {
    # ---- run summaries (sim.engine.summary.Summary) ---------------------------------------------
    "requests_total": Quantity("requests", "count"),
    "requests_finished": Quantity("requests finished", "count", "higher"),
    "requests_rejected": Quantity("requests rejected", "count", "lower"),
    "duration_s": Quantity("simulated time", "seconds"),
    "throughput_rps": Quantity("throughput", "rate", "higher"),
    "input_tokens_per_s": Quantity("input token rate", "tokens_rate", "higher"),
    "output_tokens_per_s": Quantity("output token rate", "tokens_rate", "higher"),
    "mean_queue_s": Quantity("mean queueing", "seconds", "lower"),
    "goodput_rps": Quantity("goodput", "rate", "higher"),
    "slo_attainment": Quantity("SLO attainment", "fraction", "higher"),
    "kv_peak_fraction": Quantity("KV peak occupancy", "fraction"),
    "preemptions": Quantity("preemptions", "count", "lower"),
    "compute_bound_time_fraction": Quantity("compute-bound share", "fraction"),
    "memory_bound_time_fraction": Quantity("memory-bound share", "fraction"),
    "link_time_fraction": Quantity("communication share", "fraction", "lower"),
    "utilization": Quantity("busy share of device time", "fraction"),
    "devices": Quantity("devices", "count", "lower"),
    "cost_usd": Quantity("cost of the run", "usd", "lower"),
    "cost_per_hour_usd": Quantity("cost per hour", "usd", "lower"),
    "cost_per_1m_input_tokens_usd": Quantity("cost per 1M input tokens", "usd", "lower"),
    "cost_per_1m_output_tokens_usd": Quantity("cost per 1M output tokens", "usd", "lower"),
    "energy_j": Quantity("energy", "joules", "lower"),
    "energy_j_per_output_token": Quantity("energy per output token", "joules", "lower"),
    "sim_wall_s": Quantity("simulation wall time", "seconds"),
    "sim_events": Quantity("simulation events", "count"),
    "prefix_hit_rate_tokens": Quantity("prefix hit rate (tokens)", "fraction", "higher"),
    "prefix_hit_rate_blocks": Quantity("prefix hit rate (blocks)", "fraction", "higher"),
    "offload_hit_rate_tokens": Quantity("offload hit rate (tokens)", "fraction"),
    "offload_hit_rate_blocks": Quantity("offload hit rate (blocks)", "fraction"),
    "recomputed_tokens": Quantity("recomputed tokens", "count", "lower"),
    "kv_transfer_mean_s": Quantity("mean KV transfer", "seconds", "lower"),
    "cache_storage_cost_usd": Quantity("cost of storing cached KV", "usd", "lower"),
    "cache_prefill_saved_s": Quantity("prefill time saved by hits", "seconds", "higher"),
    "cache_prefill_saved_usd": Quantity("prefill cost saved by hits", "usd", "higher"),
    "cache_evictions": Quantity("cache evictions", "count"),
    "offload_writes": Quantity("offload writes", "count"),
    "offload_evictions": Quantity("offload evictions", "count"),
    "offload_bytes_read": Quantity("bytes read from offload", "bytes"),
    "kv_transfers": Quantity("KV transfers", "count"),
    "steady_start_s": Quantity("steady state from", "seconds"),
    "steady_end_s": Quantity("steady state until", "seconds"),
    "warmup_requests_dropped": Quantity("warm-up requests dropped", "count"),
    "drain_requests_dropped": Quantity("drain requests dropped", "count"),
    "steady_state": Quantity("steady state", "text"),
    "overloaded": Quantity("overloaded", "text"),
    "offered_rps": Quantity("offered load", "rate"),
    "sustainable_rps": Quantity("sustainable load", "rate", "higher"),
    "ci_level": Quantity("confidence level", "fraction"),
    "converged": Quantity("converged", "text"),
    "converged_requests": Quantity("requests to converge", "count"),
    # ---- swept parameters (dotted scenario paths) -----------------------------------------------
    "hardware": Quantity("hardware", "text"),
    "model": Quantity("model", "text"),
    "name": Quantity("scenario", "text"),
    "seed": Quantity("seed", "count", short="seed"),
    "parallelism.tp": Quantity("tensor parallel (tp)", "count", short="tp"),
    "parallelism.pp": Quantity("pipeline stages (pp)", "count", short="pp"),
    "parallelism.ep": Quantity("expert parallel (ep)", "count", short="ep"),
    "parallelism.cp": Quantity("context parallel (cp)", "count", short="cp"),
    "parallelism.attention_dp": Quantity("attention data parallel", "count", short="attn dp"),
    "cluster.replicas": Quantity("replicas", "count", short="replicas"),
    "cluster.devices": Quantity("devices", "count", short="devices"),
    "cluster.router": Quantity("router", "text"),
    "workload.arrivals.rate_per_s": Quantity("arrival rate", "rate"),
    "workload.arrivals.users": Quantity("concurrent users", "count", short="users"),
    "workload.prompt_tokens.tokens": Quantity("prompt tokens", "count", short="prompt"),
    "workload.output_tokens.tokens": Quantity("output tokens", "count", short="output"),
    "hardware.memory.hbm.bandwidth_bytes_per_s": Quantity("HBM bandwidth", "bytes_per_s"),
    "hardware.memory.hbm.capacity_bytes": Quantity("HBM capacity", "bytes"),
    "hardware.peak_flops.bf16": Quantity("peak bf16 compute", "flops"),
    "hardware.peak_flops.fp8": Quantity("peak fp8 compute", "flops"),
    "scheduler.max_num_seqs": Quantity("max sequences per batch", "count", short="max seqs"),
    "scheduler.max_num_batched_tokens": Quantity("token budget per step", "count", short="budget"),
    "scheduler.chunk_size": Quantity("prefill chunk", "count", short="chunk"),
    "kv_cache.offload_tier": Quantity("KV offload tier", "text"),
    "kv_cache.eviction": Quantity("KV eviction", "text"),
    "kv_cache.prefix_caching": Quantity("prefix caching", "text"),
    "stop.requests": Quantity("requests simulated", "count", short="requests"),
}

LOAD_PARAMS = ("workload.arrivals.", "workload.rate", "workload.users")
"""Prefixes of the swept parameters that set the offered load: points that differ in one were run at
different loads, and a Pareto front across them compares unlike things."""

_SUFFIXES: tuple[tuple[str, Kind], ...] = (
    ("_bytes_per_s", "bytes_per_s"),
    ("_per_s_usd", "usd"),
    ("_usd", "usd"),
    ("rate_per_s", "rate"),
    ("_rps", "rate"),
    ("_tokens_per_s", "tokens_rate"),
    ("_bytes", "bytes"),
    ("_fraction", "fraction"),
    ("_share", "fraction"),
    ("_s", "seconds"),
    ("_j", "joules"),
    ("_tokens", "count"),
)


def quantity(key: str) -> Quantity:
    """`key`'s entry in the table, or one read from its name."""
    if key in QUANTITIES:
        return QUANTITIES[key]
    if m := _LATENCY.match(key):
        return Quantity(f"{_LAT[m.group(1)]} p{m.group(2)}", "seconds", "lower")
    if m := _CI.match(key):
        base = quantity(m.group(1) + (m.group(3) or ""))
        side = "low" if m.group(2) == "lo" else "high"
        return Quantity(f"{base.label}, interval {side}", base.kind)
    last = key.rsplit(".", 1)[-1]
    kind: Kind = "number"
    for suffix, found in _SUFFIXES:
        if last.endswith(suffix):
            kind, last = found, last.removesuffix(suffix) if suffix != "rate_per_s" else last
            break
    if "flops" in key:
        kind = "flops"
    words = last.replace("_", " ").strip() or key
    parent = key.rsplit(".", 2)[-2] if key.count(".") >= 1 else ""
    if parent and parent not in ("workload", "cluster", "scheduler", "kv_cache", "memory", "hardware"):
        words = f"{parent.replace('_', ' ')} {words}"
    return Quantity(words, kind)


def label(key: str) -> str:
    """The human name of `key`, without a unit: 'TTFT p99', 'HBM bandwidth', 'tensor parallel (tp)'."""
    return quantity(key).label


def better(key: str) -> Better:
    """'lower' or 'higher' where one direction is plainly better (latency, cost; throughput), else None."""
    return quantity(key).better


def text(key: str, value: Any) -> str:
    """One value of `key` as a person reads it, with its unit: '298 ms', '2 TB/s', '87.0%', '$0.136',
    '5,000', 'h100-sxm'; a missing one as a dash."""
    if is_missing(value):
        return MISSING
    kind = quantity(key).kind
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if kind == "text" or isinstance(value, str) or not _is_number(value):
        return str(value)
    value = int(value) if isinstance(value, numbers.Integral) else float(value)
    if kind == "seconds":
        return seconds_ci(value)
    if kind == "fraction":
        return percent(value)
    if kind == "usd":
        return usd(value, cents=True)
    if kind == "rate":
        return f"{number(float(value))} req/s"
    if kind == "tokens_rate":
        return f"{count(value) if abs(value) >= 100 else number(float(value))} tokens/s"
    if kind == "count":
        return count(value) if float(value).is_integer() else number(value)
    if kind in _SI:
        return si(value, _SI[kind])
    return number(value, thousands=True)


def point_text(key: str, value: Any) -> str:
    """A parameter's value as a point label: the value with its unit where it has one ('2 TB/s',
    '6 req/s'), named where a bare number would not say what it is ('tp 4', 'replicas 2')."""
    q = quantity(key)
    written = text(key, value)
    if q.kind in ("count", "number") and _is_number(value) and not isinstance(value, str):
        return f"{q.short or q.label} {written}"
    return written


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


_SI = {"bytes_per_s": "B/s", "bytes": "B", "flops": "FLOP/s", "joules": "J"}
_SECONDS = (("s", 1.0), ("ms", 1e3), ("µs", 1e6))
_PREFIXES = (("T", 1e-12), ("G", 1e-9), ("M", 1e-6), ("k", 1e-3), ("", 1.0))


def axis(key: str, values: Iterable[Any] = ()) -> Axis:
    """One unit for every value of `key` in `values` (an axis, a table column, a colour bar),
    picked so the largest reads in ones to thousands: 'TTFT p99 (ms)' and 1e3 for latencies under a
    second, 'HBM bandwidth (TB/s)' and 1e-12 for bandwidths in TB/s."""
    q = quantity(key)
    finite = [
        abs(float(v)) for v in values if _is_number(v) and not is_missing(v) and math.isfinite(float(v))
    ]
    top = max(finite, default=0.0)
    if q.kind == "seconds":
        unit, scale = next(((u, s) for u, s in _SECONDS if top * s >= 1), _SECONDS[-1])
    elif q.kind == "fraction":
        unit, scale = "%", 100.0
    elif q.kind == "usd":
        unit, scale = "$", 1.0
    elif q.kind == "rate":
        unit, scale = "req/s", 1.0
    elif q.kind == "tokens_rate":
        unit, scale = "tokens/s", 1.0
    elif q.kind in _SI:
        base = _SI[q.kind]
        prefix, scale = next(((p, s) for p, s in _PREFIXES if top * s >= 1), ("", 1.0))
        unit = prefix + base
    else:
        unit, scale = "", 1.0
    return Axis(f"{q.label} ({unit})" if unit else q.label, scale, unit)


def scaled(value: Any, ax: Axis, figures: int = 4) -> Any:
    """`value` in `ax`'s unit, rounded to `figures` significant figures (text and missing values as
    they are, missing as None), for a table column or a plot."""
    if is_missing(value):
        return None
    if isinstance(value, bool | np.bool_ | str) or not _is_number(value):
        return value
    x = float(value) * ax.scale
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, figures - 1 - math.floor(math.log10(abs(x))))


def axis_number(x: Any) -> str:
    """A value already in its axis's unit, for a table cell under a header that names the unit:
    '3.35', '15,040', '0.136'."""
    if is_missing(x):
        return MISSING
    if isinstance(x, bool | np.bool_ | str) or not _is_number(x):
        return str(x)
    x = float(x)
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:,.4g}"


def is_load(key: str) -> bool:
    """Whether the swept parameter `key` sets the offered load (`LOAD_PARAMS`)."""
    return key.startswith(LOAD_PARAMS)
