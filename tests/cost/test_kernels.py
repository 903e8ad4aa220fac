import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware import _kernels as hk
from hardware import _reference as hr
from hardware import load_hardware
from sim.cost import _kernels as K
from sim.cost import _reference as R
from sim.cost.ops import build_ops
from sim.cost.parallelism import Parallelism
from tests.kernel_checks import decode_spans, step_times
from tests.strategies import batches
from workloads import load_model

TABLES = {
    name: build_ops(load_model(name), load_hardware(hw), Parallelism(tp))
    for name, hw, tp in [
        ("llama-3.1-8b", "h100-sxm", 1),
        ("llama-4-scout", "h200", 4),
        ("deepseek-v3", "b200", 8),
        ("jamba-v0.1", "mi300x", 2),
        ("gemma-3-27b", "tpu-v6e", 4),
    ]
}


@given(st.integers(1, 5000), st.integers(0, 20000), st.integers(0, 9000))
def test_window_pairs(n, c, w):
    assert K.window_pairs(n, c, w) == R.window_pairs(n, c, w)


@settings(deadline=None)
@given(batches, st.sampled_from(sorted(TABLES)))
def test_step_time_matches_reference(batch, name):
    got, want = step_times(batch, TABLES[name])
    assert got == pytest.approx(want, rel=1e-12)


@settings(deadline=None)
@given(
    st.lists(st.integers(0, 20_000), min_size=1, max_size=32),
    st.integers(1, 300),
    st.sampled_from(sorted(TABLES)),
    st.floats(0.0, 5.0),
)
def test_decode_span_matches_step_by_step(ctx, k_max, name, t_stop):
    (k, t, acc), (k_ref, t_ref, acc_ref) = decode_spans(ctx, TABLES[name], t_stop, k_max)
    assert k == k_ref
    assert t == pytest.approx(t_ref, rel=1e-9)
    assert acc == pytest.approx(acc_ref, rel=1e-9)


@given(
    st.lists(
        st.tuples(
            st.floats(0, 1e15),
            st.floats(0, 1e12),
            st.floats(1e9, 1e16),
            st.floats(1e8, 1e13),
            st.floats(0, 1e-4),
        ),
        min_size=1,
        max_size=64,
    )
)
def test_roofline_kernel_matches_reference(rows):
    cols = [np.array(c) for c in zip(*rows, strict=True)]
    times, bound = hk.empty_like(cols[0])
    total = hk.roofline(*cols, times, bound)
    ref_total, ref_times, ref_bound = hr.roofline(*(c.tolist() for c in cols))
    assert total == pytest.approx(ref_total, rel=1e-12)
    assert times.tolist() == pytest.approx(ref_times, rel=1e-12)
    assert bound.tolist() == ref_bound


GROUPS = {
    name: build_ops(load_model(name), load_hardware(hw), par)
    for name, hw, par in [
        ("deepseek-v3", "b200", Parallelism(attention_dp=8, ep=8)),
        ("qwen3-30b-a3b", "h100-sxm", Parallelism(tp=2, attention_dp=4)),  # experts tensor-split, shared
        ("gpt-oss-120b", "h200", Parallelism(attention_dp=4, ep=4)),  # sliding-window layers
    ]
}


@settings(deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 20_000), min_size=1, max_size=12), min_size=1, max_size=4),
    st.integers(1, 120),
    st.sampled_from(sorted(GROUPS)),
    st.floats(0.0, 3.0),
)
def test_group_decode_span_matches_group_steps_one_at_a_time(ctxs, k_max, name, t_stop):
    table = GROUPS[name]
    ranks = 8 if name == "deepseek-v3" else 4
    args = table.kernel_args
    accs = np.zeros((len(ctxs), K.N_ACC))
    starts = np.cumsum([0] + [len(c) for c in ctxs]).astype(np.int64)
    flat = np.array([c for cs in ctxs for c in cs], np.int64)
    k, t = K.group_decode_span(flat, starts, float(ranks), *args, table.shared, 0.0, t_stop, k_max, accs)
    plain = [a.tolist() if isinstance(a, np.ndarray) else a for a in args]
    shared = table.shared.tolist()
    k_ref, t_ref, accs_ref = R.group_decode_span(ctxs, ranks, *plain, shared, 0.0, t_stop, k_max)
    assert k == k_ref
    assert t == pytest.approx(t_ref, rel=1e-9)
    assert accs.tolist() == [pytest.approx(a, rel=1e-9) for a in accs_ref]
