"""Paged KV memory of one replica, counted in blocks.

A block holds `block_size` tokens of the layers whose KV grows with context. Windowed layers and SSM
state are charged in the same byte currency (a sequence of T tokens needs
ceil(seq_bytes(T) / block_bytes) blocks), so for a plain transformer blocks = ceil(T / block_size)
and for hybrids the pool is exact in bytes at block granularity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.cost.memory import MemoryPlan


@dataclass(frozen=True)
class KVLayout:
    plan: MemoryPlan
    block_size: int
    simple: bool = field(init=False)
    block_bytes: float = field(init=False)

    def __post_init__(self) -> None:
        plan = self.plan
        simple = plan.window_kv_bytes_per_token == 0 and plan.state_bytes_per_seq == 0
        per_token = plan.kv_bytes_per_token + plan.window_kv_bytes_per_token
        object.__setattr__(self, "simple", simple)  # plain attention: blocks = ceil(tokens / block_size)
        object.__setattr__(
            self, "block_bytes", self.block_size * per_token if per_token > 0 else plan.state_bytes_per_seq
        )

    @property
    def capacity_blocks(self) -> int:
        return int(self.plan.kv_pool_bytes // self.block_bytes) if self.block_bytes > 0 else 2**62

    def vector(self) -> np.ndarray:
        """This layout as the float vector sim/engine/_kernels.py reads."""
        p = self.plan
        return np.array(
            [
                float(self.simple),
                self.block_size,
                p.kv_bytes_per_token,
                p.window_kv_bytes_per_token,
                p.window,
                p.state_bytes_per_seq,
                self.block_bytes,
            ]
        )

    def blocks_for(self, tokens: np.ndarray | int) -> np.ndarray | int:
        """Blocks a sequence holding `tokens` tokens of KV needs (0 for 0 tokens)."""
        if self.simple:
            return -(-tokens // self.block_size)
        if self.block_bytes == 0:
            return np.zeros_like(tokens) if isinstance(tokens, np.ndarray) else 0
        need = np.ceil(self.plan.seq_bytes(tokens) / self.block_bytes - 1e-9).astype(np.int64)
        return np.where(tokens > 0, need, 0) if isinstance(tokens, np.ndarray) else int(need) * (tokens > 0)


class PrefixCache:
    """Full prompt blocks kept after use so a later prompt with the same prefix skips their prefill.

    Entries are keyed by block hash and shared by reference: `ref[h]` counts the running sequences
    pinning entry h; entries nobody pins sit in the eviction `policy` and are reclaimed when memory is
    short. An evicted entry moves to the offload tier (host DRAM, SSD) if there is one and it has room
    (its own policy decides what falls out of it), else it is dropped. Each entry occupies
    `blocks_per_entry` KV blocks of the device pool; `cost(position_tokens)` prices recomputing an
    entry that starts at that prompt position, for cost-aware eviction.
    """

    def __init__(
        self,
        blocks_per_entry: int,
        policy,
        offload_policy=None,
        offload_entries: int = 0,
        cost=lambda position_tokens: 1.0,
    ):
        self.blocks_per_entry = blocks_per_entry
        self.cost = cost
        self.ref: dict[int, int] = {}
        self.policy = policy
        self.offload = offload_policy
        self.offload_entries = offload_entries
        self.evictions = 0
        self.offloaded = 0
        self.offload_evictions = 0

    @property
    def evictable_blocks(self) -> int:
        return len(self.policy) * self.blocks_per_entry

    @property
    def offload_blocks(self) -> int:
        return len(self.offload) * self.blocks_per_entry if self.offload is not None else 0

    def device_hits(self, hashes, limit: int) -> int:
        """Leading entries of `hashes` (at most `limit`) present on the device."""
        k = 0
        while k < limit and int(hashes[k]) in self.ref:
            k += 1
        return k

    def offload_hits(self, hashes, start: int, limit: int) -> int:
        """Entries from `start` on (at most `limit` in all) present in the offload tier and not on
        the device (an entry recomputed on the device may keep an older copy offloaded)."""
        if self.offload is None:
            return 0
        k = start
        while k < limit and int(hashes[k]) in self.offload and int(hashes[k]) not in self.ref:
            k += 1
        return k - start

    def idle_among(self, hashes) -> int:
        """Entries of `hashes` (distinct, all on the device) that nobody pins: pinning them takes
        them out of what eviction can reclaim."""
        return sum(1 for h in {int(h) for h in hashes} if self.ref[h] == 0)

    def pin(self, hashes) -> None:
        for h in hashes:
            h = int(h)
            count = self.ref[h]
            if count == 0:
                self.policy.remove(h)
            self.ref[h] = count + 1

    def reload(self, hashes) -> None:
        """Bring offloaded entries back to the device, pinned (the caller made room)."""
        for h in hashes:
            h = int(h)
            self.offload.discard(h)
            self.ref[h] = 1

    def register(self, h: int) -> bool:
        """A sequence finished computing block h: pin the existing entry (False) or add it (True)."""
        count = self.ref.get(h)
        if count is None:
            self.ref[h] = 1
            return True
        if count == 0:
            self.policy.remove(h)
        self.ref[h] = count + 1
        return False

    def unpin(self, hashes, first_position_tokens: int, block_tokens: int) -> None:
        """Release a sequence's entries tail first, as vLLM frees blocks, so that under recency
        the end of a prefix is reclaimed before its start (a lookup stops at the first miss, so a
        lost first block would strand every entry after it)."""
        for k in range(len(hashes) - 1, -1, -1):
            h = int(hashes[k])
            count = self.ref[h] - 1
            self.ref[h] = count
            if count == 0:
                self.policy.insert(h, self.cost(first_position_tokens + k * block_tokens))

    def evict_one(self) -> None:
        h = self.policy.evict()
        del self.ref[h]
        self.evictions += 1
        if self.offload is not None and self.offload_entries > 0:
            if h in self.offload:  # an older copy is already there: refresh it
                self.offload.touch(h)
                return
            if len(self.offload) >= self.offload_entries:
                self.offload.evict()
                self.offload_evictions += 1
            self.offload.insert(h, 0.0)
            self.offloaded += 1
