"""`simulate`: serve a request table on replica pools, the engine's one entry point."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import simpy

from sim.engine.cluster import Cluster
from sim.engine.config import CacheConfig, ClusterConfig, Pool, SchedulerConfig
from sim.engine.context import RunContext
from sim.engine.kvcache import KVLayout
from sim.engine.lockstep import rank_groups
from sim.engine.recorder import EngineStats, Recorder, RequestState
from sim.engine.replica import Replica
from workloads.requests import Requests

OPEN_LOOP = ClusterConfig()  # requests arrive at their own times, round robin, no KV link


@dataclass
class EngineResult:
    requests: Requests  # as served: closed-loop runs fill in the arrival times
    state: RequestState
    recorder: Recorder
    stats: EngineStats
    replicas: list[Replica]
    capacity_blocks: int


def build_replicas(
    pools: list[Pool], cfg: SchedulerConfig, cache: CacheConfig | None, ctx: RunContext, hub: Cluster
) -> list[Replica]:
    """The replicas of `pools`, numbered in order, each joined to the cluster's front (mixed or
    prefill) or back (decode) pool."""
    replicas: list[Replica] = []
    for pool in pools:
        k = pool.batches_in_flight
        caps = cfg if k == 1 else replace(
            cfg, max_num_seqs=cfg.max_num_seqs * k, max_num_batched_tokens=cfg.max_num_batched_tokens * k
        )
        ranks = []
        for _ in range(pool.replicas):
            rep = Replica(len(replicas), pool, caps, cache, ctx, hub)
            replicas.append(rep)
            ranks.append(rep)
            (hub.back if pool.role == "decode" else hub.front).append(rep)
        rank_groups(ranks, pool.lockstep)
    return replicas


def smallest_layout(pools: list[Pool]) -> KVLayout:
    """The smallest KV pool a request passes through: it must fit there, even alone."""
    return min((p.layout for p in pools), key=lambda lay: lay.capacity_blocks * lay.block_bytes)


def simulate(
    reqs: Requests,
    pools: list[Pool],
    cfg: SchedulerConfig,
    cluster: ClusterConfig = OPEN_LOOP,
    cache: CacheConfig | None = None,
    *,
    skip: bool = True,
    progress: Callable[[int], None] | None = None,
) -> EngineResult:
    """Serve `reqs` on the replicas of `pools` (one `mixed` pool, or a `prefill` and a `decode`
    pool); a pure function of its arguments. With `cluster.closed_loop`, users send the requests in
    table order and their arrival times are set as the run goes. `skip=False` takes every decode
    step one at a time (the reference for event skipping); `progress(k)` is told as k more requests
    leave."""
    if cluster.closed_loop is not None:
        reqs = replace(reqs, arrival_s=np.zeros(len(reqs)))
    ctx = RunContext(simpy.Environment(), reqs, skip)
    hub = Cluster(ctx, cluster, cfg, progress)
    replicas = build_replicas(pools, cfg, cache, ctx, hub)
    smallest = smallest_layout(pools)
    fits_blocks = np.asarray(smallest.blocks_for(reqs.prompt_tokens + reqs.output_tokens - 1)).tolist()
    hub.open(fits_blocks, smallest.capacity_blocks)
    if len(reqs):
        ctx.env.run(until=hub.all_done)
    return EngineResult(reqs, ctx.state, ctx.recorder, ctx.stats, replicas, smallest.capacity_blocks)
