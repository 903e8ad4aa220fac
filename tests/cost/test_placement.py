"""Memory placement by hand: weights, KV and activations on named tiers, KV spilled to a lower tier
and read at its bandwidth, the activation reserve sized from the token budget, weights sharded over
as many SRAM-only chips as they need."""

import numpy as np
import pytest

from hardware import load_hardware
from hardware.spec import Accelerator
from sim.cost.estimate import Memory, estimate, min_devices_for_weights, smallest_fit
from sim.cost.memory import TierPlacement, activation_bytes_per_token, memory_plan
from sim.cost.parallelism import ConfigError, Parallelism
from sim.cost.roofline import RooflineCost
from sim.runnable import scenario_from_dict
from sim.scenario import ScenarioError
from tests import kernel_checks
from workloads import load_model

SPILL_HOST = TierPlacement(kv_spill="host")


def with_capacity(hw: Accelerator, tier: str, capacity_bytes: float) -> Accelerator:
    """`hw` with one memory tier resized: an on-chip SRAM what-if."""
    tiers = [{**t.model_dump(), "capacity_bytes": capacity_bytes} if t.name == tier else t.model_dump()
             for t in hw.memory]
    return Accelerator.model_validate({**hw.model_dump(), "memory": tiers})


@pytest.fixture(scope="module")
def llama8b():
    return load_model("llama-3.1-8b")


@pytest.fixture(scope="module")
def llama70b_int8():
    return load_model("llama-3.3-70b").with_dtypes("int8", None)


def test_activation_reserve_is_the_token_budget_times_the_per_token_width():
    """Llama-3.1-70B at tp 8: (4 x 8192 + 2 x 28672 / 8) x 2 B = 79,872 B a token, on every device."""
    m, hw, par = load_model("llama-3.1-70b"), load_hardware("h200"), Parallelism(8)
    assert activation_bytes_per_token(m, par) == 79_872
    for budget in (256, 2048, 8192):
        assert memory_plan(m, hw, par, 0.9, budget).workspace_bytes_per_device == budget * 79_872


def test_estimate_reserves_the_largest_step_the_batch_forms(llama8b):
    """One 1,000-token prompt under an 8,192-token budget reserves 1,000 tokens; 16 of them, the budget."""
    hw, per_token = load_hardware("h100-sxm"), activation_bytes_per_token(llama8b, Parallelism())
    one = estimate(llama8b, hw, Parallelism(), 1000, 100, 1)
    full = memory_plan(llama8b, hw, Parallelism(), 0.9, 1000)
    assert one.kv_capacity_tokens == full.kv_capacity_tokens
    assert full.workspace_bytes_per_device == 1000 * per_token
    sixteen = estimate(llama8b, hw, Parallelism(), 1000, 100, 16)
    assert sixteen.kv_capacity_tokens == memory_plan(llama8b, hw, Parallelism(), 0.9, 8192).kv_capacity_tokens


def test_lpu_chip_count_by_hand(llama70b_int8):
    """Llama-3.3-70B in int8 (70,552,387,584 B) on 230 MB-SRAM LPUs, one 1,000 + 200-token request:
    a chip uses 0.9 x 230 MB = 207 MB, less a 1,000-token reserve of 79,872,000 B at tp 8, for 1/n of
    the weights and of the 1,200 x 327,680 B of KV: n >= 70.946e9 / 127.128e6 = 558.06, so 559, and
    at tp 8 the next multiple, 560 chips in 70 stages."""
    hw = load_hardware("groq-lpu")
    usable = 0.9 * 230e6 - 1000 * 79_872
    need = (70_552_387_584 + 1200 * 327_680) / usable
    assert 558 < need < 559
    assert min_devices_for_weights(llama70b_int8, hw) == 341  # ceil(70.552e9 / 207e6), before the reserve
    assert smallest_fit(llama70b_int8, hw, 1200, 1, step_tokens=1000) == Parallelism(8, 70)
    est = estimate(llama70b_int8, hw, Parallelism(8, 70), 1000, 200)
    assert est.fits and est.weights_bytes_per_device == pytest.approx(70_552_387_584 / 560)
    assert not estimate(llama70b_int8, hw, Parallelism(8, 69), 1000, 200).fits


def test_lpu_reads_weights_at_sram_speed(llama70b_int8):
    """A token's FFN weights on one tp rank, through all 70 stages (1/8 of 80 x 3 x 8192 x 28672 int8),
    and its activations stream at the SRAM's 80 TB/s x 0.85."""
    hw = load_hardware("groq-lpu")
    df = RooflineCost(llama70b_int8, hw, Parallelism(8, 70)).breakdown([1], [1000], 1)
    ffn = df[df["op"].str.endswith(".ffn")].iloc[0]
    weights = 80 * 3 * 8192 * 28672 / 8
    assert ffn["memory_s"] == pytest.approx((weights + 80 * 2 * (2 * 8192 + 3 * 28672 / 8)) / (80e12 * 0.85))


def test_the_default_placement_is_the_main_tier(llama8b):
    hw = load_hardware("h100-sxm")
    plan = memory_plan(llama8b, hw, Parallelism())
    assert plan.weights_bandwidth_bytes_per_s == plan.kv_bandwidth_bytes_per_s == 3.35e12
    assert plan.kv_spill_bytes_per_device == 0 and plan.spill_from_tokens == np.inf
    with_default = RooflineCost(llama8b, hw, Parallelism(), plan)
    assert with_default.step([1], [4096], 1) == RooflineCost(llama8b, hw).step([1], [4096], 1)


def test_kv_spill_pool_and_threshold(llama8b):
    """Spilling to the H200's host tier adds 0.9 x 256 GB of KV space; the H200's own KV space is
    0.9 x 141 GB less weights and reserve, holding that many bytes / 131,072 B a token."""
    hw = load_hardware("h200")
    base = memory_plan(llama8b, hw, Parallelism())
    plan = memory_plan(llama8b, hw, Parallelism(), placement=SPILL_HOST)
    assert plan.kv_bytes_per_device == base.kv_bytes_per_device
    assert plan.kv_spill_bytes_per_device == pytest.approx(0.9 * 256e9)
    assert plan.kv_pool_bytes == pytest.approx(base.kv_pool_bytes + 0.9 * 256e9)
    assert plan.spill_from_tokens == pytest.approx(base.kv_bytes_per_device / 131_072)
    assert plan.kv_spill_bandwidth_bytes_per_s == 63e9


def test_spilled_kv_is_read_at_the_spill_tiers_bandwidth(llama8b):
    """A decode batch holding S tokens past the H200's KV space reads them at 63 GB/s instead of
    4.8 TB/s: on top of the same step without spill, 32 layers x 4,096 B x S x (1/63e9 - 1/4.8e12),
    over the 0.85 memory efficiency."""
    hw = load_hardware("h200")
    plan = memory_plan(llama8b, hw, Parallelism(), placement=SPILL_HOST)
    fast = int(plan.spill_from_tokens)
    ctx = np.full(8, fast // 8 + 50_000, np.int64)  # the batch's KV tokens: ctx + 1 each
    spilled = float(ctx.sum() + 8) - plan.spill_from_tokens
    spill = RooflineCost(llama8b, hw, Parallelism(), plan)
    plain = RooflineCost(llama8b, hw, Parallelism())
    extra = spill.step(np.ones(8), ctx, 8).total_s - plain.step(np.ones(8), ctx, 8).total_s
    assert extra == pytest.approx(32 * 4096 * spilled * (1 / 63e9 - 1 / 4.8e12) / 0.85, rel=1e-9)
    under = np.full(8, fast // 8 - 10, np.int64)
    assert spill.step(np.ones(8), under, 8) == plain.step(np.ones(8), under, 8)


def test_spill_kernels_match_the_reference(llama8b):
    """Event skipping crosses the spill threshold inside a decode span exactly as single steps do."""
    hw = load_hardware("h200")
    plan = memory_plan(llama8b, hw, Parallelism(), placement=SPILL_HOST)
    table = RooflineCost(llama8b, hw, Parallelism(), plan).table
    start = int(plan.spill_from_tokens) // 4 - 300  # 4 sequences cross the threshold after ~75 steps
    got, want = kernel_checks.decode_spans([start] * 4, table, np.inf, 200)
    assert got[0] == want[0] and got[1] == pytest.approx(want[1], rel=1e-9)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-9)
    got, want = kernel_checks.step_times([(1, start + 1000)] * 4, table)
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_weights_in_sram_read_at_the_blend_of_the_two_tiers(llama8b):
    """An H100 whose 50 MB L2 becomes an 8 GB SRAM holding weights: 0.9 x 8 GB of the 16.06 GB sit in
    SRAM (5.5 TB/s), the rest in HBM (3.35 TB/s); reading all of them takes the two times added."""
    hw = with_capacity(load_hardware("h100-sxm"), "l2", 8e9)
    place = TierPlacement(weights="l2", weights_spill="hbm")
    plan = memory_plan(llama8b, hw, Parallelism(), placement=place)
    w = llama8b.weight_bytes()
    on_sram = 0.9 * 8e9
    blend = w / (on_sram / 5.5e12 + (w - on_sram) / 3.35e12)
    assert plan.weights_bandwidth_bytes_per_s == pytest.approx(blend)
    hbm_kv = 0.9 * 80e9 - (w - on_sram) - plan.workspace_bytes_per_device
    assert plan.kv_bytes_per_device == pytest.approx(hbm_kv)
    faster = estimate(llama8b, hw, Parallelism(), 1000, 100, 1, Memory(placement=place)).tpot_s
    assert faster < 0.85 * estimate(llama8b, hw, Parallelism(), 1000, 100, 1).tpot_s


def test_more_lpu_sram_changes_tpot(llama70b_int8):
    """Doubling the LPU's SRAM halves the chips the weights need, so a token crosses fewer pipeline
    hops: TPOT falls; the chip count is what moves."""
    base = load_hardware("groq-lpu")
    bigger = with_capacity(base, "sram", 0.46e9)
    small = smallest_fit(llama70b_int8, base, 1200, 1, step_tokens=1000)
    large = smallest_fit(llama70b_int8, bigger, 1200, 1, step_tokens=1000)
    assert large.devices < small.devices / 2
    tpot = [estimate(llama70b_int8, hw, p, 1000, 200).tpot_s for hw, p in ((base, small), (bigger, large))]
    assert tpot[1] < tpot[0]


def test_unknown_tiers_are_refused_with_their_names(llama8b):
    cxl = TierPlacement(kv_spill="cxl")
    with pytest.raises(ConfigError, match=r"placement\.kv_spill: h100-sxm has no memory tier 'cxl'"):
        memory_plan(llama8b, load_hardware("h100-sxm"), Parallelism(), placement=cxl)
    fixed = {"kind": "fixed", "tokens": 100}
    base = {"hardware": "h100-sxm", "model": "llama-3.1-8b", "stop": {"requests": 10},
            "workload": {"arrivals": {"kind": "poisson", "rate_per_s": 1},
                         "prompt_tokens": fixed, "output_tokens": fixed}}
    no_sram = r"placement\.weights: h100-sxm has no memory tier 'sram' \(tiers: l2"
    with pytest.raises(ScenarioError, match=no_sram):
        scenario_from_dict({**base, "placement": {"weights": "sram"}})
    with pytest.raises(ScenarioError, match=r"placement\.kv_spill: 'hbm' is the KV tier itself"):
        scenario_from_dict({**base, "placement": {"kv_spill": "hbm"}})
    assert scenario_from_dict({**base, "placement": {"kv_spill": "host"}}).placement == SPILL_HOST
