"""A serving replica on simpy: iteration-level batching driven by timeout callbacks.

One loop iteration asks the `StepScheduler` for a step, asks the cost model how long it takes,
schedules a simpy timeout for its end, and commits the step in that timeout's callback (callbacks,
not generator processes: a replica event costs one heap entry and one call).

Event skipping: when a step is decode-only and nothing could join it, every following step has the
same members and each context grows by one, so the replica advances many steps in one numba call
(`CostModel.decode_span`), up to the first sequence finishing or the KV pool running out. An arrival
that could join the batch cuts the span short: the replica reschedules its end to the end of the step
in flight and re-plans there, exactly where the step-by-step path would have admitted it. A span takes
its steps' KV blocks (evicting cached prefixes for them) when it commits; routing that reads the prefix
cache mid-span first takes those of the steps started so far (`reserve_span`), so it sees the cache
the step-by-step path has at that time.

Token accounting: prefill of the prompt (possibly in chunks) ends with a step that samples the first
output token; each later decode step feeds one token and samples the next. A request with O output
tokens therefore takes one prefill completion and O-1 decode steps, and holds P+O-1 tokens of KV when
it finishes. Recompute preemption frees a sequence's blocks; on re-admission it prefills its prompt
plus what it had generated, and that prefill samples its next token.

Prefix caching: a finished prompt's full blocks become `PrefixCache` entries for later prompts.
Disaggregated serving: a `prefill` replica hands a sequence off after its first token; its KV crosses
the link to a `decode` replica, and the first token reaches the user when the KV lands there.
"""

from __future__ import annotations

import numpy as np
import simpy

from sim.cost.roofline import new_acc
from sim.engine import _kernels as K
from sim.engine.config import CacheConfig, Pool, SchedulerConfig
from sim.engine.context import Downstream, RunContext
from sim.engine.scheduler import StepScheduler


class Replica(StepScheduler):
    """One replica of a pool: takes requests from the cluster, runs steps until its queue and batch
    are empty, and sends finished requests (and, in a prefill pool, handed-off sequences) back."""

    def __init__(
        self,
        index: int,
        pool: Pool,
        cfg: SchedulerConfig,
        cache: CacheConfig | None,
        ctx: RunContext,
        cluster: Downstream,
    ):
        super().__init__(pool, cfg, cache, ctx.reqs.block_hashes is not None)
        self.index, self.env, self.reqs, self.skip = index, ctx.env, ctx.reqs, ctx.skip
        self.state, self.rec, self.stats = ctx.state, ctx.recorder, ctx.stats
        self.prompt, self.output, self.work = ctx.prompt, ctx.output, ctx.work
        self.cluster = cluster
        self.outstanding_tokens = 0
        self.acc = new_acc()  # seconds: total, compute-bound, memory-bound, link, active
        self.stall_s = 0.0
        self.busy_s = 0.0
        self.offload_bytes = 0.0
        self.idle = True  # no step in flight: an arrival starts one
        self.timer: simpy.Timeout | None = None  # the end of the step or span in flight
        self.span: tuple | None = None  # (start time, k_max, steps, time split) of the span in flight;
        # its steps' blocks are taken when it commits, or earlier by `reserve_span`
        self.interruptible = False
        self.group = None  # the engine whose ranks step together (`sim.engine.lockstep`), if any

    # ---- arrivals ------------------------------------------------------------------------------------
    def enqueue(self, r: int) -> None:
        self.waiting.append(r)
        self.outstanding_tokens += self.work[r]
        if self.group is not None:
            self.group.wake(self)
        elif self.idle:
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
        if self.span is not None:
            self.reserve_span()
        hashes = self.reqs.block_hashes[r]
        return self.cache.device_hits(hashes, len(hashes)) * self.block_tokens

    # ---- the loop -----------------------------------------------------------------------------------
    # A replica is driven by callbacks on simpy timeouts: `advance` plans the next step and schedules
    # its end; the end commits the step and calls `advance` again. With nothing to do the replica goes
    # idle until `enqueue` wakes it.
    def after(self, delay: float, callback) -> None:
        self.timer = self.env.timeout(delay)
        self.timer.callbacks.append(callback)

    def advance(self, _event=None) -> None:
        """Plan the next step (or decode span) and schedule its end."""
        step = self.next_step()
        if step is None:
            self.idle = True
            return
        new, prefill, k_max = step
        if k_max > 1:
            self.start_span(k_max)
            return
        n = self.n
        dt = self.cost.step_into(new[:n], self.kv[:n], K.sampled_count(self.S, n, new), self.acc)
        self.after(self.begin_step(new, prefill, dt), self.end_step)

    def next_step(self) -> tuple[np.ndarray, bool, int] | None:
        """The next step's new tokens per slot, whether it has prefill work, and the decode steps a
        span may run from it (0: one step); None with nothing to do."""
        while True:
            if self.n == 0 and not self.waiting:
                return None
            if self.n == 0:
                self.window_pos = 0  # an empty batch has no window left to finish
                self.prefilled_last = False
            self.stats.events += 1
            new, k_max = self.plan_decodes()
            if new is not None:
                return new, False, k_max
            new, prefill, work = self.schedule()
            if work:  # else the step lost its members to preemption: plan again
                # a swap stall belongs to this one step
                span = not prefill and self.skip and not self.stall_s
                return new, prefill, self.window_cap(self.span_length()) if span else 0

    def begin_step(self, new: np.ndarray, prefill: bool, dt: float) -> float:
        """Start a step of `dt` seconds of work (plus any swap stall); returns its length."""
        dt += self.stall_s
        self.busy_s += dt
        self.stall_s = 0.0
        self.stats.steps += 1
        self.step_new, self.step_prefill = new[: self.n], prefill
        return dt

    def end_step(self, _event) -> None:
        self.commit_step(self.step_new)
        self.advance_window(1, self.step_prefill)
        self.advance()

    def start_span(self, k_max: int) -> None:
        """Decode k_max steps in one kernel call; an arrival that could join cuts the span short."""
        t0 = self.env.now
        acc = new_acc()
        # nothing changes the batch's contexts until the span commits
        k, t_end = self.cost.decode_span(self.kv[: self.n], t0, np.inf, k_max, acc)
        self.span = (t0, k_max, k, acc)
        self.interruptible = not self.waiting and self.n < self.cfg.max_num_seqs and self.available() > 0
        self.stats.spans += 1
        self.after(t_end - t0, self.end_span)

    def cut_span(self) -> None:
        """End the span with the step in flight now, or with multi-step scheduling at the end of the
        window it is in, so the waiting request joins the step after."""
        t0, k_max, _, _ = self.span
        acc = new_acc()
        kv = self.kv[: self.n]
        if self.cfg.scheduler_steps > 1:
            started, _ = self.cost.decode_span(kv, t0, self.env.now, k_max, new_acc())
            k, t_end = self.cost.decode_span(kv, t0, np.inf, min(self.window_end(started), k_max), acc)
        else:
            k, t_end = self.cost.decode_span(kv, t0, self.env.now, k_max, acc)
        self.timer.callbacks.remove(self.end_span)  # the old end fires with nobody listening
        self.span = (t0, k_max, k, acc)
        self.after(t_end - self.env.now, self.end_span)

    def reserve_span(self) -> None:
        """Take the blocks of the span's steps started by now, evicting cached entries for them, as
        the step-by-step path has at this time (each of its steps takes its blocks when it starts).
        A span otherwise takes them when it commits, so whoever reads the prefix cache mid-span
        (routing by cached prefix) would see entries those steps have already evicted."""
        t0, k_max, _, _ = self.span
        k, _ = self.cost.decode_span(self.kv[: self.n], t0, self.env.now, k_max, new_acc())
        self.take(int(K.reserve_span(self.S, self.n, self.L, k)))

    def end_span(self, _event) -> None:
        _, _, k, acc = self.span
        self.span = None
        self.interruptible = False
        self.acc += acc
        self.busy_s += acc[0]
        self.commit_span(k)
        self.advance_window(k, False)
        self.advance()

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
        full = self.prompt[r] // self.block_tokens  # only full blocks are cached
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
            self.outstanding_tokens -= self.work[r]
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
            work = self.work
            self.outstanding_tokens -= sum(work[r] for r in rid_list)
            self.stats.in_system -= ended
            self.cluster.done(ended, rid_list)
        self.record()
