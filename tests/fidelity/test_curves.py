"""Efficiency curves in the cost model: kernels match the Python oracle, defaults change nothing,
and a curve never makes an operator faster than the datasheet roofline."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hardware import load_hardware
from hardware.spec import Curve, Curves
from sim.cost import _kernels as K
from sim.cost import _reference as R
from sim.cost.legs import kernel_legs
from sim.cost.ops import build_ops
from sim.cost.optable import curve_columns
from sim.cost.parallelism import Parallelism
from sim.cost.roofline import RooflineCost
from tests.kernel_checks import decode_spans, step_times
from tests.strategies import batches
from workloads import load_model


def with_curves(hw):
    curves = Curves(
        gemm=Curve(size=(1e6, 1e9, 1e12), efficiency=(0.05, 0.5, 0.8)),
        gemm_fp8=Curve(size=(1e6, 1e12), efficiency=(0.04, 0.7)),
        attention=Curve(size=(1e5, 1e8, 1e11, 1e13), efficiency=(0.02, 0.2, 0.6, 0.7)),
        memory=Curve(size=(1e3, 1e6, 1e9), efficiency=(0.01, 0.5, 0.9)),
        attention_memory=Curve(size=(1e4, 1e8), efficiency=(0.1, 0.85)),
        link=Curve(size=(1e3, 1e8), efficiency=(0.02, 0.8)),
    )
    eff = hw.efficiency.model_copy(update={"curves": curves})
    return hw.model_copy(update={"efficiency": eff})


TABLES = {
    (name, hw, tp): build_ops(
        load_model(name).with_dtypes(dtype), with_curves(load_hardware(hw)), Parallelism(tp)
    )
    for name, hw, tp, dtype in [
        ("llama-3.1-8b", "h100-sxm", 1, None),
        ("mixtral-8x7b", "h200", 4, "fp8"),
        ("gemma-3-27b", "a100-80g-sxm", 2, None),
    ]
}


@settings(deadline=None)
@given(batches, st.sampled_from(sorted(TABLES)))
def test_step_time_with_curves_matches_reference(batch, key):
    got, want = step_times(batch, TABLES[key])
    assert got == pytest.approx(want, rel=1e-12)


@settings(deadline=None)
@given(
    st.lists(st.integers(0, 20_000), min_size=1, max_size=16),
    st.integers(1, 100),
    st.sampled_from(sorted(TABLES)),
)
def test_decode_span_with_curves_matches_step_by_step(ctx, k_max, key):
    (k, t, acc), (k_ref, t_ref, acc_ref) = decode_spans(ctx, TABLES[key], np.inf, k_max)
    assert k == k_ref
    assert t == pytest.approx(t_ref, rel=1e-9)
    assert acc == pytest.approx(acc_ref, rel=1e-9)


@given(st.floats(1.0, 1e14))
def test_curve_interpolates_in_log_size(size):
    curve = Curve(size=(1e3, 1e6), efficiency=(0.2, 0.8))
    row = np.zeros(K.N_OP_COLS)
    row[K.CURVE_F : K.CURVE_F + K.CURVE_WIDTH] = curve_columns(curve)
    expected = 0.2 if size <= 1e3 else 0.8 if size >= 1e6 else 0.2 + 0.6 * (np.log10(size) - 3) / 3
    assert K.curve_at(row[None, :], 0, K.CURVE_F, size) == pytest.approx(expected, rel=1e-12)
    assert R.curve_at(list(row), K.CURVE_F, size) == pytest.approx(expected, rel=1e-12)


def test_curves_never_beat_the_datasheet_roofline():
    model, hw = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    peak = hw.model_copy(
        update={
            "efficiency": hw.efficiency.model_copy(
                update={"compute": 1.0, "memory": 1.0, "op_overhead_s": 0.0}
            )
        }
    )
    cost, roof = RooflineCost(model, with_curves(hw)), RooflineCost(model, peak)
    for new, ctx in [([1] * 64, [4000] * 64), ([2048], [0]), ([1], [100])]:
        assert cost.step(new, ctx, len(new)).total_s >= roof.step(new, ctx, len(new)).total_s


def test_breakdown_flags_work_outside_the_measured_range():
    cost = RooflineCost(load_model("llama-3.1-8b"), with_curves(load_hardware("h100-sxm")))
    small = cost.breakdown([1], [10], 1)
    assert small["extrapolated"].any()
    assert (small["efficiency_compute"] <= 1).all() and (small["efficiency_memory"] <= 1).all()


def test_curve_rejects_bad_knots():
    with pytest.raises(ValidationError, match="strictly increasing"):
        Curve(size=(10.0, 5.0), efficiency=(0.1, 0.2))
    with pytest.raises(ValidationError, match=r"in \(0, 1\]"):
        Curve(size=(1.0, 5.0), efficiency=(0.1, 1.2))


def test_gemm_legs_take_the_curve_of_the_unit_they_run_on():
    """bf16 GEMMs take `gemm`, fp8 `gemm_fp8`, fp4 `gemm_fp4` at the fp4 peak where the part has an
    fp4 unit and a curve for it, else `gemm_fp8`'s; fp4 weights on a part without an fp4 unit
    (H100) run as bf16."""
    b200 = with_curves(load_hardware("b200"))
    fp4 = Curve(size=(1e6, 1e12), efficiency=(0.03, 0.45))
    fp4_b200 = b200.model_copy(
        update={
            "efficiency": b200.efficiency.model_copy(
                update={"curves": b200.efficiency.curves.model_copy(update={"gemm_fp4": fp4})}
            )
        }
    )
    curves, peaks = b200.efficiency.curves, b200.peak_flops
    assert kernel_legs(b200, "gemm", "bf16").curve_f == curves.gemm
    assert kernel_legs(b200, "gemm", "fp8").curve_f == curves.gemm_fp8
    assert kernel_legs(b200, "gemm", "fp4").curve_f == curves.gemm_fp8
    legs = kernel_legs(fp4_b200, "gemm", "fp4")
    assert legs.curve_f == fp4 and legs.rate_f == peaks.fp4 == 2 * peaks.fp8
    assert kernel_legs(fp4_b200, "gemm", "mxfp4").curve_f == fp4
    h100 = with_curves(load_hardware("h100-sxm"))
    legs = kernel_legs(h100, "gemm", "fp4")
    assert legs.curve_f == h100.efficiency.curves.gemm and legs.rate_f == h100.peak_flops.bf16
