import dataclasses

import pytest

from dashboard.whatif import (
    answer,
    apply_knobs,
    cost_assumptions,
    device_hour_usd,
    knobs_of,
    onchip_tier,
    roofline_points,
    served,
    sram_memory,
    stack_choices,
)
from sim.cost.estimate import estimate, smallest_fit
from sim.cost.parallelism import Parallelism
from sim.scenario import CostAssumptions
from workloads import load_model


def test_untouched_knobs_give_the_preset_back(h100):
    assert apply_knobs(h100, knobs_of(h100)) is h100


def test_knobs_change_only_their_fields(h100):
    knobs = dataclasses.replace(
        knobs_of(h100),
        memory_bandwidth_bytes_per_s=5e12,
        peak_bf16_flops_per_s=1978e12,
        sram_bytes=1e8,
        scale_up_bytes_per_s=900e9,
    )
    hw = apply_knobs(h100, knobs)
    assert hw.main_tier.bandwidth_bytes_per_s == 5e12
    assert hw.main_tier.capacity_bytes == h100.main_tier.capacity_bytes
    assert hw.peak_flops.bf16 == pytest.approx(1978e12)
    assert hw.peak_flops.fp8 == pytest.approx(2 * h100.peak_flops.fp8)  # other dtypes keep their ratio
    assert onchip_tier(hw).capacity_bytes == 1e8
    assert hw.scale_up.bandwidth_bytes_per_s == 900e9
    assert hw.efficiency == h100.efficiency and hw.price == h100.price


def test_lpu_has_no_cache_tier_above_its_sram():
    from hardware import load_hardware

    lpu = load_hardware("groq-lpu")
    assert onchip_tier(lpu) is None and knobs_of(lpu).sram_bytes is None


def test_answer_is_the_estimate_on_the_fewest_devices(h100):
    from workloads import load_model

    model = load_model("llama-3.1-70b")
    got = answer(model, h100, 32_768, 512, 2)
    memory = sram_memory(h100)  # weights first in the 50 MB L2, the rest in HBM
    par = smallest_fit(model, h100, 32_768 + 512, 2, memory, 2 * 32_768)
    assert got.par == par
    assert got.estimate == estimate(model, h100, par, 32_768, 512, 2, memory)
    hourly = device_hour_usd(h100)
    e = got.estimate
    assert got.cost_per_hour_usd == pytest.approx(hourly * par.devices)
    assert got.cost_per_request_usd == pytest.approx(hourly * par.devices * e.e2e_s / 3600 / 2)
    # prefill time pays for the input tokens, the rest of the end-to-end time for the output tokens
    per_s = hourly * par.devices / 3600
    assert got.cost_per_1m_input_tokens_usd == pytest.approx(per_s * e.prefill_s / (2 * 32_768) * 1e6)
    decode_s = e.e2e_s - e.prefill_s
    assert got.cost_per_1m_output_tokens_usd == pytest.approx(per_s * decode_s / (2 * 512) * 1e6)
    assert got.cost_basis.startswith("cloud on-demand (CoreWeave")


def test_device_hour_is_the_cloud_price_or_amortised_price_plus_power_and_hosting(h100):
    assert device_hour_usd(h100) == pytest.approx(49.24 / 8)
    tco = CostAssumptions(basis="tco")
    capital, hosting, power = 30_000 / (4 * 8766), 0.7 * 184.06 / 730.5, 0.7 * 1.56 * 0.10
    assert device_hour_usd(h100, tco) == pytest.approx(capital + hosting + power)
    mine = CostAssumptions(per_device_hour_usd=2.0)
    assert answer(load_model("llama-3.1-8b"), h100, 1000, 100, 1, cost=mine).cost_per_hour_usd == 2.0


def test_roofline_places_operators_by_intensity(h100, llama8b):
    ops = roofline_points(llama8b, h100, Parallelism(1, 1), 8192, 1)
    assert set(ops["phase"]) == {"prefill", "decode"}
    assert (ops["intensity_flops_per_byte"] == ops["flops"] / ops["bytes"]).all()
    assert (ops["achieved_flops_per_s"] <= h100.peak_flops.bf16 * (1 + 1e-9)).all()
    decode = ops[ops["phase"] == "decode"]
    prefill = ops[ops["phase"] == "prefill"]
    assert decode["intensity_flops_per_byte"].max() < prefill["intensity_flops_per_byte"].max()
    assert set(decode["bound"]) == {"memory"}


def test_more_onchip_sram_shortens_decode(h100):
    """The designer's SRAM knob: an H100 whose 50 MB L2 becomes 8 GB of SRAM holding weights reads
    0.9 x 8 GB of Llama-3.1-8B's 16 GB at 5.5 TB/s instead of 3.35 TB/s, and decodes faster."""
    from workloads import load_model

    model = load_model("llama-3.1-8b")
    bigger = apply_knobs(h100, dataclasses.replace(knobs_of(h100), sram_bytes=8e9))
    before = answer(model, h100, 1000, 100, 1, Parallelism())
    after = answer(model, bigger, 1000, 100, 1, Parallelism())
    assert after.estimate.tpot_s < 0.85 * before.estimate.tpot_s


def test_own_price_scales_the_dollars_by_hand(h100):
    """$ / request = devices x $ / device-hour x end-to-end seconds / 3600 / batch, at the price typed;
    the label says the price is the user's."""
    model = load_model("llama-3.1-8b")
    mine = answer(model, h100, 4000, 200, 2, cost=cost_assumptions("cloud", "2.5"))
    e = mine.estimate
    assert mine.cost_per_request_usd == pytest.approx(mine.par.devices * 2.5 * e.e2e_s / 3600 / 2)
    assert "user-set: $2.5/device-hour" in mine.cost_basis
    doubled = answer(model, h100, 4000, 200, 2, cost=cost_assumptions("cloud", 5))
    assert doubled.cost_per_request_usd == pytest.approx(2 * mine.cost_per_request_usd)


def test_an_empty_price_field_takes_the_basis_price(h100):
    for empty in (None, "", "abc", 0, -3):
        assert cost_assumptions("tco", empty) == CostAssumptions(basis="tco")
    assert cost_assumptions("nonsense", None).basis == "cloud"
    tco = answer(load_model("llama-3.1-8b"), h100, 1000, 10, 1, cost=cost_assumptions("tco", None))
    assert tco.cost_basis.startswith("TCO")
    assert tco.device_hour_usd == device_hour_usd(h100, CostAssumptions(basis="tco"))


def test_roofline_stack_is_faster_than_typical_and_only_typical_has_a_band(h100):
    model = load_model("llama-3.1-8b")
    assert stack_choices()[0] == "typical" and {"roofline", "none", "vllm"} <= set(stack_choices())
    hw, profile = served(h100, "typical")
    typical = answer(model, hw, 8000, 100, 1, stack=profile)
    hw, profile = served(h100, "roofline")
    roofline = answer(model, hw, 8000, 100, 1, stack=profile)
    assert roofline.estimate.ttft_s < typical.estimate.ttft_s
    assert typical.estimate.ttft_lo_s < typical.estimate.ttft_s < typical.estimate.ttft_hi_s
    assert typical.estimate.stack == "typical" and roofline.estimate.stack == "roofline"
