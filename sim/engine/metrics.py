"""Tidy tables from an engine run, and the summary computed from them (pure pandas).

`requests` has one row per request, `timeseries` one row per replica event (step end, span end or
arrival). `summarize()` reads only those tables plus a few run constants, so the CLI, sweeps and the
dashboard all get the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim import stats
from sim.cost import pricing
from sim.engine import steady
from workloads.requests import Requests
from workloads.spec import Slo


def requests_table(reqs: Requests, state, reasons: tuple[str, ...]) -> pd.DataFrame:
    out = reqs.output_tokens
    finished = ~np.isnan(state.finish_s)
    ttft = state.first_token_s - reqs.arrival_s
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(out > 1, (state.finish_s - state.first_token_s) / (out - 1), np.nan)
    return pd.DataFrame(
        {
            "request_id": np.arange(len(reqs), dtype=np.int64),
            "class": pd.Categorical.from_codes(reqs.cls, categories=list(reqs.class_names)),
            "arrival_s": reqs.arrival_s,
            "scheduled_s": state.scheduled_s,
            "first_token_s": state.first_token_s,
            "finish_s": state.finish_s,
            "prompt_tokens": reqs.prompt_tokens,
            "cached_tokens": state.cached_tokens + state.reloaded_tokens,
            "reloaded_tokens": state.reloaded_tokens,
            "cached_blocks": state.cached_blocks,
            "reloaded_blocks": state.reloaded_blocks,
            "prefilled_tokens": state.prefilled,
            "output_tokens": np.where(finished, state.generated, 0),
            "replica": state.replica,
            "decode_replica": state.decode_replica,
            "kv_transfer_s": state.transfer_s,
            "preemptions": state.preemptions,
            "ttft_s": ttft,
            "tpot_s": tpot,
            "e2e_s": state.finish_s - reqs.arrival_s,
            "rejected_reason": pd.Series(np.array(reasons, dtype=object)[state.rejected]).replace("", None),
        }
    )


def timeseries_table(rec, capacity_blocks: int) -> pd.DataFrame:
    """The timeseries of a `Recorder`, or of anything with its `column(name)`."""
    kv = rec.column("kv_blocks")
    return pd.DataFrame(
        {
            "time_s": rec.column("time_s"),
            "replica": rec.column("replica"),
            "batch_size": rec.column("batch"),
            "waiting": rec.column("waiting"),
            "kv_used_blocks": kv,
            "kv_used_fraction": kv / capacity_blocks if capacity_blocks else np.zeros(len(kv)),
            "kv_cached_blocks": rec.column("cached_blocks"),
            "kv_occupied_fraction": (kv + rec.column("cached_blocks")) / capacity_blocks
            if capacity_blocks
            else 0.0,
            "offload_blocks": rec.column("offload_blocks"),
            "in_system": rec.column("in_system"),
        },
        copy=False,  # the columns are fresh arrays: no second copy of a table with a row per event
    )


@dataclass(frozen=True)
class RunConstants:
    """What summarize() needs beyond the tables: device counts, prices, power and busy times."""

    devices: int
    price_per_device_hour_usd: float | None
    tdp_w: float | None
    idle_fraction: float
    busy_device_s: float  # busy seconds of each replica x its devices, summed
    active_device_s: float  # active seconds (sim.cost.pricing) of each replica x its devices, summed
    compute_bound_s: float
    memory_bound_s: float
    link_s: float
    electricity_usd_per_kwh: float
    sim_wall_s: float
    sim_events: int
    stationary: bool = False  # arrivals with a steady state to measure (Poisson, gamma, closed loop)
    open_loop: bool = False  # arrivals that keep coming whatever the system does (may overload it)
    ci_level: float = 0.95


def _meets(df: pd.DataFrame, slo: Slo | None) -> pd.Series:
    ok = df["finish_s"].notna()
    if slo is None:
        return ok
    for col, limit in (("ttft_s", slo.ttft_s), ("tpot_s", slo.tpot_s), ("e2e_s", slo.e2e_s)):
        if limit is not None:
            ok &= df[col].fillna(0.0 if col == "tpot_s" else np.inf) <= limit
    return ok


def slo_mask(df: pd.DataFrame, slo: Slo | None, class_slos: dict[str, Slo | None]) -> pd.Series:
    """Whether each request finished and met its class's SLO (or the scenario's)."""
    ok = pd.Series(False, index=df.index)
    for name, group in df.groupby("class", observed=True):
        ok.loc[group.index] = _meets(group, class_slos.get(str(name)) or slo)
    return ok


def _pct(series: pd.Series, q: float) -> float | None:
    s = series.dropna()
    return float(np.percentile(s, q)) if len(s) else None


def latency_summary(df: pd.DataFrame) -> dict:
    out = {}
    for metric in ("ttft", "tpot", "e2e"):
        for q in (50, 90, 99):
            out[f"{metric}_p{q}_s"] = _pct(df[f"{metric}_s"], q)
    return out


@dataclass(frozen=True)
class Totals:
    """The counts and sums a summary is built from, whether read off the tables (`summarize`) or
    kept as a streamed run goes (`sim.engine.online`)."""

    requests: int
    finished: int
    rejected: int
    duration_s: float  # first arrival to last finish
    input_tokens: float  # of finished requests
    output_tokens: float
    counted_input_tokens: float  # of requests finishing inside the measured window
    counted_output_tokens: float
    kv_peak_fraction: float
    preemptions: int


def summarize(
    requests: pd.DataFrame,
    timeseries: pd.DataFrame,
    c: RunConstants,
    slo: Slo | None = None,
    class_slos: dict[str, Slo | None] | None = None,
) -> dict:
    done = requests[requests["finish_s"].notna()]
    duration = float(requests["finish_s"].max() - requests["arrival_s"].min()) if len(done) else 0.0
    meets = slo_mask(requests, slo, class_slos or {})
    win = steady.window(requests, timeseries, c.stationary)
    counted = done[(done["finish_s"] >= win.start_s) & (done["finish_s"] <= win.end_s)]
    totals = Totals(
        requests=len(requests),
        finished=len(done),
        rejected=int(requests["rejected_reason"].notna().sum()),
        duration_s=duration,
        input_tokens=float(done["prompt_tokens"].sum()),
        output_tokens=float(done["output_tokens"].sum()),
        counted_input_tokens=float(counted["prompt_tokens"].sum()),
        counted_output_tokens=float(counted["output_tokens"].sum()),
        kv_peak_fraction=float(timeseries["kv_used_fraction"].max()) if len(timeseries) else 0.0,
        preemptions=int(requests["preemptions"].sum()),
    )
    measured = steady.intervals(requests, win, meets, c.ci_level)
    return assemble(totals, win, measured, steady.load(requests, c.open_loop), c)


def assemble(t: Totals, win: steady.Window, measured: dict, load: stats.Load, c: RunConstants) -> dict:
    """The summary's fields, in order, from the totals, the measured window and its intervals."""
    span = win.end_s - win.start_s

    def rate(x: float) -> float:
        return x / span if span > 0 else 0.0

    if load.overloaded:  # percentiles of a queue that grows without bound describe only its length
        measured = {k: None for k in measured} | {"throughput_rps": float(load.sustainable_rps)}
    devices, duration = c.devices, t.duration_s
    energy_j = pricing.energy_j(c.tdp_w, c.idle_fraction, duration, devices, c.active_device_s)
    cost_usd = None
    if c.price_per_device_hour_usd is not None:
        cost_usd = pricing.run_cost_usd(
            devices, duration, c.price_per_device_hour_usd, energy_j, c.electricity_usd_per_kwh
        )
    in_tokens, out_tokens = t.input_tokens, t.output_tokens
    steps = c.compute_bound_s + c.memory_bound_s + c.link_s
    return {
        "requests_total": t.requests,
        "requests_finished": t.finished,
        "requests_rejected": t.rejected,
        "duration_s": duration,
        "throughput_rps": measured["throughput_rps"] or 0.0,
        "input_tokens_per_s": rate(t.counted_input_tokens),
        "output_tokens_per_s": rate(t.counted_output_tokens),
        **{k: measured[k] for k in steady.LATENCY_FIELDS},
        "mean_queue_s": measured["mean_queue_s"],
        "goodput_rps": measured["goodput_rps"] or 0.0,
        "slo_attainment": measured["slo_attainment"],
        "kv_peak_fraction": t.kv_peak_fraction,
        "preemptions": t.preemptions,
        "compute_bound_time_fraction": c.compute_bound_s / steps if steps else 0.0,
        "memory_bound_time_fraction": c.memory_bound_s / steps if steps else 0.0,
        "link_time_fraction": c.link_s / steps if steps else 0.0,
        "utilization": c.busy_device_s / (duration * devices) if duration else 0.0,
        "devices": devices,
        "cost_usd": cost_usd,
        "cost_per_hour_usd": pricing.usd_per_hour(cost_usd, duration) if cost_usd and duration else None,
        "cost_per_1m_input_tokens_usd": pricing.usd_per_1m_tokens(cost_usd, in_tokens)
        if cost_usd and in_tokens
        else None,
        "cost_per_1m_output_tokens_usd": pricing.usd_per_1m_tokens(cost_usd, out_tokens)
        if cost_usd and out_tokens
        else None,
        "energy_j": energy_j,
        "energy_j_per_output_token": energy_j / out_tokens if out_tokens else None,
        "sim_wall_s": c.sim_wall_s,
        "sim_events": c.sim_events,
        "steady_start_s": win.start_s,
        "steady_end_s": win.end_s,
        "warmup_requests_dropped": win.warmup_dropped,
        "drain_requests_dropped": win.drain_dropped,
        "steady_state": win.steady,
        "overloaded": load.overloaded,
        "offered_rps": steady.finite_or_none(load.offered_rps),
        "sustainable_rps": steady.finite_or_none(load.sustainable_rps),
        "ci_level": c.ci_level,
        **{name: measured[name] for f in steady.INTERVAL_FIELDS for name in steady.ci_names(f)},
    }


def per_class(requests: pd.DataFrame, slo: Slo | None, class_slos: dict[str, Slo | None]) -> pd.DataFrame:
    """Latency percentiles, throughput share and SLO attainment for each request class."""
    meets = slo_mask(requests, slo, class_slos)
    rows = []
    for name, group in requests.groupby("class", observed=True):
        done = group[group["finish_s"].notna()]
        rows.append(
            {
                "class": str(name),
                "requests": len(group),
                "finished": len(done),
                "rejected": int(group["rejected_reason"].notna().sum()),
                "slo_attainment": float(meets.loc[group.index].mean()),
                **latency_summary(done),
            }
        )
    return pd.DataFrame(rows)


def time_average_in_system(timeseries: pd.DataFrame, until_s: float) -> float:
    """Time-average of the number of requests in the system, from the timeseries step function."""
    t = timeseries["time_s"].to_numpy()
    n = timeseries["in_system"].to_numpy()
    if len(t) == 0 or until_s <= t[0]:
        return 0.0
    edges = np.append(t, until_s)
    return float((n * np.diff(edges)).sum() / (until_s - 0.0))


def block_seconds(timeseries: pd.DataFrame, column: str, until_s: float) -> float:
    """Integral over time of a per-replica block count (a step function sampled at each row): each
    row's value holds until that replica's next row, the last one until `until_s`."""
    values = timeseries[column].to_numpy()
    if not values.any():  # no prefix cache or offload tier: skip the sort
        return 0.0
    replica = timeseries["replica"].to_numpy()
    order = np.argsort(replica, kind="stable")  # each replica's rows, still in time order
    t = timeseries["time_s"].to_numpy()[order]
    held_until = np.append(t[1:], until_s)
    last = np.append(replica[order][1:] != replica[order][:-1], True)
    held_until[last] = until_s
    return float((values[order] * (held_until - t)).sum())


@dataclass(frozen=True)
class CachePrices:
    """What turns cached blocks and cache hits into seconds and money: bytes per KV block, USD per
    byte-second of device memory (None without a price) and of the offload tier, the prefill seconds
    a cached prefix of each given length saves (`sim.cost.prefill.prefill_s`: quadratic attention
    included), and USD per replica-second (None without a price)."""

    block_bytes: float
    device_usd_per_byte_s: float | None
    offload_usd_per_byte_s: float
    prefill_s: Callable[[np.ndarray], np.ndarray]
    usd_per_replica_s: float | None


def cache_summary(
    requests: pd.DataFrame,
    timeseries: pd.DataFrame,
    counters: dict,
    hashed_blocks: float,
    prices: CachePrices,
) -> dict:
    """Prefix-cache hits, traffic and the economics of keeping context cached: what storing the
    cached blocks cost (device and offload tier) against the prefill time the hits saved."""
    admitted = requests[requests["scheduled_s"].notna()]
    prompt = float(admitted["prompt_tokens"].sum())
    cached = float(admitted["cached_tokens"].sum())
    reloaded = float(admitted["reloaded_tokens"].sum())
    reloaded_blocks = float(admitted["reloaded_blocks"].sum())
    hit_blocks = float(admitted["cached_blocks"].sum()) + reloaded_blocks
    end = float(requests["finish_s"].max()) if requests["finish_s"].notna().any() else 0.0
    device_bs = block_seconds(timeseries, "kv_cached_blocks", end) * prices.block_bytes
    offload_bs = block_seconds(timeseries, "offload_blocks", end) * prices.block_bytes
    storage = pricing.storage_usd(device_bs, prices.device_usd_per_byte_s) + pricing.storage_usd(
        offload_bs, prices.offload_usd_per_byte_s
    )
    sums = admitted.groupby("replica")[["cached_tokens", "prompt_tokens"]].sum()
    by_replica = sums["cached_tokens"] / sums["prompt_tokens"]
    saved_s = float(prices.prefill_s(admitted["cached_tokens"].to_numpy()).sum())
    out = {
        "prefix_hit_rate_tokens": cached / prompt if prompt else 0.0,
        "offload_hit_rate_tokens": reloaded / prompt if prompt else 0.0,
        "prefix_hit_rate_blocks": hit_blocks / hashed_blocks if hashed_blocks else 0.0,
        "offload_hit_rate_blocks": reloaded_blocks / hashed_blocks if hashed_blocks else 0.0,
        "prefix_hit_rate_by_replica": [round(v, 6) for v in by_replica.tolist()],
        "recomputed_tokens": int(
            (admitted["prefilled_tokens"] - (admitted["prompt_tokens"] - admitted["cached_tokens"]))
            .clip(lower=0)
            .sum()
        ),
        "kv_transfer_mean_s": float(admitted["kv_transfer_s"].mean()) if len(admitted) else 0.0,
        "cache_storage_cost_usd": storage,
        "cache_prefill_saved_s": saved_s,
        "cache_prefill_saved_usd": pricing.usd_at(prices.usd_per_replica_s, saved_s)
        if prices.usd_per_replica_s
        else None,
        **counters,
    }
    return out
