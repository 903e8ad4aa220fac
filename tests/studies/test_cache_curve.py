"""Trace-level prefix-cache curves: unbounded hit rate equals block reuse, LRU is monotone in capacity.

`mooncake_synthetic_sample.jsonl` is the first 300 lines, byte for byte, of kvcache-ai/Mooncake
`FAST25-release/traces/synthetic_trace.jsonl` (Qin et al., FAST 2025; Apache-2.0).
"""

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.engine.eviction import KNEE_TOKENS, recompute_cost
from sim.studies.cachecurve import (
    access_hits,
    block_reuse,
    block_stream,
    cache_curve,
    capacity_grid,
    prefix_hits,
)
from tests.conftest import SHARED

DATA = Path(__file__).resolve().parents[1] / "data"
SAMPLES = ["mooncake_conversation_sample.jsonl", "mooncake_synthetic_sample.jsonl"]
FULL = ["conversation_trace.jsonl", "synthetic_trace.jsonl"]


def load(path):
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [np.array(r["hash_ids"], np.int64) for r in rows], np.array([r["input_length"] for r in rows])


def seen_before(hashes):
    """Independent count: blocks whose id appeared in an earlier position of the trace."""
    ids = [int(h) for request in hashes for h in request]
    first = {}
    for i, h in enumerate(ids):
        first.setdefault(h, i)
    return sum(first[h] < i for i, h in enumerate(ids)) / len(ids)


def show(curve):
    return curve.pivot(index="capacity_blocks", columns="policy").to_string(float_format="%.4f")


def check_unbounded(hashes, prompt_tokens):
    reuse = seen_before(hashes)
    assert block_reuse(hashes) == pytest.approx(reuse, abs=1e-15)
    distinct = len({int(h) for request in hashes for h in request})
    curve = cache_curve(hashes, [distinct, 10 * distinct], prompt_tokens=prompt_tokens)
    assert np.allclose(curve.hit_rate_blocks, reuse, rtol=0, atol=1e-12)
    return reuse


@pytest.mark.parametrize("name", SAMPLES)
def test_unbounded_cache_hit_rate_is_block_reuse_on_samples(name):
    reuse = check_unbounded(*load(DATA / name))
    assert reuse > 0.04


@pytest.mark.parametrize("name", FULL)
def test_unbounded_cache_hit_rate_is_block_reuse_on_full_traces(name):
    path = SHARED / "traces" / "mooncake-fast25" / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    hashes, prompt_tokens = load(path)
    reuse = check_unbounded(hashes, prompt_tokens)
    published = {"conversation_trace.jsonl": 0.366, "synthetic_trace.jsonl": 0.640}[name]  # SOURCE.md
    assert reuse == pytest.approx(published, abs=1e-3)
    stream = block_stream(hashes, prompt_tokens)
    curve = cache_curve(stream, capacity_grid(stream.distinct_blocks))
    print(f"\n{name}\n{show(curve)}")
    lru = curve[curve.policy == "lru"]
    assert np.all(np.diff(lru.hit_rate_blocks) >= 0) and np.all(np.diff(lru.hit_rate_tokens) >= 0)
    assert lru.hit_rate_blocks.iloc[-1] == pytest.approx(reuse, abs=1e-12)


def test_sample_curve_for_every_policy():
    hashes, prompt_tokens = load(DATA / SAMPLES[0])
    stream = block_stream(hashes, prompt_tokens)
    curve = cache_curve(stream, capacity_grid(stream.distinct_blocks))
    print(f"\n{SAMPLES[0]}\n{show(curve)}")
    assert list(curve.columns) == ["policy", "capacity_blocks", "hit_rate_blocks", "hit_rate_tokens"]
    assert set(curve.policy) == {"lru", "lfu", "cost"}
    full = curve[curve.capacity_blocks == stream.distinct_blocks]
    assert full.hit_rate_blocks.nunique() == 1  # nothing is evicted, so every policy agrees
    assert curve.hit_rate_blocks.between(0, full.hit_rate_blocks.iloc[0] + 1e-12).all()


requests = st.lists(st.lists(st.integers(0, 30), min_size=0, max_size=12), min_size=1, max_size=40)


@settings(deadline=None)
@given(requests, st.lists(st.integers(1, 60), min_size=2, max_size=6, unique=True))
def test_lru_hit_rate_never_falls_as_capacity_grows(reqs, caps):
    hashes = [np.array(r, np.int64) for r in reqs]
    if not sum(map(len, hashes)):
        return
    stream = block_stream(hashes)
    caps = sorted(caps)
    curve = cache_curve(stream, caps, ["lru"])
    assert np.all(np.diff(curve.hit_rate_blocks) >= 0)
    assert np.all(np.diff(curve.hit_rate_tokens) >= 0)
    # the stack property itself: a bigger LRU cache holds every block a smaller one holds
    small, large = access_hits(stream, caps[0], "lru"), access_hits(stream, caps[-1], "lru")
    assert not np.any(small & ~large)


def test_a_request_counts_only_its_leading_cached_blocks():
    # request 1 shares blocks 1 and 3 with request 0 but not block 2: only block 1 is a prefix hit
    hashes = [np.array([1, 2, 3]), np.array([1, 9, 3]), np.array([5])]
    stream = block_stream(hashes, prompt_tokens=np.array([1536, 1100, 10]), block_tokens=512)
    hits = access_hits(stream, 100, "lru")
    assert hits.tolist() == [False, False, False, True, False, True, False]
    assert prefix_hits(hits, stream).tolist() == [False, False, False, True, False, False, False]
    assert stream.tokens.tolist() == [512, 512, 512, 512, 512, 76, 10]
    row = cache_curve(stream, [100], ["lru"]).iloc[0]
    assert row.hit_rate_blocks == pytest.approx(1 / 7)
    assert row.hit_rate_tokens == pytest.approx(512 / (5 * 512 + 76 + 10))


def test_empty_requests_are_skipped():
    hashes = [np.array([], np.int64), np.array([4, 5]), np.array([], np.int64), np.array([4, 6])]
    curve = cache_curve(hashes, [10], ["lfu"])
    assert curve.hit_rate_blocks.iloc[0] == pytest.approx(1 / 4)


def test_recompute_cost_grows_with_position():
    assert recompute_cost(0, 512) == pytest.approx(512 * (1 + 256 / KNEE_TOKENS))
    assert recompute_cost(KNEE_TOKENS - 256, 512) == pytest.approx(1024.0)
    costs = recompute_cost(np.arange(4) * 512, 512)
    assert np.all(np.diff(costs) > 0)


def test_capacity_grid_halves_down_to_one_block():
    assert capacity_grid(1000).tolist() == [4, 8, 16, 31, 62, 125, 250, 500, 1000]
    assert capacity_grid(3).tolist() == [1, 2, 3]
