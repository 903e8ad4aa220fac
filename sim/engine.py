"""The serving engine: replicas behind a router, each running iteration-level batching on simpy.

Each replica keeps its running batch as parallel numpy arrays (request id, KV tokens, prefill target,
tokens generated, output length, blocks held) in admission order. One loop iteration schedules a
step (admit waiting requests FCFS under the token budget and sequence cap, preempt the newest
sequence when KV blocks run out), asks the cost model how long the step takes, waits that long on the
simpy clock, and commits the step.

Event skipping: when a step is decode-only and nothing could join it, every following step has the
same members and each context grows by one, so the replica advances many steps in one numba call
(`CostModel.decode_span`), up to the first sequence finishing or the KV pool running out. An arrival
that could join the batch interrupts the span; the replica finishes the step in flight and
re-plans, exactly where the step-by-step path would have admitted it.

Token accounting: prefill of the prompt (possibly in chunks) ends with a step that samples the first
output token; each later decode step feeds one token and samples the next. A request with O output
tokens therefore takes one prefill completion and O-1 decode steps, and holds P+O-1 tokens of KV when
it finishes. Recompute preemption frees a sequence's blocks; on re-admission it prefills its prompt
plus what it had generated, and that prefill samples its next token.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from sim.costmodel import CostModel
from sim.kvcache import KVLayout
from sim.router import ROUTERS
from sim.scenario import Scheduler
from workloads.requests import Requests

REASONS = ("", "kv_capacity", "prompt_exceeds_batch_tokens")
WATERMARK = 0.01  # share of KV blocks admission leaves free (vLLM's default watermark)
KV_CAPACITY, PROMPT_TOO_LONG = 1, 2


@dataclass
class RequestState:
    """Per-request columns the engine fills in (seconds; NaN where it never happened)."""

    n: int

    def __post_init__(self) -> None:
        n = self.n
        self.scheduled_s = np.full(n, np.nan)
        self.first_token_s = np.full(n, np.nan)
        self.finish_s = np.full(n, np.nan)
        self.replica = np.full(n, -1, np.int32)
        self.preemptions = np.zeros(n, np.int32)
        self.rejected = np.zeros(n, np.int8)
        self.generated = np.zeros(n, np.int64)  # output tokens produced so far (kept across preemption)
        self.prefilled = np.zeros(n, np.int64)  # prompt tokens run through prefill, recomputation included
        self.swapped_kv = np.zeros(n, np.int64)  # KV tokens parked in the offload tier


class Recorder:
    """Append-only rows of the replica timeseries in typed buffers (8 bytes a value, not a Python
    object), turned into arrays once at the end."""

    def __init__(self) -> None:
        self.time_s = array("d")
        self.replica = array("i")
        self.batch = array("i")
        self.waiting = array("i")
        self.kv_blocks = array("q")
        self.in_system = array("i")

    def row(self, t, replica, batch, waiting, kv_blocks, in_system):
        self.time_s.append(t)
        self.replica.append(replica)
        self.batch.append(batch)
        self.waiting.append(waiting)
        self.kv_blocks.append(kv_blocks)
        self.in_system.append(in_system)


@dataclass
class EngineStats:
    events: int = 0
    steps: int = 0
    spans: int = 0
    in_system: int = 0
    done: int = 0


class Replica:
    def __init__(self, index: int, env: simpy.Environment, cost: CostModel, layout: KVLayout, cfg: Scheduler,
                 reqs: Requests, state: RequestState, rec: Recorder, stats: EngineStats, skip: bool,
                 swap_bytes_per_s: float, swap_capacity_blocks: int, on_done: Callable[[int], None]):
        self.index, self.env, self.cost, self.layout, self.cfg = index, env, cost, layout, cfg
        self.reqs, self.state, self.rec, self.stats, self.skip = reqs, state, rec, stats, skip
        self.on_done = on_done
        cap = cfg.max_num_seqs
        self.rid = np.zeros(cap, np.int64)
        self.kv = np.zeros(cap, np.int64)
        self.target = np.zeros(cap, np.int64)
        self.gen = np.zeros(cap, np.int64)
        self.out = np.zeros(cap, np.int64)
        self.blocks = np.zeros(cap, np.int64)
        self.n = 0
        self.waiting: deque[int] = deque()
        self.capacity_blocks = layout.capacity_blocks
        self.free_blocks = self.capacity_blocks
        self.watermark_blocks = int(WATERMARK * self.capacity_blocks)
        self.swap_bytes_per_s = swap_bytes_per_s
        self.swap_free_blocks = swap_capacity_blocks
        self.outstanding_tokens = 0
        self.acc = np.zeros(4)  # seconds: total, compute-bound, memory-bound, link
        self.stall_s = 0.0  # swap transfers inside the current step
        self.busy_s = 0.0
        self.wake: simpy.Event | None = None
        self.interruptible = False
        self.proc = env.process(self.loop())

    # ---- arrivals ------------------------------------------------------------------------------------
    def enqueue(self, r: int) -> None:
        self.waiting.append(r)
        self.outstanding_tokens += int(self.reqs.prompt_tokens[r] + self.reqs.output_tokens[r])
        if self.wake is not None and not self.wake.triggered:
            self.wake.succeed()
        elif self.interruptible:
            self.interruptible = False
            self.proc.interrupt()

    def record(self) -> None:
        self.rec.row(self.env.now, self.index, self.n, len(self.waiting), self.capacity_blocks - self.free_blocks,
                     self.stats.in_system)

    # ---- the loop -----------------------------------------------------------------------------------
    def loop(self):
        env = self.env
        while True:
            if self.n == 0 and not self.waiting:
                self.wake = env.event()
                yield self.wake
                self.wake = None
                continue
            new, prefill = self.schedule()
            n = self.n
            self.stats.events += 1
            if n == 0 or not new[:n].any():  # the step lost its members to preemption: plan again
                continue
            if not prefill and self.skip:
                k_max = self.span_length()
                if k_max > 1:
                    yield from self.run_span(k_max)
                    continue
            kv = self.kv[:n]
            sampled = int(np.count_nonzero((new[:n] > 0) & (kv + new[:n] >= self.target[:n])))
            step = self.cost.step(new[:n], kv, sampled)
            for i, t in enumerate((step.total_s, step.compute_bound_s, step.memory_bound_s, step.link_s)):
                self.acc[i] += t
            dt = step.total_s + self.stall_s
            self.busy_s += dt
            self.stall_s = 0.0
            self.stats.steps += 1
            yield env.timeout(dt)
            self.commit_step(new[:n])

    def run_span(self, k_max: int):
        """Decode k_max steps in one kernel call, unless an arrival that could join interrupts."""
        env = self.env
        t0 = env.now
        ctx = self.kv[: self.n].copy()
        acc = np.zeros(4)
        k, t_end = self.cost.decode_span(ctx, t0, np.inf, k_max, acc)
        self.interruptible = (
            not self.waiting and self.n < self.cfg.max_num_seqs and self.free_blocks > 0
        )
        self.stats.spans += 1
        try:
            yield env.timeout(t_end - t0)
        except simpy.Interrupt:
            acc[:] = 0.0
            k, t_end = self.cost.decode_span(ctx, t0, env.now, k_max, acc)
            self.interruptible = False
            yield env.timeout(t_end - env.now)
        self.interruptible = False
        self.acc += acc
        self.busy_s += acc[0]
        self.commit_span(k)

    # ---- scheduling ------------------------------------------------------------------------------------
    def span_length(self) -> int:
        """Decode steps until the batch must change: a sequence finishes or a new block is missing."""
        n = self.n
        kv, blocks = self.kv[:n], self.blocks[:n]
        k = int((self.out[:n] - self.gen[:n]).min())
        need = lambda j: int((self.layout.blocks_for(kv + j) - blocks).sum())  # noqa: E731
        if need(k) <= self.free_blocks:
            return k
        lo, hi = 1, k  # need(1) fits: schedule() allocated the first step
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if need(mid) <= self.free_blocks:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def schedule(self) -> tuple[np.ndarray, bool]:
        """Preempt if decodes lack blocks, continue partial prefills, admit waiting requests.
        Return (new tokens per running slot, whether any prefill work is in the step)."""
        cfg = self.cfg
        budget = cfg.max_num_batched_tokens
        new = np.zeros(cfg.max_num_seqs, np.int64)
        n = self.n
        # decodes (every running sequence whose prefill is done) need one token and maybe a block;
        # while they need more blocks than are free, the newest sequence is preempted
        decoding = self.kv[:n] >= self.target[:n]
        need = np.maximum(self.layout.blocks_for(self.kv[:n] + 1) - self.blocks[:n], 0) * decoding
        total = int(need.sum())
        while total > self.free_blocks and self.n:
            total -= int(need[self.n - 1])
            self.preempt(self.n - 1)
        n = self.n
        decoding, need = decoding[:n], need[:n]
        all_decoding = bool(decoding.all())
        prefill_first = cfg.priority == "prefill" and (bool(self.waiting) or not all_decoding)
        if not prefill_first:
            self.blocks[:n] += need
            self.free_blocks -= total
            new[:n] = decoding
            budget -= int(np.count_nonzero(decoding))

        has_prefill = False
        if not all_decoding:
            for i in np.flatnonzero(~decoding):  # partial prefills keep their place
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
            self.blocks[:n] += need
            self.free_blocks -= total
            new[:n] = decoding
        if not has_prefill and self.n and not new[: self.n].any():
            self.preempt(self.n - 1)  # stuck: partial prefills hold every block; free the newest
        return new, has_prefill

    def chunk(self, i: int, budget: int) -> int:
        """Prefill tokens slot i can take this step within the budget and the free blocks."""
        remaining = int(self.target[i] - self.kv[i])
        if self.cfg.chunked_prefill:
            tokens = min(remaining, self.cfg.prefill_chunk, budget)
        else:
            tokens = remaining if (remaining <= budget or self.n == 1) else 0
        kv, held = int(self.kv[i]), int(self.blocks[i])
        fits = lambda t: int(self.layout.blocks_for(kv + t)) - held <= self.free_blocks  # noqa: E731
        if tokens > 0 and not fits(tokens):
            if not self.cfg.chunked_prefill or not fits(1):
                return 0
            lo, hi = 1, tokens - 1  # the largest chunk whose blocks fit
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
            tokens = lo
        if tokens > 0:
            extra = int(self.layout.blocks_for(kv + tokens)) - held
            self.blocks[i] += extra
            self.free_blocks -= extra
        return tokens

    def admit(self, r: int, budget: int) -> int | None:
        """Put request r in a new running slot if the KV blocks for its whole prompt fit, keeping a
        watermark free for the running decodes (vLLM's admission rule, which keeps long prompts
        from starving each other half-prefilled); reserve those blocks and return the slot."""
        st = self.state
        kv0 = int(st.swapped_kv[r])
        target = int(self.reqs.prompt_tokens[r] + max(st.generated[r] - 1, 0))
        if not self.cfg.chunked_prefill and target - kv0 > budget and self.n > 0:
            return None
        target = max(target, kv0)
        need = int(self.layout.blocks_for(max(target, 1)))
        if need > self.free_blocks - (self.watermark_blocks if self.n else 0):
            return None
        i = self.n
        self.rid[i], self.kv[i], self.target[i] = r, kv0, target
        self.gen[i], self.out[i], self.blocks[i] = st.generated[r], self.reqs.output_tokens[r], need
        self.free_blocks -= need
        if kv0:  # swap the parked KV back in
            swapped = int(self.layout.blocks_for(kv0))
            self.swap_free_blocks += swapped
            self.stall_s += kv0 * self.layout.block_bytes / self.layout.block_size / self.swap_bytes_per_s
            st.swapped_kv[r] = 0
        if np.isnan(st.scheduled_s[r]):
            st.scheduled_s[r] = self.env.now
            st.replica[r] = self.index
        self.n += 1
        return i

    def preempt(self, i: int) -> None:
        """Evict slot i (the newest): swap its KV out if the offload tier has room, else drop it to
        be recomputed. It goes back to the head of the queue."""
        r = int(self.rid[i])
        st = self.state
        st.preemptions[r] += 1
        st.generated[r] = self.gen[i]
        blocks = int(self.blocks[i])
        self.free_blocks += blocks
        if self.cfg.preemption == "swap" and blocks <= self.swap_free_blocks and self.kv[i] > 0:
            self.swap_free_blocks -= blocks
            st.swapped_kv[r] = self.kv[i]
            self.stall_s += int(self.kv[i]) * self.layout.block_bytes / self.layout.block_size / self.swap_bytes_per_s
        self.remove(np.array([i]))
        self.waiting.appendleft(r)

    def remove(self, slots: np.ndarray) -> None:
        n = self.n
        if len(slots) == 1 and slots[0] == n - 1:  # the newest: nothing to shift
            self.n = n - 1
            return
        keep = np.ones(n, bool)
        keep[slots] = False
        m = int(keep.sum())
        for arr in (self.rid, self.kv, self.target, self.gen, self.out, self.blocks):
            arr[:m] = arr[:n][keep]
        self.n = m

    # ---- committing --------------------------------------------------------------------------------
    def commit_step(self, new: np.ndarray) -> None:
        n = len(new)
        kv = self.kv[:n]
        prefill = (new > 0) & (kv < self.target[:n])
        self.state.prefilled[self.rid[:n][prefill]] += new[prefill]
        kv += new
        sampled = (new > 0) & (kv >= self.target[:n])
        self.gen[:n] += sampled
        first = sampled & (self.gen[:n] == 1)
        if first.any():
            self.state.first_token_s[self.rid[:n][first]] = self.env.now
        np.maximum(self.target[:n], kv, out=self.target[:n])
        self.finish()

    def commit_span(self, k: int) -> None:
        n = self.n
        self.kv[:n] += k
        self.gen[:n] += k
        self.target[:n] = self.kv[:n]
        blocks = self.layout.blocks_for(self.kv[:n])
        self.free_blocks -= int((blocks - self.blocks[:n]).sum())
        self.blocks[:n] = blocks
        self.finish()

    def finish(self) -> None:
        n = self.n
        done = np.flatnonzero(self.gen[:n] >= self.out[:n])
        if len(done):
            rids = self.rid[:n][done]
            self.state.finish_s[rids] = self.env.now
            self.state.generated[rids] = self.gen[:n][done]
            self.free_blocks += int(self.blocks[:n][done].sum())
            self.outstanding_tokens -= int((self.reqs.prompt_tokens[rids] + self.reqs.output_tokens[rids]).sum())
            self.remove(done)
            self.stats.in_system -= len(done)
            self.on_done(len(done))
        self.record()


@dataclass
class EngineResult:
    state: RequestState
    recorder: Recorder
    stats: EngineStats
    replicas: list[Replica]
    capacity_blocks: int


def simulate(reqs: Requests, cost: CostModel, layout: KVLayout, cfg: Scheduler, replicas: int = 1,
             router: str = "round_robin", skip: bool = True, swap_bytes_per_s: float = 0.0,
             swap_capacity_blocks: int = 0, progress: Callable[[int], None] | None = None) -> EngineResult:
    """Serve `reqs` on `replicas` identical replicas; pure function of its arguments."""
    env = simpy.Environment()
    n = len(reqs)
    state = RequestState(n)
    rec = Recorder()
    stats = EngineStats()
    all_done = env.event()

    def on_done(count: int) -> None:
        stats.done += count
        if progress is not None:
            progress(count)
        if stats.done == n and not all_done.triggered:
            all_done.succeed()

    reps = [Replica(i, env, cost, layout, cfg, reqs, state, rec, stats, skip, swap_bytes_per_s,
                    swap_capacity_blocks, on_done) for i in range(replicas)]
    route = ROUTERS[router]
    fits_blocks = layout.blocks_for(reqs.prompt_tokens + reqs.output_tokens - 1)

    def arrivals():
        outstanding = [0] * replicas
        for r in range(n):
            t = reqs.arrival_s[r]
            if t > env.now:
                yield env.timeout(t - env.now)
            stats.events += 1
            if fits_blocks[r] > layout.capacity_blocks:
                state.rejected[r] = KV_CAPACITY
                on_done(1)
                continue
            if not cfg.chunked_prefill and reqs.prompt_tokens[r] > cfg.max_num_batched_tokens:
                state.rejected[r] = PROMPT_TOO_LONG
                on_done(1)
                continue
            for i, rep in enumerate(reps):
                outstanding[i] = rep.outstanding_tokens
            rep = reps[route(outstanding, r)]
            stats.in_system += 1
            rep.enqueue(r)
            rep.record()

    env.process(arrivals())
    if n:
        env.run(until=all_done)
    return EngineResult(state, rec, stats, reps, layout.capacity_blocks)
