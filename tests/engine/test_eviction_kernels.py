"""Eviction kernels against their oracles, and the engine-facing policy classes against both."""

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine import _eviction_kernels as K
from sim.engine import _eviction_reference as R
from sim.engine.eviction import LFU, LRU, GreedyDual, make_policy

# few distinct keys and costs, so hits, evictions and priority ties are all common
accesses = st.lists(st.tuples(st.integers(0, 12), st.sampled_from([0.1, 0.7, 1.0, 2.0, 3.0])), max_size=300)
capacities = st.integers(0, 15)


def columns(stream):
    keys = np.array([k for k, _ in stream], np.int64)
    costs = np.array([c for _, c in stream], np.float64)
    return keys, costs


def drive(policy, keys, costs, capacity):
    """A plain access stream through an engine-facing policy: hit -> touch; miss -> evict if full, insert."""
    hits = []
    for key, cost in zip(keys.tolist(), costs.tolist(), strict=True):
        hit = key in policy
        hits.append(hit)
        if hit:
            policy.touch(key)
        elif capacity > 0:
            if len(policy) >= capacity:
                policy.evict()
            policy.insert(key, cost)
        assert len(policy) <= max(capacity, 0)
    return hits


def kernel(name, keys, costs, capacity):
    if name == "cost":
        return K.simulate_cost(keys, costs, capacity).tolist()
    return {"lru": K.simulate_lru, "lfu": K.simulate_lfu}[name](keys, capacity).tolist()


def oracle(name, keys, costs, capacity):
    if name == "cost":
        return R.simulate_cost(keys.tolist(), costs.tolist(), capacity)
    return {"lru": R.simulate_lru, "lfu": R.simulate_lfu}[name](keys.tolist(), capacity)


@pytest.mark.parametrize("name", ["lru", "lfu", "cost"])
@settings(deadline=None)  # the first example includes JIT compile time
@given(accesses, capacities)
def test_kernel_matches_oracle_and_class(name, stream, capacity):
    keys, costs = columns(stream)
    expected = oracle(name, keys, costs, capacity)
    assert kernel(name, keys, costs, capacity) == expected
    assert drive(make_policy(name), keys, costs, capacity) == expected


@pytest.mark.parametrize("name", ["lru", "lfu", "cost"])
def test_long_streams_with_many_hits_keep_the_oracle_victims(name, rng):
    """Many hits on a few blocks: the classes compact their lazy heaps many times over."""
    keys = np.minimum(rng.zipf(1.3, 5000), 60).astype(np.int64) - 1
    costs = rng.integers(1, 5, len(keys)).astype(np.float64)
    for capacity in (1, 3, 10, 59, 100):
        expected = oracle(name, keys, costs, capacity)
        assert kernel(name, keys, costs, capacity) == expected
        assert drive(make_policy(name), keys, costs, capacity) == expected


def test_capacity_zero_and_empty_streams_miss_everything():
    keys = np.array([1, 1, 2], np.int64)
    assert K.simulate_lru(keys, 0).tolist() == [False] * 3
    assert K.simulate_lfu(keys, 0).tolist() == [False] * 3
    assert K.simulate_cost(keys, np.ones(3), 0).tolist() == [False] * 3
    assert len(K.simulate_lru(np.empty(0, np.int64), 5)) == 0


def test_lru_pinning_returns_a_block_as_most_recent():
    p = LRU()
    for key in (1, 2, 3):
        p.insert(key)
    p.touch(1)
    p.remove(2)  # pinned by a running sequence
    assert 2 not in p and len(p) == 2
    assert p.evict() == 3
    p.insert(2)  # released
    assert [p.evict(), p.evict()] == [1, 2]


def test_lfu_counts_a_pin_and_its_release_as_one_access():
    p = LFU()
    p.insert(10)
    p.insert(20)
    p.touch(10)  # count 2
    p.remove(10)  # pinned by a running sequence
    assert 10 not in p and len(p) == 1
    assert p.evict() == 20
    p.insert(20)  # recomputed after its eviction: count 1 again
    p.insert(10)  # released: count 3, most recent
    p.insert(30)
    p.touch(30)  # count 2
    assert [p.evict(), p.evict(), p.evict()] == [20, 30, 10]


def test_greedy_dual_ages_and_prefers_cheap_blocks():
    p = GreedyDual()
    p.insert(1, cost=5.0)  # H = 5
    p.insert(2, cost=1.0)  # H = 1
    assert p.evict() == 2  # L = 1
    p.insert(3, cost=1.0)  # H = 2
    p.insert(4, cost=4.0)  # H = 5, newer than block 1
    assert [p.evict(), p.evict(), p.evict()] == [3, 1, 4]


@pytest.mark.parametrize("name", ["lru", "lfu", "cost"])
def test_discard_forgets_idle_and_pinned_blocks(name):
    p = make_policy(name)
    for key in (1, 2, 3):
        p.insert(key, cost=1.0)
    p.remove(2)
    p.discard(2)  # pinned, then moved to another tier
    p.discard(3)  # idle
    with pytest.raises(KeyError):
        p.discard(2)
    assert len(p) == 1 and p.evict() == 1
    p.insert(2)  # comes back as a new block
    assert 2 in p and len(p) == 1


@pytest.mark.parametrize("name", ["lru", "lfu", "cost"])
def test_policy_misuse_raises(name):
    p = make_policy(name)
    with pytest.raises(KeyError, match="no idle block"):
        p.evict()
    with pytest.raises(KeyError):
        p.touch(7)
    p.insert(7)
    with pytest.raises(KeyError, match="already idle"):
        p.insert(7)
    p.remove(7)
    with pytest.raises(KeyError):
        p.remove(7)
    with pytest.raises(KeyError):
        p.touch(7)  # pinned blocks are not in the eviction order
    with pytest.raises(KeyError, match="no idle block"):
        p.evict()


def test_make_policy_names_the_choices():
    with pytest.raises(ValueError, match="unknown eviction policy 'fifo'; choose from lru, lfu, cost"):
        make_policy("fifo")


@pytest.mark.benchmark
def test_lru_kernel_reaches_five_million_accesses_per_second(rng):
    keys = rng.zipf(1.2, 2_000_000).astype(np.int64) % 200_000
    K.simulate_lru(keys[:10], 5)
    t0 = time.perf_counter()
    K.simulate_lru(keys, 20_000)
    assert len(keys) / (time.perf_counter() - t0) >= 5e6
