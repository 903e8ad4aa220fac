"""The serving engine: replicas behind a router, each running iteration-level batching on simpy.

Each replica keeps its running batch as parallel numpy arrays (request id, KV tokens, prefill target,
tokens generated, output length, private blocks, shared prefix blocks) in admission order. One loop
iteration schedules a step (admit waiting requests FCFS under the token budget and sequence cap,
preempt the newest sequence when KV blocks run out), asks the cost model how long the step takes,
schedules a simpy timeout for its end, and commits the step in that timeout's callback (callbacks, not
generator processes: a replica event costs one heap entry and one call).

Event skipping: when a step is decode-only and nothing could join it, every following step has the
same members and each context grows by one, so the replica advances many steps in one numba call
(`CostModel.decode_span`), up to the first sequence finishing or the KV pool running out. An arrival
that could join the batch cuts the span short: the replica reschedules its end to the end of the step
in flight and re-plans there, exactly where the step-by-step path would have admitted it.

Token accounting: prefill of the prompt (possibly in chunks) ends with a step that samples the first
output token; each later decode step feeds one token and samples the next. A request with O output
tokens therefore takes one prefill completion and O-1 decode steps, and holds P+O-1 tokens of KV when
it finishes. Recompute preemption frees a sequence's blocks; on re-admission it prefills its prompt
plus what it had generated, and that prefill samples its next token.

Prefix caching: with block hashes on the requests, a replica keeps finished prompt blocks
(`PrefixCache`) and a later prompt that starts with them skips their prefill; an entry found in the
offload tier is reloaded when that is faster than recomputing it. Disaggregated serving: a
`prefill` replica hands a sequence off after its first token; its KV crosses the link to a `decode`
replica, and the first token reaches the user when the KV lands there.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import simpy

from sim.cost.roofline import CostModel
from sim.engine import _kernels as K
from sim.engine.cluster import Cluster
from sim.engine.kvcache import KVLayout, PrefixCache
from sim.engine.recorder import EngineStats, Recorder, RequestState
from sim.scenario import Scheduler
from workloads.arrivals import ClosedLoop
from workloads.requests import Requests

WATERMARK = 0.01  # share of KV blocks admission leaves free (vLLM's default watermark)


@dataclass(frozen=True)
class Pool:
    """Identical replicas with one role: `mixed` (prefill and decode), `prefill` or `decode`."""

    role: str
    replicas: int
    cost: CostModel
    layout: KVLayout
    swap_bytes_per_s: float = 0.0
    swap_capacity_blocks: int = 0
    offload_bytes_per_s: float = 0.0
    offload_capacity_blocks: int = 0


@dataclass(frozen=True)
class CacheConfig:
    """Prefix caching: `block_tokens` per hashed block, the eviction policy's name, whether evicted
    entries move to the offload tier, and a factory for policies."""

    block_tokens: int
    policy: str
    offload: bool
    make_policy: Callable
    recompute_cost: Callable[[int], float]


class Replica:
    def __init__(
        self,
        index: int,
        env: simpy.Environment,
        pool: Pool,
        cfg: Scheduler,
        reqs: Requests,
        state: RequestState,
        rec: Recorder,
        stats: EngineStats,
        skip: bool,
        cluster: Cluster,
        cache: CacheConfig | None,
    ):
        self.index, self.env, self.cfg, self.pool = index, env, cfg, pool
        self.cost, self.layout, self.role = pool.cost, pool.layout, pool.role
        self.reqs, self.state, self.rec, self.stats, self.skip = reqs, state, rec, stats, skip
        self.cluster = cluster
        cap = cfg.max_num_seqs
        # one row per field, one column per slot; the names below are views of its rows
        self.S = np.zeros((K.N_ROWS, cap), np.int64)
        self.rid, self.kv, self.target, self.gen = (
            self.S[K.RID],
            self.S[K.KV],
            self.S[K.TARGET],
            self.S[K.GEN],
        )
        self.out = self.S[K.OUT]
        self.blocks = self.S[K.BLOCKS]  # private blocks
        self.shared = self.S[K.SHARED]  # blocks of pinned prefix-cache entries
        self.need = np.zeros(cap, np.int64)
        self.prefill_chunk = cfg.prefill_chunk  # a computed property: read it once
        self.decode_new = np.zeros(cap, np.int64)  # new tokens of an all-decode step
        self.L = self.layout.vector()
        self.pinned: list[list[int]] = [[] for _ in range(cap)]  # hashes each slot pins
        self.n = 0
        self.waiting: deque[int] = deque()
        self.capacity_blocks = self.layout.capacity_blocks
        self.free_blocks = self.capacity_blocks
        self.watermark_blocks = int(WATERMARK * self.capacity_blocks)
        self.swap_free_blocks = pool.swap_capacity_blocks
        self.cache: PrefixCache | None = None
        if cache is not None and reqs.block_hashes is not None:
            per_entry = max(1, cache.block_tokens // cfg.block_size)
            offload_entries = pool.offload_capacity_blocks // per_entry if cache.offload else 0
            self.cache = PrefixCache(
                per_entry,
                cache.make_policy(cache.policy),
                cache.make_policy(cache.policy) if offload_entries else None,
                offload_entries,
                cache.recompute_cost,
            )
            self.block_tokens = cache.block_tokens
        self.outstanding_tokens = 0
        self.acc = np.zeros(4)  # seconds: total, compute-bound, memory-bound, link
        self.stall_s = 0.0  # swap and reload transfers inside the current step
        self.busy_s = 0.0
        self.offload_bytes = 0.0
        self.idle = True  # no step in flight: an arrival starts one
        self.timer: simpy.Timeout | None = None  # the end of the step or span in flight
        self.span: tuple | None = None  # (start time, k_max, steps, time split) of the span in flight
        self.interruptible = False

    # ---- arrivals ------------------------------------------------------------------------------------
    def enqueue(self, r: int) -> None:
        self.waiting.append(r)
        self.outstanding_tokens += self.cluster.work[r]
        if self.idle:
            self.idle = False
            self.env.timeout(0).callbacks.append(self.advance)
        elif self.interruptible:
            self.interruptible = False
            self.cut_span()

    def record(self) -> None:
        now, stats = self.env.now, self.stats
        if self.cache is None:
            used = self.capacity_blocks - self.free_blocks
            self.rec.row((now, self.index, self.n, len(self.waiting), used, 0, 0, stats.in_system))
            return
        cached, offload = self.cache.evictable_blocks, self.cache.offload_blocks
        used = self.capacity_blocks - self.free_blocks - cached
        self.rec.row((now, self.index, self.n, len(self.waiting), used, cached, offload, stats.in_system))

    def prefix_hits(self, r: int) -> int:
        """Leading prompt tokens of request r cached on this replica's device (for routing)."""
        if self.cache is None:
            return 0
        hashes = self.reqs.block_hashes[r]
        return self.cache.device_hits(hashes, len(hashes)) * self.block_tokens

    # ---- memory -----------------------------------------------------------------------------------
    def available(self) -> int:
        """Blocks an allocation can get: free ones plus cached entries nobody pins."""
        return self.free_blocks + (self.cache.evictable_blocks if self.cache else 0)

    def take(self, blocks: int) -> None:
        """Allocate `blocks`, evicting unpinned prefix-cache entries as needed."""
        while self.free_blocks < blocks:
            self.cache.evict_one()
            self.free_blocks += self.cache.blocks_per_entry
        self.free_blocks -= blocks

    # ---- the loop -----------------------------------------------------------------------------------
    # A replica is driven by callbacks on simpy timeouts: `advance` plans the next step and schedules
    # its end; the end commits the step and calls `advance` again. With nothing to do the replica goes
    # idle until `enqueue` wakes it.
    def after(self, delay: float, callback) -> None:
        self.timer = self.env.timeout(delay)
        self.timer.callbacks.append(callback)

    def advance(self, _event=None) -> None:
        """Plan the next step (or decode span) and schedule its end."""
        while True:
            if self.n == 0 and not self.waiting:
                self.idle = True
                return
            self.stats.events += 1
            new, k_max = self.plan_decodes()
            if new is None:
                new, prefill, work = self.schedule()
                if not work:  # the step lost its members to preemption: plan again
                    continue
                # a swap stall belongs to this one step
                k_max = self.span_length() if not prefill and self.skip and not self.stall_s else 0
            if k_max > 1:
                self.start_span(k_max)
                return
            n = self.n
            dt = self.cost.step_into(new[:n], self.kv[:n], K.sampled_count(self.S, n, new), self.acc)
            dt += self.stall_s
            self.busy_s += dt
            self.stall_s = 0.0
            self.stats.steps += 1
            self.step_new = new[:n]
            self.after(dt, self.end_step)
            return

    def plan_decodes(self) -> tuple[np.ndarray | None, int]:
        """`schedule` in one kernel call for the common step nobody can join (no request waiting):
        if every running sequence is decoding and their next blocks fit, grant them and return (new
        tokens, decode steps until the batch must change); otherwise (None, 0)."""
        if self.waiting or not self.skip or self.stall_s:
            return None, 0
        new = self.decode_new  # plan_decode sets new[:n] = 1; nothing reads past n
        total, k_max = K.plan_decode(self.S, self.n, self.L, self.need, new, self.available())
        if total < 0:
            return None, 0
        self.take(total)
        return new, k_max

    def end_step(self, _event) -> None:
        self.commit_step(self.step_new)
        self.advance()

    def start_span(self, k_max: int) -> None:
        """Decode k_max steps in one kernel call; an arrival that could join cuts the span short."""
        t0 = self.env.now
        acc = np.zeros(4)
        # nothing changes the batch's contexts until the span commits
        k, t_end = self.cost.decode_span(self.kv[: self.n], t0, np.inf, k_max, acc)
        self.span = (t0, k_max, k, acc)
        self.interruptible = not self.waiting and self.n < self.cfg.max_num_seqs and self.available() > 0
        self.stats.spans += 1
        self.after(t_end - t0, self.end_span)

    def cut_span(self) -> None:
        """End the span with the step in flight now, so the waiting request joins the next step."""
        t0, k_max, _, _ = self.span
        acc = np.zeros(4)
        k, t_end = self.cost.decode_span(self.kv[: self.n], t0, self.env.now, k_max, acc)
        self.timer.callbacks.remove(self.end_span)  # the old end fires with nobody listening
        self.span = (t0, k_max, k, acc)
        self.after(t_end - self.env.now, self.end_span)

    def end_span(self, _event) -> None:
        _, _, k, acc = self.span
        self.interruptible = False
        self.acc += acc
        self.busy_s += acc[0]
        self.commit_span(k)
        self.advance()

    # ---- scheduling ------------------------------------------------------------------------------------
    def span_length(self) -> int:
        """Decode steps until the batch must change: a sequence finishes or a new block is missing."""
        return int(K.span_length(self.S, self.n, self.L, self.available()))

    def schedule(self) -> tuple[np.ndarray, bool, bool]:
        """Preempt if decodes lack blocks, continue partial prefills, admit waiting requests.
        Return (new tokens per running slot, whether any prefill work is in the step, whether the
        step has any work at all)."""
        cfg = self.cfg
        budget = cfg.max_num_batched_tokens
        new = np.zeros(cfg.max_num_seqs, np.int64)
        # decodes (every running sequence whose prefill is done) need one token and maybe a block;
        # while they need more blocks than are available, the newest sequence is preempted
        total, decoding_count = K.decode_needs(self.S, self.n, self.L, self.need)
        preempted = False
        while total > self.available() and self.n:
            total -= int(self.need[self.n - 1])
            self.preempt(self.n - 1)
            preempted = True
        n = self.n
        all_decoding = decoding_count == n if not preempted else bool((self.kv[:n] >= self.target[:n]).all())
        prefill_first = cfg.priority == "prefill" and (bool(self.waiting) or not all_decoding)
        granted = 0
        if not prefill_first:
            self.take(total)
            granted = K.grant_decodes(self.S, n, self.need, new)
            budget -= granted

        has_prefill = False
        if not all_decoding:
            for i in np.flatnonzero(self.kv[:n] < self.target[:n]):  # partial prefills keep their place
                chunk = self.chunk(i, budget)
                if chunk:
                    new[i] = chunk
                    budget -= chunk
                    has_prefill = True

        while self.waiting and self.n < cfg.max_num_seqs and budget > 0:
            i = self.admit(self.waiting[0], budget)
            if i is None:
                break
            self.waiting.popleft()
            new[i] = self.chunk(i, budget)
            budget -= new[i]
            has_prefill = True

        if prefill_first and not has_prefill:  # nothing to prefill after all: run the decodes
            self.take(total)
            granted = K.grant_decodes(self.S, n, self.need, new)
        if not has_prefill and not granted and self.n:
            self.preempt(self.n - 1)  # stuck: partial prefills hold every block; free the newest
        return new, has_prefill, has_prefill or granted > 0

    def chunk(self, i: int, budget: int) -> int:
        """Prefill tokens slot i can take this step within the budget and the available blocks."""
        kv = int(self.kv[i])
        remaining = int(self.target[i]) - kv
        if self.cfg.chunked_prefill:
            tokens = min(remaining, self.prefill_chunk, budget)
        else:
            tokens = remaining if (remaining <= budget or self.n == 1) else 0
        if tokens <= 0:
            return 0
        held, avail = int(self.blocks[i] + self.shared[i]), self.available()
        extra = int(self.layout.blocks_for(kv + tokens)) - held
        if extra > avail:
            fits = lambda t: int(self.layout.blocks_for(kv + t)) - held <= avail  # noqa: E731
            if not self.cfg.chunked_prefill or not fits(1):
                return 0
            lo, hi = 1, tokens - 1  # the largest chunk whose blocks fit
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
            tokens = lo
            extra = int(self.layout.blocks_for(kv + tokens)) - held
        if extra > 0:  # admission reserved the whole prompt's blocks, so usually none
            self.take(extra)
            self.blocks[i] += extra
        return tokens

    def admit(self, r: int, budget: int) -> int | None:
        """Put request r in a new running slot if the KV blocks for its whole prompt fit, keeping a
        watermark free for the running decodes (vLLM's admission rule, which keeps long prompts
        from starving each other half-prefilled); reserve those blocks and return the slot."""
        st = self.state
        kv0 = int(st.swapped_kv[r] or st.transferred_kv[r])
        target = max(self.cluster.prompt[r] + max(int(st.generated[r]) - 1, 0), kv0)
        if not self.cfg.chunked_prefill and target - kv0 > budget and self.n > 0:
            return None
        hits, reload, hashes = 0, 0, ()
        if self.cache is not None and kv0 == 0:
            hashes = self.reqs.block_hashes[r]
            limit = min(len(hashes), (target - 1) // self.block_tokens)
            hits = self.cache.device_hits(hashes, limit)
            reload = self.offload_worth(hashes, hits, limit)
        per_entry = self.cache.blocks_per_entry if self.cache else 0
        shared = (hits + reload) * per_entry
        need = max(int(self.layout.blocks_for(max(target, 1))) - shared, 0) + reload * per_entry
        available = self.available() - (self.cache.idle_among(hashes[:hits]) * per_entry if hits else 0)
        if need > available - (self.watermark_blocks if self.n else 0):
            return None
        if hits:
            self.cache.pin(hashes[:hits])
        if reload:  # before allocating: making room may push offloaded entries out
            self.cache.reload(hashes[hits : hits + reload])
            self.reload_stall(reload)
        self.take(need)
        i = self.n
        cached = min((hits + reload) * self.block_tokens, target - 1) if shared else 0
        kv0 = max(kv0, cached)
        self.rid[i], self.kv[i], self.target[i] = r, kv0, target
        self.gen[i], self.out[i] = st.generated[r], self.cluster.output[r]
        self.blocks[i], self.shared[i] = need - reload * per_entry, shared
        self.pinned[i] = [int(h) for h in hashes[: hits + reload]] if shared else []
        if st.swapped_kv[r]:  # swap the parked KV back in
            self.swap_free_blocks += int(self.layout.blocks_for(int(st.swapped_kv[r])))
            self.stall_s += st.swapped_kv[r] * self.token_bytes / self.pool.swap_bytes_per_s
            st.swapped_kv[r] = 0
        st.transferred_kv[r] = 0
        if math.isnan(st.scheduled_s[r]):
            st.scheduled_s[r] = self.env.now
            st.replica[r] = self.index
            if shared:
                st.cached_tokens[r] = min(hits * self.block_tokens, cached) if hits else 0
                st.reloaded_tokens[r] = cached - st.cached_tokens[r]
                st.cached_blocks[r], st.reloaded_blocks[r] = hits, reload
        elif self.role == "decode":
            st.decode_replica[r] = self.index
        self.n += 1
        return i

    @property
    def token_bytes(self) -> float:
        return self.layout.block_bytes / self.layout.block_size

    def offload_worth(self, hashes, start: int, limit: int) -> int:
        """Entries after the device hits found in the offload tier, if reloading them beats
        recomputing them (transfer at the tier's bandwidth vs a prefill of those tokens)."""
        found = self.cache.offload_hits(hashes, start, limit)
        if not found:
            return 0
        tokens = found * self.block_tokens
        reload_s = tokens * self.token_bytes / self.pool.offload_bytes_per_s
        recompute_s = self.cost.step([tokens], [start * self.block_tokens], 0).total_s
        return found if reload_s < recompute_s else 0

    def reload_stall(self, entries: int) -> None:
        moved = entries * self.block_tokens * self.token_bytes
        self.offload_bytes += moved
        self.stall_s += moved / self.pool.offload_bytes_per_s

    def preempt(self, i: int) -> None:
        """Evict slot i (the newest): swap its KV out if the offload tier has room, else drop it to
        be recomputed. It goes back to the head of the queue."""
        r = int(self.rid[i])
        st = self.state
        st.preemptions[r] += 1
        st.generated[r] = self.gen[i]
        self.release(i)
        swap_blocks = int(self.layout.blocks_for(int(self.kv[i])))
        if self.cfg.preemption == "swap" and swap_blocks <= self.swap_free_blocks and self.kv[i] > 0:
            self.swap_free_blocks -= swap_blocks
            st.swapped_kv[r] = self.kv[i]
            self.stall_s += int(self.kv[i]) * self.token_bytes / self.pool.swap_bytes_per_s
        self.remove(np.array([i]))
        self.waiting.appendleft(r)

    def release(self, i: int) -> None:
        """Free slot i's private blocks and unpin its prefix-cache entries."""
        self.free_blocks += int(self.blocks[i])
        if self.pinned[i]:
            self.cache.unpin(self.pinned[i], 0, self.block_tokens)

    def remove(self, slots: np.ndarray) -> None:
        """Drop the running slots `slots` (ascending), keeping the others in order."""
        n = self.n
        if len(slots) == 1 and slots[0] == n - 1:  # the newest: nothing to shift
            self.pinned[n - 1] = []
            self.n = n - 1
            return
        self.n = int(K.compact(self.S, n, np.asarray(slots, np.int64)))
        self.compact_pinned(slots, n)

    def compact_pinned(self, slots: np.ndarray, n: int) -> None:
        """Keep `pinned` in step with the state matrix after `slots` left a batch of n."""
        if self.cache is not None:
            dropped = set(slots.tolist())
            self.pinned[: self.n] = [self.pinned[j] for j in range(n) if j not in dropped]
            for j in range(self.n, n):
                self.pinned[j] = []

    # ---- committing --------------------------------------------------------------------------------
    def commit_step(self, new: np.ndarray) -> None:
        n = len(new)
        st = self.state
        prefill_role = self.role == "prefill"
        completed, ended = K.commit_step(
            self.S, n, new, st.prefilled, st.first_token_s, self.env.now, not prefill_role
        )
        if self.cache is not None:
            for i in completed:
                self.register_prompt(i)
        if prefill_role and len(completed):
            # the first token is sampled here but reaches the user from the decode replica, unless
            # it is the only one
            rids, gen, out = self.rid[completed], self.gen[completed], self.out[completed]
            st.first_token_s[rids[gen >= out]] = self.env.now
            handoff = completed[gen < out]
            if len(handoff):
                st.generated[self.rid[handoff]] = self.gen[handoff]
                self.hand_off(handoff)
        self.finish(ended)

    def register_prompt(self, i: int) -> None:
        """Slot i finished its prompt: its blocks become prefix-cache entries (or pin equal ones)."""
        r = int(self.rid[i])
        hashes = self.reqs.block_hashes[r]
        per_entry = self.cache.blocks_per_entry
        pinned = self.pinned[i]
        full = self.cluster.prompt[r] // self.block_tokens  # only full blocks are cached
        for h in hashes[len(pinned) : full]:
            h = int(h)
            self.blocks[i] -= per_entry
            self.shared[i] += per_entry
            if not self.cache.register(h):  # someone computed it first: pin theirs, free ours
                self.free_blocks += per_entry
            pinned.append(h)

    def hand_off(self, slots: np.ndarray) -> None:
        """Prefill done on a prefill replica: release the sequences and send their KV to the decode pool."""
        for i in slots:
            r = int(self.rid[i])
            self.release(i)
            self.outstanding_tokens -= self.cluster.work[r]
            self.cluster.transfer(r, int(self.kv[i]))
        self.remove(slots)

    def commit_span(self, k: int) -> None:
        taken, ended = K.commit_span(self.S, self.n, k, self.L)
        self.take(taken)
        self.finish(ended)

    def finish(self, ended: int) -> None:
        """Retire the `ended` slots that have all their output tokens, then record the replica."""
        if ended:
            n = self.n
            slots, rids, gens, freed, self.n = K.retire(self.S, n)
            self.free_blocks += int(freed)
            if self.cache is not None:
                for i in slots.tolist():
                    if self.pinned[i]:
                        self.cache.unpin(self.pinned[i], 0, self.block_tokens)
                self.compact_pinned(slots, n)
            st = self.state
            st.finish_s[rids] = self.env.now
            st.generated[rids] = gens
            rid_list = rids.tolist()
            work = self.cluster.work
            self.outstanding_tokens -= sum(work[r] for r in rid_list)
            self.stats.in_system -= ended
            self.cluster.done(ended, rid_list)
        self.record()


@dataclass
class EngineResult:
    requests: Requests  # as served: closed-loop runs fill in the arrival times
    state: RequestState
    recorder: Recorder
    stats: EngineStats
    replicas: list[Replica]
    capacity_blocks: int


def simulate(
    reqs: Requests,
    pools: list[Pool],
    cfg: Scheduler,
    router: str = "round_robin",
    skip: bool = True,
    cache: CacheConfig | None = None,
    transfer_s_per_token: float = 0.0,
    transfer_latency_s: float = 0.0,
    progress: Callable[[int], None] | None = None,
    closed_loop: ClosedLoop | None = None,
    seed: int = 0,
    max_context_tokens: int | None = None,
) -> EngineResult:
    """Serve `reqs` on the replicas of `pools` (one `mixed` pool, or a `prefill` and a `decode`
    pool); a pure function of its arguments. With `closed_loop`, users send the requests in table
    order and their arrival times are set as the run goes (think times drawn from `seed`). A
    request whose prompt plus output exceeds `max_context_tokens` is rejected as `context_limit`."""
    env = simpy.Environment()
    if closed_loop is not None:
        reqs = replace(reqs, arrival_s=np.zeros(len(reqs)))
    state, rec, stats = RequestState(len(reqs)), Recorder(), EngineStats()
    cluster = Cluster(env, reqs, state, stats, router, transfer_s_per_token, transfer_latency_s, progress)
    cluster.max_context_tokens = max_context_tokens
    replicas: list[Replica] = []
    for pool in pools:
        for _ in range(pool.replicas):
            rep = Replica(len(replicas), env, pool, cfg, reqs, state, rec, stats, skip, cluster, cache)
            replicas.append(rep)
            (cluster.back if pool.role == "decode" else cluster.front).append(rep)
    # a request must fit the smallest KV pool it passes through, even alone
    layouts = [p.layout for p in pools]
    smallest = min(layouts, key=lambda lay: lay.capacity_blocks * lay.block_bytes)
    fits_blocks = np.asarray(smallest.blocks_for(reqs.prompt_tokens + reqs.output_tokens - 1)).tolist()
    if closed_loop is None:
        cluster.arrivals(fits_blocks, smallest.capacity_blocks, cfg)
    else:
        cluster.users(
            closed_loop, np.random.default_rng([seed, 1]), fits_blocks, smallest.capacity_blocks, cfg
        )
    if len(reqs):
        env.run(until=cluster.all_done)
    return EngineResult(reqs, state, rec, stats, replicas, smallest.capacity_blocks)
