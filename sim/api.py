"""`run(scenario) -> Result`: the one function the CLI, sweeps and the dashboard call. Here a
scenario (refused by `sim.runnable` when it cannot run) becomes the engine's configs
(`sim.engine.config`), and the engine's tables become a `Result`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from hardware.stacks import StackProfile, load_stack, served_by
from sim.converge import until_converged
from sim.cost import pricing
from sim.cost.memory import memory_plan
from sim.cost.parallelism import Parallelism
from sim.cost.prefill import PrefillClock, prefill_s
from sim.cost.roofline import ACC_ACTIVE, RooflineCost
from sim.engine import metrics
from sim.engine.batcher import Batcher
from sim.engine.config import CacheConfig, ClusterConfig, Pool, SchedulerConfig
from sim.engine.kvcache import KVLayout
from sim.engine.recorder import REASONS
from sim.engine.simulate import simulate
from sim.engine.summary import Summary
from sim.runnable import check_runnable
from sim.scenario import Scenario, Scheduler
from workloads.arrivals import Burst, ClosedLoop, Gamma, Poisson
from workloads.requests import Requests
from workloads.spec import generate


@dataclass(frozen=True)
class Result:
    scenario: Scenario
    summary: Summary
    requests: pd.DataFrame
    timeseries: pd.DataFrame
    classes: pd.DataFrame


def make_requests(scenario: Scenario, count: int | None = None) -> Requests:
    """The scenario's requests, `count` of them instead of `stop.requests` when given (a converging
    run's later attempts). Under closed-loop arrivals their lengths are drawn here and their
    arrival times are left at zero: the engine sets them as users send. With
    `scheduler.context_overflow: truncate`, prompts past the model's context limit are cut to fit."""
    rng = np.random.default_rng(scenario.seed)
    workload = scenario.workload
    count = count if count is not None else scenario.stop.requests
    if isinstance(workload.arrivals, ClosedLoop):
        if count is None:
            raise ValueError(
                "stop: closed-loop arrivals need stop.requests (how many requests the users send)"
            )
        workload = workload.model_copy(update={"arrivals": Burst()})
    reqs = generate(workload, rng, count, scenario.stop.duration_s)
    limit = scenario.model.context_limit_tokens
    if limit is not None and scenario.scheduler.context_overflow == "truncate":
        return reqs.truncated_to(limit)
    return reqs


def parallelism(scenario: Scenario) -> Parallelism:
    """The cost model's view of the scenario's `parallelism`."""
    return scenario.parallelism.split


def scheduler_config(sched: Scheduler) -> SchedulerConfig:
    """What the engine reads of the scenario's `scheduler` (memory_fraction went into the pools)."""
    return SchedulerConfig(
        max_num_seqs=sched.max_num_seqs,
        max_num_batched_tokens=sched.max_num_batched_tokens,
        chunked_prefill=sched.chunked_prefill,
        prefill_chunk=sched.prefill_chunk,
        priority=sched.priority,
        block_size=sched.block_size,
        preemption=sched.preemption,
        scheduler_steps=sched.scheduler_steps,
        prefill_min_waiting=sched.prefill_min_waiting,
        adp_timeout_iters=sched.adp_timeout_iters,
        adp_batching_wait_iters=sched.adp_batching_wait_iters,
    )


def cluster_config(
    scenario: Scenario, transfer_s_per_token: float, transfer_latency_s: float
) -> ClusterConfig:
    """The router, the KV link between pools, closed-loop users and the front-end batcher, as the
    engine reads them."""
    arrivals = scenario.workload.arrivals
    return ClusterConfig(
        router=scenario.cluster.router,
        transfer_s_per_token=transfer_s_per_token,
        transfer_latency_s=transfer_latency_s,
        closed_loop=arrivals if isinstance(arrivals, ClosedLoop) else None,
        seed=scenario.seed,
        max_context_tokens=scenario.model.context_limit_tokens,
        batcher=None if (b := scenario.cluster.batcher) is None else Batcher(b.window_s, b.max_requests),
    )


def build_pool(scenario: Scenario, role: str, replicas: int, par: Parallelism) -> Pool:
    """A pool of `replicas` replicas split as `par`, as the engine runs it: one engine replica per
    scheduler (`par.engines`, the data-parallel attention ranks), each with its share of the KV pool
    and of the devices' offload tiers; the ranks of a MoE model step together
    (`sim.engine.lockstep`). With pp pipeline stages a scheduler's batch is pp scheduler batches in
    flight (`scheduler_for`), costed as micro-batches through the stages
    (`sim.cost.roofline.micro_batch`)."""
    hw, sched = scenario.hardware, scenario.scheduler
    plan = memory_plan(
        scenario.model, hw, par, sched.memory_fraction, sched.max_num_batched_tokens, scenario.placement
    )
    layout = KVLayout(plan.share(par.engines), sched.block_size)
    devices = par.devices // par.engines
    swap_bw = swap_blocks = offload_bw = offload_blocks = 0
    if hw.offload_tiers:
        swap = hw.offload_tiers[0]
        swap_bw = swap.bandwidth_bytes_per_s * devices
        swap_blocks = int(swap.capacity_bytes * devices // layout.block_bytes)
    if scenario.kv_cache.offload_tier:
        tier = next(t for t in hw.offload_tiers if t.name == scenario.kv_cache.offload_tier)
        offload_bw = tier.bandwidth_bytes_per_s * devices
        offload_blocks = int(tier.capacity_bytes * devices // layout.block_bytes)
    return Pool(
        role,
        replicas * par.engines,
        RooflineCost(scenario.model, hw, par, plan),
        layout,
        swap_bytes_per_s=swap_bw,
        swap_capacity_blocks=swap_blocks,
        offload_bytes_per_s=offload_bw,
        offload_capacity_blocks=offload_blocks,
        batches_in_flight=par.pp,
        # ranks that share MoE layers exchange tokens in every one of them, so they step together
        lockstep=par.engines if scenario.model.moe is not None else 1,
    )


def build_pools(scenario: Scenario) -> tuple[list[Pool], float, float]:
    """The replica pools, and the KV transfer seconds per token and latency between them."""
    dis = scenario.cluster.disaggregated
    if dis is None:
        return [build_pool(scenario, "mixed", scenario.replicas, parallelism(scenario))], 0.0, 0.0
    pre = build_pool(scenario, "prefill", dis.prefill.replicas, dis.prefill.split)
    dec = build_pool(scenario, "decode", dis.decode.replicas, dis.decode.split)
    link = scenario.hardware.link(across_nodes=True)
    bandwidth = dis.link_bandwidth_bytes_per_s or link.bandwidth_bytes_per_s
    latency = dis.link_latency_s if dis.link_latency_s is not None else link.latency_s
    # each device of the smaller group sends its shard over its own link
    lanes = min(dis.prefill.tp, dis.decode.tp)
    token_bytes = dec.layout.block_bytes / dec.layout.block_size
    return [pre, dec], token_bytes / (bandwidth * lanes), latency


def cache_config(scenario: Scenario, reqs: Requests) -> CacheConfig | None:
    spec = scenario.kv_cache
    if not spec.prefix_caching:
        return None
    if reqs.block_hashes is None:
        raise ValueError(
            "kv_cache.prefix_caching needs requests with block hashes "
            "(a trace with hash ids, or a multi-turn session workload)"
        )
    from sim.engine.eviction import make_policy, recompute_cost

    block_tokens = spec.block_tokens or reqs.block_tokens or scenario.scheduler.block_size
    return CacheConfig(
        block_tokens,
        spec.eviction,
        spec.offload_tier is not None,
        make_policy,
        lambda position: float(recompute_cost(position, block_tokens)),
    )


def run(
    scenario: Scenario,
    progress: Callable[[int], None] | None = None,
    skip: bool = True,
    requests: Requests | None = None,
    attempt: Callable[[int], None] | None = None,
) -> Result:
    """Simulate `scenario`, on `requests` when given (else its own). `progress(k)` is called as k
    more requests finish or are rejected; `skip=False` takes every decode step one at a time (the
    reference path for event skipping). A scenario that stops `until: converged` is simulated again
    with more requests until its intervals are narrow enough (`sim.converge`); `attempt(n)` is
    called as each run of n requests starts, and `requests` serve only the first."""
    check_runnable(scenario)
    if scenario.stop.until is None:
        return _simulate(scenario, requests, progress, skip)

    def one_attempt(n: int) -> Result:
        if attempt is not None:
            attempt(n)
        first = n == scenario.stop.requests
        return _simulate(scenario, requests if first else None, progress, skip, count=n)

    return until_converged(scenario.stop, one_attempt)


def _simulate(
    scenario: Scenario,
    requests: Requests | None,
    progress: Callable[[int], None] | None,
    skip: bool,
    count: int | None = None,
) -> Result:
    """One run of `scenario` on `requests`, or on `count` of its own (`make_requests`): the
    engine's tables and the summary of them."""
    wall = time.perf_counter()
    reqs = requests if requests is not None else make_requests(scenario, count)
    pools, transfer_s_per_token, transfer_latency_s = build_pools(scenario)
    result = simulate(
        reqs,
        pools,
        scheduler_config(scenario.scheduler),
        cluster_config(scenario, transfer_s_per_token, transfer_latency_s),
        cache_config(scenario, reqs),
        skip=skip,
        progress=progress,
    )
    requests_df = metrics.requests_table(result.requests, result.state, REASONS)
    timeseries = metrics.timeseries_table(result.recorder, result.capacity_blocks)
    prefill = prefill_clock(scenario, pools).device_seconds(*prefilled_tokens(requests_df))
    consts = run_constants(scenario, result.replicas, result.stats.events, prefill)
    per_device_hour = consts.price_per_device_hour_usd
    class_slos = {c.name: c.slo for c in scenario.workload.classes}
    summary = metrics.summarize(requests_df, timeseries, consts, scenario.slo, class_slos)
    summary.update(_cache_metrics(scenario, pools[0], result, requests_df, timeseries, per_device_hour))
    summary["sim_wall_s"] = time.perf_counter() - wall
    stack = served_by(scenario.hardware, load_stack(scenario.stack))
    summary.update(model_intervals(summary, stack, scenario.hardware.vendor))
    classes = metrics.per_class(requests_df, scenario.slo, class_slos)
    return Result(scenario, Summary(**summary), requests_df, timeseries, classes)


# Summary fields with a model-uncertainty interval: field -> (band metric, lo field, hi field).
MODEL_INTERVALS = {
    **{
        f"{m}_{p}_s": (m, f"{m}_{p}_lo_s", f"{m}_{p}_hi_s")
        for m in ("ttft", "tpot", "e2e")
        for p in ("p50", "p90", "p99")
    },
    "throughput_rps": ("throughput", "throughput_lo_rps", "throughput_hi_rps"),
    "output_tokens_per_s": ("throughput", "output_tokens_lo_per_s", "output_tokens_hi_per_s"),
}


RATES = ("throughput_rps", "output_tokens_per_s")


def model_intervals(summary: dict, stack: StackProfile | None, vendor: str = "") -> dict:
    """The `*_lo*` / `*_hi*` fields of a summary: each latency percentile and rate times the lo and hi
    of `stack`'s band for its metric under load (`serving` regime, else over all regimes) on a device
    of `vendor` (`StackProfile.band`), the 80% spread of measured / predicted on rows no fit read.
    Empty without a stack or a band.

    A rate gets its band only when the run is `overloaded`: below capacity a run serves what arrives,
    so its rate is the offered load whatever the stack's speed, and a band scaled from a benchmark's
    capacity would wrongly say it serves less (the latencies carry the stack's uncertainty then)."""
    out = {}
    for field, (metric, lo, hi) in MODEL_INTERVALS.items():
        if field in RATES and not summary.get("overloaded"):
            continue
        band = stack.band(metric, "serving", vendor) if stack is not None else None
        value = summary.get(field)
        if band is not None and value is not None:
            out[lo], out[hi] = value * band.lo, value * band.hi
    return out


def prefill_clock(scenario: Scenario, pools: list[Pool]) -> PrefillClock:
    """The device time of the front pool's prefill (`sim.cost.prefill.PrefillClock`), in the
    scheduler's chunks, on the devices behind one of its engine replicas."""
    front = pools[0]
    return PrefillClock(front.cost, scenario.scheduler.prefill_chunk, devices(scenario, front.role))


def prefilled_tokens(requests_df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The token positions each request prefilled, [start, end): from its cached prefix on, as many as
    it prefilled (a prompt recomputed after preemption counts again)."""
    start = requests_df["cached_tokens"].to_numpy(np.int64)
    return start, start + requests_df["prefilled_tokens"].to_numpy(np.int64)


def prefill_share(scenario: Scenario, busy_device_s: float, prefill_device_s: float) -> float | None:
    """The share of a run's device time (and so of its cost) that went to prefill, which its input
    tokens pay for; the rest, decode, its output tokens. Disaggregated: the prefill pool's share of
    the devices. Colocated: the prompts' prefill device-seconds (`prefill_clock`) over the busy
    device-seconds, at most 1; idle time is shared in the same proportion. None when no device was busy."""
    dis = scenario.cluster.disaggregated
    if dis is not None:
        pre = dis.prefill.replicas * dis.prefill.devices
        return pre / (pre + dis.decode.replicas * dis.decode.devices)
    if busy_device_s <= 0:
        return None
    return min(1.0, prefill_device_s / busy_device_s)


def run_constants(
    scenario: Scenario, replicas: list, events: int, prefill_device_s: float = 0.0
) -> metrics.RunConstants:
    """What the summary needs beyond the tables: the devices, their price and power, and how the
    replicas spent their time (`prefill_device_s` of it prefilling, `prefill_clock`)."""
    hw = scenario.hardware
    acc = sum(r.acc for r in replicas)
    devices_of = [devices(scenario, r.pool.role) for r in replicas]

    def device_seconds(per_replica) -> float:
        return float(sum(per_replica(r) * d for r, d in zip(replicas, devices_of, strict=True)))

    price = pricing.device_price(hw, scenario.cost)
    busy = device_seconds(lambda r: r.busy_s)
    return metrics.RunConstants(
        devices=int(sum(devices_of)),
        price_per_device_hour_usd=price.fixed_usd_per_device_hour if price else None,
        tdp_w=hw.power.tdp_w if hw.power else None,
        idle_fraction=hw.power.idle_fraction if hw.power else 0.0,
        busy_device_s=busy,
        active_device_s=device_seconds(lambda r: r.acc[ACC_ACTIVE]),
        compute_bound_s=float(acc[1]),
        memory_bound_s=float(acc[2]),
        link_s=float(acc[3]),
        electricity_usd_per_kwh=price.electricity_usd_per_kwh if price else 0.0,
        sim_wall_s=0.0,
        sim_events=events,
        **arrival_regime(scenario),
        prefill_share=prefill_share(scenario, busy, prefill_device_s),
        cost_basis=price.label if price else None,
    )


def arrival_regime(scenario: Scenario) -> dict[str, bool]:
    """Whether the arrivals have a steady state to measure (`stationary`: Poisson, gamma or
    closed-loop users, no trace replayed) and whether they keep coming regardless of the system
    (`open_loop`: Poisson or gamma), as `metrics.RunConstants` takes them."""
    workload = scenario.workload
    replays = any(c.trace is not None for c in workload.classes)
    open_loop = isinstance(workload.arrivals, Poisson | Gamma) and not replays
    return {"stationary": open_loop or isinstance(workload.arrivals, ClosedLoop), "open_loop": open_loop}


def devices(scenario: Scenario, role: str) -> int:
    """Devices behind one engine replica of the pool playing `role` (a replica's devices over its
    schedulers, `build_pool`)."""
    dis = scenario.cluster.disaggregated
    spec = scenario.parallelism if dis is None else (dis.prefill if role == "prefill" else dis.decode)
    return spec.devices // spec.split.engines


def _cache_metrics(scenario, front: Pool, result, requests_df, timeseries, per_device_hour) -> dict:
    caches = [r.cache for r in result.replicas if r.cache is not None]
    counters = {
        "cache_evictions": sum(c.evictions for c in caches),
        "offload_writes": sum(c.offloaded for c in caches),
        "offload_evictions": sum(c.offload_evictions for c in caches),
        "offload_bytes_read": float(sum(r.offload_bytes for r in result.replicas)),
        "kv_transfers": result.stats.transfers,
    }
    hashes = result.requests.block_hashes
    admitted = np.flatnonzero(~np.isnan(result.state.scheduled_s))
    hashed_blocks = float(sum(len(hashes[r]) for r in admitted)) if hashes is not None else 0.0
    prices = _cache_prices(scenario, front, per_device_hour)
    return metrics.cache_summary(requests_df, timeseries, counters, hashed_blocks, prices)


def _cache_prices(scenario: Scenario, front: Pool, per_device_hour: float | None) -> metrics.CachePrices:
    """The prices of the front pool's cache: its KV memory at the replica's share of the device price,
    the offload tier at the scenario's rate, and the prefill a cached prefix saves at the positions
    it sits at, in the scheduler's prefill chunks."""
    layout = front.layout
    chunk = scenario.scheduler.prefill_chunk
    device_usd_per_byte_s = None
    usd_per_replica_s = None
    if per_device_hour is not None:
        usd_per_replica_s = pricing.usd_per_s(per_device_hour * devices(scenario, front.role))
        device_usd_per_byte_s = pricing.capacity_usd_per_byte_s(
            usd_per_replica_s, layout.capacity_blocks * layout.block_bytes
        )
    return metrics.CachePrices(
        block_bytes=layout.block_bytes,
        device_usd_per_byte_s=device_usd_per_byte_s,
        offload_usd_per_byte_s=pricing.storage_usd_per_byte_s(scenario.cost.offload_usd_per_gb_hour),
        prefill_s=partial(prefill_s, front.cost, chunk=chunk),
        usd_per_replica_s=usd_per_replica_s,
    )
