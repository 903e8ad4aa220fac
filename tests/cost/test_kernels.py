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
