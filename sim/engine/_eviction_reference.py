"""Plain-Python oracles for the prefix-cache eviction kernels in sim/engine/_eviction_kernels.py.

Each function replays an access sequence against a cache of `capacity` blocks and returns, per
access, whether the block was resident. A miss inserts the block, evicting one first when the cache
is full; a hit refreshes it. Access i happens at time i, so recency ties cannot occur.

- LRU evicts the block whose last access is oldest.
- LFU evicts the block with the fewest accesses since it was inserted (the count restarts at 1 when
  an evicted block comes back); among equal counts, the one whose last access is oldest.
- Cost (GreedyDual-Size) gives each block the priority L + cost, set at insertion and again at each
  hit, where cost is the one given with the access that inserted it and L is the priority of the
  last block evicted (0 before any eviction). It evicts the lowest priority, oldest last access first
  among equals, then sets L to the victim's priority.

The victims are found by scanning every resident block: slow and obviously right.
"""

from collections import OrderedDict


def simulate_lru(keys: list[int], capacity: int) -> list[bool]:
    """Hit (True) or miss per access under least-recently-used eviction."""
    cache: OrderedDict[int, None] = OrderedDict()
    hits = []
    for key in keys:
        hit = key in cache
        hits.append(hit)
        if hit:
            cache.move_to_end(key)
        elif capacity > 0:
            if len(cache) >= capacity:
                cache.popitem(last=False)
            cache[key] = None
    return hits


def simulate_lfu(keys: list[int], capacity: int) -> list[bool]:
    """Hit (True) or miss per access under least-frequently-used eviction, ties to the least recent."""
    count: dict[int, int] = {}
    last: dict[int, int] = {}
    hits = []
    for time, key in enumerate(keys):
        hit = key in count
        hits.append(hit)
        if hit:
            count[key] += 1
            last[key] = time
        elif capacity > 0:
            if len(count) >= capacity:
                victim = min(count, key=lambda k: (count[k], last[k]))
                del count[victim], last[victim]
            count[key] = 1
            last[key] = time
    return hits


def simulate_cost(keys: list[int], costs: list[float], capacity: int) -> list[bool]:
    """Hit (True) or miss per access under GreedyDual-Size eviction with the given per-access costs."""
    priority: dict[int, float] = {}
    cost: dict[int, float] = {}
    last: dict[int, int] = {}
    inflation = 0.0
    hits = []
    for time, (key, access_cost) in enumerate(zip(keys, costs, strict=True)):
        hit = key in priority
        hits.append(hit)
        if hit:
            priority[key] = inflation + cost[key]
            last[key] = time
        elif capacity > 0:
            if len(priority) >= capacity:
                victim = min(priority, key=lambda k: (priority[k], last[k]))
                inflation = priority[victim]
                del priority[victim], cost[victim], last[victim]
            cost[key] = access_cost
            priority[key] = inflation + access_cost
            last[key] = time
    return hits
