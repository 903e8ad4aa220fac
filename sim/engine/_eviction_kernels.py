"""Numba kernels for prefix-cache eviction over an access sequence. Mirrors sim/engine/_eviction_reference.py.

Keys are dense block indices 0..n-1 (callers remap hash ids with np.unique(return_inverse=True)), so
per-block state lives in arrays; access i happens at time i. LRU keeps the resident blocks in a
doubly linked list threaded through two index arrays (slot n is the sentinel), so an access is O(1).
LFU and cost (GreedyDual-Size) keep the resident blocks in a binary min-heap on (priority, time of
last access) with each block's heap position in `slot`, so an access is O(log capacity). Times are
unique, so the order is total and the victim is the oracle's. Priorities never fall on an access (a
count grows; L only rises, so L + cost does not fall), so a hit sifts its entry down, and a newcomer
in a full cache takes the victim's place at the root and sifts down.
"""

import numba
import numpy as np


@numba.njit(cache=True)
def simulate_lru(keys, capacity):
    """Hit (True) or miss per access under least-recently-used eviction of `capacity` blocks."""
    n_access = keys.shape[0]
    hits = np.zeros(n_access, np.bool_)
    if n_access == 0 or capacity <= 0:
        return hits
    head = keys.max() + 1  # sentinel: nxt[head] is the most recent block, prev[head] the least recent
    prev = np.full(head + 1, head, np.int64)
    nxt = np.full(head + 1, head, np.int64)
    resident = np.zeros(head, np.bool_)
    size = 0
    for i in range(n_access):
        k = keys[i]
        if resident[k]:
            hits[i] = True
            p, q = prev[k], nxt[k]
            nxt[p] = q
            prev[q] = p
        else:
            if size == capacity:
                victim = prev[head]
                p = prev[victim]
                nxt[p] = head
                prev[head] = p
                resident[victim] = False
            else:
                size += 1
            resident[k] = True
        first = nxt[head]
        nxt[k] = first
        prev[first] = k
        prev[k] = head
        nxt[head] = k
    return hits


@numba.njit(cache=True, inline="always")
def _before(p_a, t_a, p_b, t_b):
    return p_a < p_b or (p_a == p_b and t_a < t_b)


@numba.njit(cache=True)
def _sift_down(prio, time, key, slot, size, i):
    """Move the entry at heap position i down to its place among `size` entries."""
    p, t, k = prio[i], time[i], key[i]
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and _before(prio[child + 1], time[child + 1], prio[child], time[child]):
            child += 1
        if not _before(prio[child], time[child], p, t):
            break
        prio[i], time[i], key[i] = prio[child], time[child], key[child]
        slot[key[i]] = i
        i = child
    prio[i], time[i], key[i] = p, t, k
    slot[k] = i


@numba.njit(cache=True)
def _sift_up(prio, time, key, slot, i):
    """Move the entry at heap position i up to its place."""
    p, t, k = prio[i], time[i], key[i]
    while i > 0:
        parent = (i - 1) >> 1
        if not _before(p, t, prio[parent], time[parent]):
            break
        prio[i], time[i], key[i] = prio[parent], time[parent], key[parent]
        slot[key[i]] = i
        i = parent
    prio[i], time[i], key[i] = p, t, k
    slot[k] = i


@numba.njit(cache=True)
def _simulate_ranked(keys, costs, capacity, by_count):
    """LFU (`by_count`: priority = accesses since insertion) or GreedyDual-Size (priority =
    L + cost, `costs` per access); evicts the lowest (priority, time)."""
    n_access = keys.shape[0]
    hits = np.zeros(n_access, np.bool_)
    if n_access == 0 or capacity <= 0:
        return hits
    n = keys.max() + 1
    size_max = min(capacity, n)
    prio = np.empty(size_max, np.float64)
    time = np.empty(size_max, np.int64)
    key = np.empty(size_max, np.int64)
    slot = np.full(n, -1, np.int64)  # heap position of each resident block, -1 when not cached
    count = np.zeros(n, np.int64)
    cost = np.zeros(n, np.float64)
    inflation = 0.0
    size = 0
    for i in range(n_access):
        k = keys[i]
        j = slot[k]
        appended = False
        if j >= 0:
            hits[i] = True
            count[k] += 1
        else:
            count[k] = 1
            if not by_count:
                cost[k] = costs[i]
            if size == capacity:  # the newcomer takes the victim's place at the root
                slot[key[0]] = -1
                inflation = prio[0]
                j = 0
            else:
                j = size
                size += 1
                appended = True
        prio[j] = float(count[k]) if by_count else inflation + cost[k]
        time[j] = i
        key[j] = k
        if appended:
            _sift_up(prio, time, key, slot, j)
        else:  # a hit or a replaced root only ever moves down: its priority did not fall
            _sift_down(prio, time, key, slot, size, j)
    return hits


@numba.njit(cache=True)
def simulate_lfu(keys, capacity):
    """Hit (True) or miss per access under least-frequently-used eviction of `capacity` blocks;
    the count restarts when a block is evicted, and equal counts evict the least recent first."""
    return _simulate_ranked(keys, np.empty(0, np.float64), capacity, True)


@numba.njit(cache=True)
def simulate_cost(keys, costs, capacity):
    """Hit (True) or miss per access under GreedyDual-Size eviction of `capacity` blocks, with the
    recompute cost of each access's block in `costs` (any positive unit; fixed at insertion)."""
    return _simulate_ranked(keys, costs, capacity, False)
