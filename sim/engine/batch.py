"""A replica's running batch and its KV memory.

The batch is a state matrix (`_kernels.N_ROWS` rows, one column per slot: request id, KV tokens,
prefill target, tokens generated, output length, private blocks, shared prefix blocks) in admission
order, so the numba kernels see every running sequence at once. Memory is the replica's KV blocks:
free ones, those the running sequences hold, and finished prompts kept by the `PrefixCache`, which
an allocation evicts when it runs short.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from sim.engine import _kernels as K
from sim.engine.config import CacheConfig, Pool, SchedulerConfig
from sim.engine.kvcache import PrefixCache

WATERMARK = 0.01  # share of KV blocks admission leaves free (vLLM's default watermark)


class Batch:
    """The running sequences, the queue waiting to join them, and the blocks they live in."""

    def __init__(self, pool: Pool, cfg: SchedulerConfig, cache: CacheConfig | None, hashed: bool):
        self.pool, self.cfg = pool, cfg
        self.cost, self.layout, self.role = pool.cost, pool.layout, pool.role
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
        self.prefill_chunk = cfg.prefill_chunk
        self.decode_new = np.zeros(cap, np.int64)  # new tokens of an all-decode step
        self.L = self.layout.vector()
        self.pinned: list[list[int]] = [[] for _ in range(cap)]  # hashes each slot pins
        self.n = 0
        self.waiting: deque[int] = deque()
        self.window_pos = 0  # decode steps run of the current multi-step window (`scheduler_steps`)
        self.prefilled_last = False  # the last step had prefill work (`prefill_min_waiting`)
        self.held = False  # the engine's rank balancing holds new requests back (`sim.engine.lockstep`)
        self.capacity_blocks = self.layout.capacity_blocks
        self.free_blocks = self.capacity_blocks
        self.watermark_blocks = int(WATERMARK * self.capacity_blocks)
        self.swap_free_blocks = pool.swap_capacity_blocks
        self.cache: PrefixCache | None = None
        if cache is not None and hashed:
            self.cache = prefix_cache(cache, pool, cfg.block_size)
            self.block_tokens = cache.block_tokens

    @property
    def token_bytes(self) -> float:
        return self.layout.block_bytes / self.layout.block_size

    def available(self) -> int:
        """Blocks an allocation can get: free ones plus cached entries nobody pins."""
        return self.free_blocks + (self.cache.evictable_blocks if self.cache else 0)

    def take(self, blocks: int) -> None:
        """Allocate `blocks`, evicting unpinned prefix-cache entries as needed."""
        while self.free_blocks < blocks:
            self.cache.evict_one()
            self.free_blocks += self.cache.blocks_per_entry
        self.free_blocks -= blocks

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


def prefix_cache(cache: CacheConfig, pool: Pool, block_size: int) -> PrefixCache:
    """A replica's prefix cache: entries of `cache.block_tokens`, and an offload tier of the pool's
    offload capacity when evicted entries move there."""
    per_entry = max(1, cache.block_tokens // block_size)
    offload_entries = pool.offload_capacity_blocks // per_entry if cache.offload else 0
    return PrefixCache(
        per_entry,
        cache.make_policy(cache.policy),
        cache.make_policy(cache.policy) if offload_entries else None,
        offload_entries,
        cache.recompute_cost,
    )
