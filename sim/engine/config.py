"""What the engine is given, built from a scenario by `sim.api`: the scheduler's knobs, the replica
pools, the prefix cache and the cluster around the replicas. Plain frozen values, so the engine
depends on what it reads and not on the scenario file's schema."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sim.cost.roofline import CostModel
from sim.engine.batcher import Batcher
from sim.engine.kvcache import KVLayout
from workloads.arrivals import ClosedLoop


@dataclass(frozen=True)
class SchedulerConfig:
    """Iteration-level batching as in vLLM: at most `max_num_seqs` running sequences and
    `max_num_batched_tokens` new tokens a step; prompts prefill in chunks of `prefill_chunk` when
    `chunked_prefill`; `priority` (`decode` or `prefill`) says which runs first; KV is paged in
    blocks of `block_size` tokens; `preemption` is `recompute` or `swap`. With `scheduler_steps` k > 1
    (vLLM's multi-step scheduling) decode-only steps run in windows of k, and waiting requests are
    admitted only at a window's boundary. `adp_timeout_iters` above 0 balances the attention ranks
    of an engine as TensorRT-LLM does (`sim.engine.lockstep.Balance`)."""

    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    chunked_prefill: bool = True
    prefill_chunk: int = 8192
    priority: str = "decode"
    block_size: int = 16
    preemption: str = "recompute"
    scheduler_steps: int = 1
    prefill_min_waiting: int = 1
    adp_timeout_iters: int = 0
    adp_batching_wait_iters: int = 0


@dataclass(frozen=True)
class Pool:
    """Identical replicas with one role: `mixed` (prefill and decode), `prefill` or `decode`.
    `batches_in_flight` scheduler batches run at once on each (a pipeline's micro-batches), so its
    running-sequence and token caps are that many times the scheduler's."""

    role: str
    replicas: int
    cost: CostModel
    layout: KVLayout
    swap_bytes_per_s: float = 0.0
    swap_capacity_blocks: int = 0
    offload_bytes_per_s: float = 0.0
    offload_capacity_blocks: int = 0
    batches_in_flight: int = 1
    lockstep: int = 1  # consecutive replicas stepping together as one engine's attention ranks


@dataclass(frozen=True)
class CacheConfig:
    """Prefix caching: `block_tokens` per hashed block, the eviction policy's name, whether evicted
    entries move to the offload tier, and a factory for policies."""

    block_tokens: int
    policy: str
    offload: bool
    make_policy: Callable
    recompute_cost: Callable[[int], float]


@dataclass(frozen=True)
class ClusterConfig:
    """The replicas' surroundings: the `router`'s name, the KV link from prefill to decode replicas
    (seconds per token and latency), closed-loop users (think times drawn from `seed`) in place
    of the requests' own arrival times, the model's context limit: a request whose prompt plus
    output exceeds `max_context_tokens` is rejected as `context_limit` (None: no limit), and a
    front-end `batcher` that holds open-loop arrivals and sends each batch to one replica."""

    router: str = "round_robin"
    transfer_s_per_token: float = 0.0
    transfer_latency_s: float = 0.0
    closed_loop: ClosedLoop | None = None
    seed: int = 0
    max_context_tokens: int | None = None
    batcher: Batcher | None = None
