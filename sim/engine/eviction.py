"""Prefix-cache eviction: which idle KV block to drop when a new one needs the room.

A prefix cache is a cloakroom for KV blocks. A block's hash id stands for its tokens and everything
before them, so a request whose leading blocks are on the rails skips their prefill. Blocks in use by
a running sequence are pinned (not evictable); the policy orders only the idle ones, and when the
rails are full the engine asks it for a victim.

Policies (the same victims as the kernels in sim/engine/_eviction_kernels.py and the oracles in
sim/engine/_eviction_reference.py):

- `lru`: the block whose last use is oldest.
- `lfu`: the fewest accesses since the block entered the cache (the count restarts after an
  eviction, and survives pinning); equal counts go least recent first.
- `cost`: GreedyDual-Size. Each idle block has priority H = L + cost, set when it enters the idle set
  and at each hit; the victim is the lowest H (least recent first among equals), and L becomes the
  victim's H, so blocks that sit unused age relative to newcomers. All blocks have the same size in
  bytes, so the lowest cost per byte is the lowest cost. The cost of recomputing a block is
  `recompute_cost`: a block of n tokens starting at `position_tokens` p costs, in units of one
  token's linear-layer (weight) work, n·(1 + (p + n/2)/knee_tokens), because every token does the
  same weight work plus attention over the p + (offset) tokens before it, and attention work per
  context token relative to weight work is 1/knee_tokens. For a dense transformer with N non-embedding
  parameters, L layers and query width h·d, knee_tokens = N / (2·L·h·d): 27k tokens for
  Llama-3.1-8B, 52k for Llama-3.1-70B; the default is 32,768. A block late in a long context is
  therefore the expensive one to lose. Under prefix lookups this cuts both ways: evicting an early
  block leaves its cached successors unreachable until it is recomputed, and on the Mooncake traces
  `cost` trails `lru` in prefix hit rate at most capacities (`ctxsim cache-curve`, `sim.studies.cachecurve`).

Engine protocol (every policy): a block joins the idle set with `insert(key, cost)`, freshly
computed or released by its last user; a hit on an idle block pins it with `remove(key)` until that
release; `touch(key)` is a hit on an idle block that stays idle (a plain access stream, or a copy
refreshed in an offload tier); `discard(key)` forgets a block for good, idle or pinned (moved to
another tier, or dropped); `evict()` returns the victim and forgets it. A pin and its release count
as one access: the LFU count survives the pin and grows by one at the release, which also refreshes
recency and, for `cost`, the priority. On a plain access stream (hit: `touch`; miss: `evict()` when
full, then `insert`) the hits are exactly the kernels'.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from typing import Literal, Protocol

import numpy as np

PolicyName = Literal["lru", "lfu", "cost"]
KNEE_TOKENS = 32_768.0


class EvictionPolicy(Protocol):
    """The idle (evictable) blocks of a prefix cache, ordered for eviction, plus what it remembers of
    pinned ones. Keys are block hash ids."""

    def insert(self, key: int, cost: float = 1.0) -> None:
        """`key` becomes idle: new (first access) or released from a pin (one more access). `cost` is
        its recompute cost (`recompute_cost`, or seconds: any positive unit, the same for all keys)."""

    def touch(self, key: int) -> None:
        """A hit on the idle block `key`, which stays idle."""

    def remove(self, key: int) -> None:
        """Pin the idle block `key`: not evictable until `insert` releases it."""

    def discard(self, key: int) -> None:
        """Forget `key`, idle or pinned, for good."""

    def evict(self) -> int:
        """Drop and return the victim among the idle blocks."""

    def __len__(self) -> int:
        """Idle blocks held."""

    def __contains__(self, key: object) -> bool:
        """Whether `key` is idle here."""


class LRU:
    """Least recently used: the idle block whose last insertion or hit is oldest goes first."""

    def __init__(self) -> None:
        self._order: OrderedDict[int, None] = OrderedDict()
        self._pinned: set[int] = set()

    def insert(self, key: int, cost: float = 1.0) -> None:
        if key in self._order:
            raise KeyError(f"block {key} is already idle in the cache")
        self._pinned.discard(key)
        self._order[key] = None

    def touch(self, key: int) -> None:
        self._order.move_to_end(key)

    def remove(self, key: int) -> None:
        del self._order[key]
        self._pinned.add(key)

    def discard(self, key: int) -> None:
        if key in self._order:
            del self._order[key]
        else:
            self._pinned.remove(key)

    def evict(self) -> int:
        if not self._order:
            raise KeyError("no idle block to evict")
        return self._order.popitem(last=False)[0]

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, key: object) -> bool:
        return key in self._order


class _Ranked:
    """Evicts the lowest (priority, time of last insertion or hit); a binary heap with lazy deletion.
    The priority is the access count (`by_count`) or L + cost.

    `_stamp` maps each idle key to the time of its live heap entry; `_count` and `_cost` hold idle
    and pinned keys. The heap is rebuilt from live entries when it outgrows twice the idle set."""

    by_count: bool

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int]] = []
        self._stamp: dict[int, int] = {}
        self._count: dict[int, int] = {}
        self._cost: dict[int, float] = {}
        self._clock = 0
        self._inflation = 0.0

    def _refresh(self, key: int) -> None:
        self._clock += 1
        self._stamp[key] = self._clock
        priority = float(self._count[key]) if self.by_count else self._inflation + self._cost[key]
        heapq.heappush(self._heap, (priority, self._clock, key))
        if len(self._heap) > 2 * len(self._stamp) + 16:
            self._heap = [e for e in self._heap if self._stamp.get(e[2]) == e[1]]
            heapq.heapify(self._heap)

    def insert(self, key: int, cost: float = 1.0) -> None:
        if key in self._stamp:
            raise KeyError(f"block {key} is already idle in the cache")
        self._count[key] = self._count.get(key, 0) + 1
        self._cost[key] = float(cost)
        self._refresh(key)

    def touch(self, key: int) -> None:
        if key not in self._stamp:
            raise KeyError(key)
        self._count[key] += 1
        self._refresh(key)

    def remove(self, key: int) -> None:
        del self._stamp[key]

    def discard(self, key: int) -> None:
        del self._count[key], self._cost[key]
        self._stamp.pop(key, None)

    def evict(self) -> int:
        while self._heap:
            priority, time, key = heapq.heappop(self._heap)
            if self._stamp.get(key) == time:
                del self._stamp[key], self._count[key], self._cost[key]
                self._inflation = priority
                return key
        raise KeyError("no idle block to evict")

    def __len__(self) -> int:
        return len(self._stamp)

    def __contains__(self, key: object) -> bool:
        return key in self._stamp


class LFU(_Ranked):
    """Least frequently used: fewest accesses since the block entered the cache, least recent first
    among equal counts."""

    by_count = True


class GreedyDual(_Ranked):
    """GreedyDual-Size: priority L + cost at insertion and at each hit; evicts the lowest (least
    recent first among equals) and sets L to its priority."""

    by_count = False


POLICIES: dict[str, type[LRU] | type[LFU] | type[GreedyDual]] = {"lru": LRU, "lfu": LFU, "cost": GreedyDual}


def make_policy(name: PolicyName) -> EvictionPolicy:
    """A fresh, empty policy by name: "lru", "lfu" or "cost"."""
    if name not in POLICIES:
        raise ValueError(f"unknown eviction policy {name!r}; choose from {', '.join(POLICIES)}")
    return POLICIES[name]()


def recompute_cost(position_tokens, block_tokens, knee_tokens: float = KNEE_TOKENS):
    """Work to recompute a block of `block_tokens` tokens whose first token sits at `position_tokens`,
    in token-equivalents of weight work: n·(1 + (p + n/2)/knee_tokens). Scalars or arrays."""
    n = np.asarray(block_tokens, np.float64)
    return n * (1.0 + (np.asarray(position_tokens, np.float64) + n / 2.0) / knee_tokens)
