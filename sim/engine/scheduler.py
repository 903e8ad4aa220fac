"""What joins a replica's next step, as vLLM's scheduler decides it.

Running decodes get one token each and the blocks it needs; while they need more blocks than are
available the newest sequence is preempted (recompute, or swap to the offload tier when it has
room), and a step that preempted admits nobody (vLLM V0: no room for a swap-in). Partial
prefills continue in admission order, and waiting requests are admitted FCFS under
the token budget and the sequence cap when the blocks for their whole prompt fit. A prompt that
starts with cached prefix blocks skips their prefill; an entry found in the offload tier is
reloaded when that is faster than recomputing it. Transfers (swap in, reload) stall the step they
happen in (`stall_s`). With multi-step scheduling (`scheduler_steps` k > 1, vLLM 0.6-0.9's
`--num-scheduler-steps`) decode-only steps run in windows of k and waiting requests join only at a
window's boundary, so an arrival waits for the rest of the window it lands in. With
`prefill_min_waiting` m > 1, the step right after one with prefill work admits only when m requests
wait; otherwise a decode window runs first (AMD's MLPerf v5.1 vLLM patch, which alternates its
scheduling calls between admitting freely and admitting only m or more).
"""

from __future__ import annotations

import math

import numpy as np
import simpy

from sim.engine import _kernels as K
from sim.engine.batch import Batch
from sim.engine.recorder import RequestState
from workloads.requests import Requests


class StepScheduler(Batch):
    """Plans a replica's steps over its `Batch`. The replica supplies the run it belongs to."""

    index: int
    env: simpy.Environment
    reqs: Requests
    state: RequestState
    skip: bool
    prompt: list[int]
    output: list[int]
    stall_s: float  # swap and reload transfers inside the current step
    offload_bytes: float

    def plan_decodes(self) -> tuple[np.ndarray | None, int]:
        """`schedule` in one kernel call for the common step nobody can join (no request waiting):
        if every running sequence is decoding and their next blocks fit, grant them and return (new
        tokens, decode steps until the batch must change); otherwise (None, 0)."""
        if (self.waiting and self.admitting) or not self.skip or self.stall_s:
            return None, 0
        new = self.decode_new  # plan_decode sets new[:n] = 1; nothing reads past n
        total, k_max = K.plan_decode(self.S, self.n, self.L, self.need, new, self.available())
        if total < 0:
            return None, 0
        self.take(total)
        return new, self.window_cap(k_max)

    @property
    def admitting(self) -> bool:
        """Whether waiting requests may join the next step: with multi-step scheduling, only at the
        boundary of a decode window; right after a step with prefill work, only when
        `prefill_min_waiting` of them wait; never while the engine's rank balancing holds them."""
        if self.window_pos or self.held:
            return False
        return not self.prefilled_last or len(self.waiting) >= self.cfg.prefill_min_waiting

    def window_cap(self, k_max: int) -> int:
        """Decode steps a span may run: k_max, but no further than the window's end while requests
        wait to join (a window of one step when they wait only for a prefill step to pass)."""
        steps = self.cfg.scheduler_steps
        if self.waiting and (steps > 1 or self.prefilled_last):
            return min(k_max, steps - self.window_pos)
        return k_max

    def window_end(self, k: int) -> int:
        """The fewest decode steps, at least k, that end the current window (k when windows are
        single steps)."""
        return k + (-(self.window_pos + k)) % self.cfg.scheduler_steps

    def advance_window(self, steps: int, prefill: bool) -> None:
        """Count `steps` decode steps into the window; a step with prefill work ends it (an empty
        batch ends it too, where `Replica.advance` plans the next step)."""
        self.prefilled_last = prefill
        if prefill:
            self.window_pos = 0
        else:
            self.window_pos = (self.window_pos + steps) % self.cfg.scheduler_steps

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
        admitting = self.admitting and not preempted
        prefill_first = cfg.priority == "prefill" and ((bool(self.waiting) and admitting) or not all_decoding)
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

        while admitting and self.waiting and self.n < cfg.max_num_seqs and budget > 0:
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
        swapped, transferred = int(st.swapped_kv[r]), int(st.transferred_kv[r])
        generated = int(st.generated[r])
        kv0 = swapped or transferred
        target = max(self.prompt[r] + max(generated - 1, 0), kv0)
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
        self.gen[i], self.out[i] = generated, self.output[r]
        self.blocks[i], self.shared[i] = need - reload * per_entry, shared
        self.pinned[i] = [int(h) for h in hashes[: hits + reload]] if shared else []
        if swapped:  # swap the parked KV back in
            self.swap_free_blocks += int(self.layout.blocks_for(swapped))
            self.stall_s += swapped * self.token_bytes / self.pool.swap_bytes_per_s
            st.swapped_kv[r] = 0
        if transferred:
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
