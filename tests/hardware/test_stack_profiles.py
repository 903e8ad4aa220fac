"""Serving-stack profiles: the shipped files load, applying one is idempotent and replaces what it
owns, a calibrated device keeps its curves, and no stack predicts faster than the roofline."""

from pathlib import Path

import pytest

from hardware import load_hardware
from hardware.spec import Curve, Curves, Efficiency
from hardware.stacks import (
    AS_GIVEN,
    DEFAULT_STACK,
    Band,
    StackProfile,
    apply_stack,
    load_stack,
    served_by,
    stack_names,
)
from sim.cost.estimate import estimate
from sim.cost.parallelism import Parallelism
from workloads import load_model

CALIBRATED = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "h100-sxm-calibrated.yaml"
FITTED = ("typical", "vllm", "sglang", "trtllm")


def test_every_shipped_stack_loads_and_none_means_no_profile():
    assert set(stack_names()) == {*FITTED, "roofline", AS_GIVEN}
    assert DEFAULT_STACK == "typical"
    assert load_stack("none") is None
    for name in FITTED:
        assert load_stack(name).name == name


def test_an_unknown_stack_names_the_close_ones():
    with pytest.raises(ValueError, match=r"unknown stack 'vlm'\. Did you mean: vllm"):
        load_stack("vlm")


def test_roofline_is_every_efficiency_one_and_no_overhead():
    hw = apply_stack(load_hardware("h100-sxm"), load_stack("roofline"))
    eff = hw.efficiency
    assert (eff.compute, eff.memory, eff.link, eff.moe_gemm, eff.collective) == (1, 1, 1, 1, 1)
    assert (eff.op_overhead_s, eff.step_overhead_s, hw.scale_up.latency_s) == (0, 0, 0)
    assert eff.stack == "roofline"


@pytest.mark.parametrize("name", [*FITTED, "roofline"])
def test_applying_a_stack_twice_changes_nothing(name):
    stack = load_stack(name)
    once = apply_stack(load_hardware("h200"), stack)
    assert apply_stack(once, stack) == once


def test_a_stack_leaves_a_device_it_does_not_run_on_as_written_and_gives_it_no_band():
    lpu = load_hardware("groq-lpu")
    typical = load_stack("typical")
    assert "lpu" not in typical.kinds
    assert apply_stack(lpu, typical) == lpu
    assert served_by(apply_stack(lpu, typical), typical) is None
    floor = apply_stack(lpu, load_stack("roofline"))
    assert floor.efficiency.stack == "roofline" and floor.scale_up.latency_s == 0
    est = estimate(load_model("llama-3.1-8b"), lpu, Parallelism(8, 8), 512, 64, 1, stack=typical)
    assert est.stack == "" and est.ttft_lo_s is None and est.output_tokens_hi_per_s is None


def test_a_device_carrying_one_stack_served_with_another_is_as_if_it_never_carried_the_first():
    hw = load_hardware("mi300x")
    for first in ("roofline", "trtllm"):
        assert apply_stack(apply_stack(hw, load_stack(first)), load_stack("vllm")) == apply_stack(
            hw, load_stack("vllm")
        )


def test_a_calibrated_device_keeps_its_curves_and_takes_the_stack_overheads():
    calibrated = load_hardware(CALIBRATED)
    vllm = load_stack("vllm")
    per_seq = vllm.efficiency.model_copy(update={"seq_overhead_s": 25e-6})
    stack = vllm.model_copy(update={"efficiency": per_seq})
    served = apply_stack(calibrated, stack)
    assert served.efficiency.curves == calibrated.efficiency.curves
    assert served.efficiency.calibration == calibrated.efficiency.calibration
    assert served.efficiency.step_overhead_s == stack.efficiency.step_overhead_s
    assert served.efficiency.seq_overhead_s == 25e-6
    assert served.efficiency.collective == stack.efficiency.collective
    assert served.scale_up.latency_s == stack.scale_up_latency_s
    assert apply_stack(served, stack) == served


def test_a_datasheet_preset_takes_the_whole_efficiency_block():
    stack = load_stack("trtllm")
    served = apply_stack(load_hardware("h100-sxm"), stack)
    assert served.efficiency == stack.efficiency.model_copy(update={"stack": "trtllm"})


@pytest.mark.parametrize("name", ["typical", "vllm", "sglang", "trtllm"])
def test_a_device_with_curves_measured_on_it_takes_them_and_keeps_the_stack_knobs(name):
    """Each fitted profile carries the B200's and GB200's own kernel curves (aiconfigurator's tables
    of them); a B200 takes its own, an H200 the profile's (the H100's, carried over as fractions)."""
    stack = load_stack(name)
    assert set(stack.device_curves) == {"b200", "gb200"}
    measured = stack.device_curves["b200"]
    assert "b200_sxm" in measured.source and measured.curves.gemm is not None
    assert measured.curves != stack.efficiency.curves
    b200 = apply_stack(load_hardware("b200"), stack)
    assert b200.efficiency.curves == measured.curves
    assert b200.efficiency.op_overhead_s == measured.op_overhead_s
    assert b200.efficiency.step_overhead_s == stack.efficiency.step_overhead_s
    assert b200.efficiency.collective == stack.efficiency.collective
    assert apply_stack(b200, stack) == b200
    assert apply_stack(load_hardware("h200"), stack).efficiency.curves == stack.efficiency.curves


def test_a_part_of_another_vendor_takes_the_curves_at_the_stacks_fraction_for_other_vendors():
    """A profile whose kernels reach 0.7 of their curves on other vendors' parts: an MI300X and a TPU
    take every kernel curve at 0.7 of its values; an H100 takes the curves as they are."""
    curve = Curve(size=(1e9, 1e12), efficiency=(0.4, 0.8))
    stack = StackProfile(
        name="t", description="", scale_up_latency_s=0.0, scale_up_algorithm="ring", other_vendors=0.7,
        efficiency=Efficiency(compute=0.9, memory=0.8, curves=Curves(gemm=curve, memory=curve, link=curve)),
    )
    for part in ("mi300x", "tpu-v6e"):
        served = apply_stack(load_hardware(part), stack).efficiency
        assert served.curves.gemm.efficiency == pytest.approx((0.28, 0.56))
        assert served.curves.memory.efficiency == pytest.approx((0.28, 0.56))
        assert served.curves.link == curve  # links are not kernels the tables measured
        assert (served.compute, served.memory) == pytest.approx((0.63, 0.56))
    assert apply_stack(load_hardware("h100-sxm"), stack).efficiency.curves.gemm == curve


def test_profiles_fitted_on_rows_of_other_vendors_parts_ship_their_fraction():
    """`typical` and `vllm` own AMD and TPU rows, so their files carry a fitted fraction below 1 (a
    writer that dropped the field would ship 1); TensorRT-LLM runs on NVIDIA GPUs only."""
    assert 0 < load_stack("typical").other_vendors < 1
    assert 0 < load_stack("vllm").other_vendors < 1
    assert load_stack("trtllm").other_vendors == 1.0


def test_an_interval_is_the_band_times_the_value():
    """lo 0.8 and hi 1.5 of measured / predicted put 2 s at [1.6 s, 3.0 s]; a regime without a band
    falls back to the metric's band over all regimes."""
    stack = StackProfile(
        name="t",
        description="",
        scale_up_latency_s=0.0,
        scale_up_algorithm="ring",
        uncertainty=(
            Band(metric="ttft", regime="all", lo=0.8, hi=1.5, rows=10, median_abs_error_pct=12.0),
            Band(metric="ttft", regime="serving", lo=0.5, hi=2.0, rows=10, median_abs_error_pct=30.0),
        ),
    )
    assert stack.interval(2.0, "ttft", "prefill") == pytest.approx((1.6, 3.0))
    assert stack.interval(2.0, "ttft", "serving") == pytest.approx((1.0, 4.0))
    assert stack.interval(2.0, "tpot", "decode") is None


def test_a_band_is_ordered():
    with pytest.raises(ValueError, match=r"lo \(2.0\) is above hi \(1.0\)"):
        Band(metric="tpot", regime="decode", lo=2.0, hi=1.0, rows=3, median_abs_error_pct=1.0)


@pytest.mark.parametrize("hardware", ["h100-sxm", "a100-80g-sxm", "mi300x", "tpu-v6e"])
@pytest.mark.parametrize("name", FITTED)
def test_no_stack_predicts_faster_than_the_roofline(hardware, name):
    model = load_model("llama-3.1-70b")
    par = Parallelism(8)
    floor = estimate(model, load_hardware(hardware), par, 2048, 256, 16, stack=load_stack("roofline"))
    served = estimate(model, load_hardware(hardware), par, 2048, 256, 16, stack=load_stack(name))
    assert served.ttft_s >= floor.ttft_s
    assert served.tpot_s >= floor.tpot_s
    assert served.output_tokens_per_s <= floor.output_tokens_per_s
