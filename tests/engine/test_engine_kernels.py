"""The engine's numba bookkeeping equals its plain-Python oracle on random batches."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware import load_hardware
from sim.cost.memory import memory_plan
from sim.cost.parallelism import Parallelism
from sim.engine import _kernels as K
from sim.engine import _reference as R
from sim.engine.kvcache import KVLayout
from workloads import load_model

LAYOUTS = {
    name: KVLayout(memory_plan(load_model(name), load_hardware("h200"), Parallelism(tp)), bs)
    for name, tp, bs in [("llama-3.1-8b", 1, 16), ("gemma-3-27b", 2, 16), ("jamba-v0.1", 2, 32)]
}

slots = st.lists(
    st.tuples(
        st.integers(0, 5000),
        st.integers(0, 5000),
        st.integers(0, 300),
        st.integers(1, 400),
        st.integers(0, 3),
    ),
    min_size=1,
    max_size=24,
)


def state(rows, layout):
    """A batch whose slots hold the blocks their KV needs (plus some slack)."""
    S = np.zeros((K.N_ROWS, len(rows) + 4), np.int64)
    for i, (kv, target, gen, out, slack) in enumerate(rows):
        S[K.RID, i], S[K.KV, i], S[K.TARGET, i] = i, kv, max(target, 1)
        S[K.GEN, i], S[K.OUT, i] = min(gen, out - 1), out
        S[K.BLOCKS, i] = layout.blocks_for(max(kv, target)) + slack
    return S


@settings(deadline=None)
@given(slots, st.sampled_from(sorted(LAYOUTS)))
def test_decode_needs(rows, name):
    layout = LAYOUTS[name]
    S = state(rows, layout)
    need = np.zeros(S.shape[1], np.int64)
    total, decoding = K.decode_needs(S, len(rows), layout.vector(), need)
    ref_total, ref_decoding, ref_need = R.decode_needs(S.tolist(), len(rows), layout)
    assert (total, decoding) == (ref_total, ref_decoding)
    assert need[: len(rows)].tolist() == ref_need


@settings(deadline=None)
@given(slots, st.sampled_from(sorted(LAYOUTS)), st.integers(0, 400))
def test_span_length_and_commit(rows, name, available):
    layout = LAYOUTS[name]
    S = state(rows, layout)
    n = len(rows)
    k = K.span_length(S, n, layout.vector(), available)
    assert k == R.span_length(S.tolist(), n, layout, available)
    ref = S.tolist()
    taken, ended = K.commit_span(S, n, k, layout.vector())
    assert (taken, ended) == R.commit_span(ref, n, k, layout)
    assert S.tolist() == ref
    assert K.finished(S, n).tolist() == R.finished(ref, n)
    slots, rids, gens, freed, m = K.retire(S, n)
    assert (slots.tolist(), rids.tolist(), gens.tolist(), freed, m) == R.retire(ref, n)
    assert S[:, :m].tolist() == [row[:m] for row in ref]


@settings(deadline=None)
@given(slots, st.sampled_from(sorted(LAYOUTS)), st.integers(1, 400), st.integers(0, 400))
def test_reserve_span_then_commit(rows, name, k, j):
    """Blocks reserved part-way through a span (its first j steps) plus those its commit takes are
    the blocks a commit of the whole span takes."""
    layout = LAYOUTS[name]
    S = state(rows, layout)
    n = len(rows)
    k = min(k, int((S[K.OUT, :n] - S[K.GEN, :n]).min()))
    j = min(j, k)
    whole = S.copy()
    ref = S.tolist()
    early = K.reserve_span(S, n, layout.vector(), j)
    assert early == R.reserve_span(ref, n, layout, j) and S.tolist() == ref
    assert K.reserve_span(S, n, layout.vector(), j) == 0  # repeating it takes nothing more
    taken, ended = K.commit_span(S, n, k, layout.vector())
    assert (early + taken, ended) == K.commit_span(whole, n, k, layout.vector())
    assert S.tolist() == whole.tolist()


@settings(deadline=None)
@given(slots, st.lists(st.integers(0, 600), min_size=28, max_size=28), st.booleans())
def test_commit_step(rows, new_tokens, mark_first):
    layout = LAYOUTS["llama-3.1-8b"]
    S = state(rows, layout)
    n = len(rows)
    new = np.array(new_tokens[:n], np.int64)
    prefilled, first = np.zeros(n, np.int64), np.full(n, np.nan)
    ref_S, ref_prefilled, ref_first = S.tolist(), [0] * n, [np.nan] * n
    assert K.sampled_count(S, n, new) == R.sampled_count(S.tolist(), n, new.tolist())
    done, ended = K.commit_step(S, n, new, prefilled, first, 2.5, mark_first)
    ref_done, ref_ended = R.commit_step(ref_S, n, new.tolist(), ref_prefilled, ref_first, 2.5, mark_first)
    assert (done.tolist(), ended) == (ref_done, ref_ended)
    assert ended == len(R.finished(ref_S, n))
    assert S.tolist() == ref_S and prefilled.tolist() == ref_prefilled
    assert np.array_equal(first, np.array(ref_first), equal_nan=True)


@given(st.integers(1, 20), st.data())
def test_compact(n, data):
    S = np.arange(K.N_ROWS * 24, dtype=np.int64).reshape(K.N_ROWS, 24)
    drop = sorted(data.draw(st.sets(st.integers(0, n - 1))))
    ref = S.tolist()
    m = K.compact(S, n, np.array(drop, np.int64))
    assert m == R.compact(ref, n, drop)
    assert S[:, :m].tolist() == [row[:m] for row in ref]


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_block_arithmetic_matches_layout(name):
    layout = LAYOUTS[name]
    vec = layout.vector()
    for tokens in (0, 1, 15, 16, 17, 1023, 1024, 1025, 8191, 8192, 100_000, 10_000_000):
        assert K.blocks_for(tokens, vec) == layout.blocks_for(tokens)


@settings(deadline=None)
@given(slots, st.sampled_from(sorted(LAYOUTS)))
def test_grant_decodes(rows, name):
    layout = LAYOUTS[name]
    S = state(rows, layout)
    n = len(rows)
    need = np.zeros(S.shape[1], np.int64)
    K.decode_needs(S, n, layout.vector(), need)
    new = np.zeros(S.shape[1], np.int64)
    ref_S, ref_new = S.tolist(), [0] * S.shape[1]
    assert K.grant_decodes(S, n, need, new) == R.grant_decodes(ref_S, n, need.tolist(), ref_new)
    assert S.tolist() == ref_S and new.tolist() == ref_new


@settings(deadline=None)
@given(slots, st.sampled_from(sorted(LAYOUTS)), st.integers(0, 400), st.booleans())
def test_plan_decode(rows, name, available, all_decoding):
    layout = LAYOUTS[name]
    S = state(rows, layout)
    n = len(rows)
    if all_decoding:
        S[K.TARGET, :n] = np.minimum(S[K.TARGET, :n], S[K.KV, :n])
    need, new = np.zeros(S.shape[1], np.int64), np.zeros(S.shape[1], np.int64)
    ref_S, ref_new = S.tolist(), [0] * S.shape[1]
    planned = K.plan_decode(S, n, layout.vector(), need, new, available)
    assert planned == R.plan_decode(ref_S, n, layout, ref_new, available)
    assert S.tolist() == ref_S and new.tolist() == ref_new
    total, k = planned
    if total >= 0:  # the same as planning it in steps: grant the decodes, then the span
        assert new[:n].tolist() == [1] * n and k >= 1
