import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardware import Accelerator, load_hardware
from sim.cost.memory import memory_plan
from sim.cost.ops import build_ops
from sim.cost.parallelism import ConfigError, Parallelism
from sim.cost.roofline import RooflineCost
from tests.strategies import batches
from workloads import load_model

BW = 3.35e12
PEAK = 989e12


def ideal(bw=BW, peak=PEAK, link=450e9, fp8=None):
    """A device at 100% of its datasheet, no overheads: times are pure roofline arithmetic."""
    return Accelerator.model_validate(
        {
            "name": "ideal",
            "peak_flops": {"bf16": peak, "fp8": fp8},
            "memory": [{"name": "hbm", "capacity_bytes": 80e9, "bandwidth_bytes_per_s": bw}],
            "scale_up": {"bandwidth_bytes_per_s": link, "latency_s": 0.0},
        }
    )


def test_dense_decode_step_by_hand(llama8b):
    """Llama-3.1-8B, one sequence, 1,000 tokens of context, one new token: every operator is
    memory-bound, so the step is the bytes moved over the bandwidth."""
    h, q, k, f, V, L, w, a = 4096, 4096, 1024, 14336, 128256, 32, 2, 2
    kv_layer = 2 * 8 * 128 * 2
    per_layer = (
        (h * (q + 2 * k) + q * h) * w
        + a * (2 * h + 2 * q + 2 * k)  # QKV + O weights, activations
        + kv_layer * (1000 + 1)
        + kv_layer
        + 2 * a * q  # read 1,001 tokens of KV, write 1, q in/out
        + 4 * a * h  # two norms, read + write
        + 3 * h * f * w
        + a * (2 * h + 3 * f)  # SwiGLU FFN
    )
    total = (
        L * per_layer + h * (w + a) + h * V * w + a * h + 4 * V
    )  # + embedding gather + LM head, fp32 logits
    step = RooflineCost(llama8b, ideal()).step([1], [1000], 1)
    assert step.total_s == pytest.approx(total / BW, rel=1e-12)
    assert step.bound == "memory"
    # weights read per step ~ the model's weight bytes less the embedding table (gathered, not read)
    assert L * (per_layer - kv_layer * 1002) + h * V * w == pytest.approx(
        llama8b.weight_bytes() - V * h * w, rel=1e-3
    )


def test_long_prefill_by_hand(llama8b):
    """8,192-token prefill: projections, FFN and attention are compute-bound; attention has the
    quadratic term 4·heads·head_dim·n(n+1)/2 per layer."""
    n, h, q, k, f, V, L, H, d = 8192, 4096, 4096, 1024, 14336, 128256, 32, 32, 128
    proj_flops = 2 * n * (h * (q + 2 * k) + q * h)
    attn_flops = 4 * H * d * n * (n + 1) / 2
    ffn_flops = 2 * n * 3 * h * f
    norms_bytes = 4 * 2 * h * n
    compute = L * (proj_flops + attn_flops + ffn_flops) / PEAK
    memory_ops = (
        L * norms_bytes + n * h * 4 + (h * V * 2 + 2 * h + 4 * V)
    ) / BW  # norms, embed, LM head (1 row)
    step = RooflineCost(llama8b, ideal()).step([n], [0], 1)
    assert step.total_s == pytest.approx(compute + memory_ops, rel=1e-12)
    assert step.bound == "compute"
    # quadratic: the attention share grows with n
    br = RooflineCost(llama8b, ideal()).breakdown([n], [0], 1).set_index("op")
    assert br.loc["Lattention/dense.attention", "flops"] == pytest.approx(L * attn_flops)


def test_fp8_weights_use_fp8_units(llama8b):
    fp8 = llama8b.with_dtypes(weight_dtype="fp8")
    slow, fast = (RooflineCost(m, ideal(fp8=2 * PEAK)).step([4096], [0], 1).total_s for m in (llama8b, fp8))
    assert fast < 0.6 * slow


def test_tensor_parallel_adds_allreduce(llama8b):
    one = RooflineCost(llama8b, ideal()).step([1], [1000], 1)
    two = RooflineCost(llama8b, ideal(), Parallelism(tp=2)).step([1], [1000], 1)
    assert two.link_s == pytest.approx(32 * 2 * (2 * 0.5 * 4096 * 2) / 450e9)
    assert two.total_s < one.total_s  # half the weights per device dominates two small all-reduces


def test_tp_must_divide_heads(llama8b):
    with pytest.raises(ConfigError, match=r"tp \(3\) must divide num_heads \(32\)"):
        build_ops(llama8b, ideal(), Parallelism(tp=3))


def test_kv_heads_replicated_beyond_kv_heads():
    m = load_model("llama-3.1-70b")  # 8 KV heads
    assert memory_plan(m, ideal(), Parallelism(tp=8)).kv_bytes_per_token == 327_680
    assert memory_plan(m, ideal(), Parallelism(tp=16)).kv_bytes_per_token == 2 * 327_680


def test_memory_plan_capacity(llama8b, h100):
    plan = memory_plan(llama8b, h100, Parallelism())
    assert plan.weights_bytes_per_device == pytest.approx(llama8b.weight_bytes())
    expected = 80e9 * 0.9 - llama8b.weight_bytes() - plan.workspace_bytes_per_device
    assert plan.kv_capacity_tokens == int(expected // 131_072)


def test_moe_touched_experts():
    """Weight bytes of the experts grow as E·(1-(1-a/E)^T) over the batch's tokens."""
    m = load_model("mixtral-8x7b")
    cost = RooflineCost(m, ideal())
    pe = 3 * 4096 * 14336 * 2
    for tokens in (1, 2, 8, 64):
        br = cost.breakdown([1] * tokens, [100] * tokens, tokens).set_index("op")
        touched = 8 * (1 - (1 - 2 / 8) ** tokens)
        act = 2 * 2 * tokens * (2 * 4096 + 3 * 14336)
        assert br.loc["Lattention/moe.experts", "bytes"] == pytest.approx(32 * (pe * touched + act))


def _scaled(factor_bw=1.0, factor_flops=1.0):
    return ideal(bw=BW * factor_bw, peak=PEAK * factor_flops)


MODELS = ["llama-3.1-8b", "llama-4-scout", "deepseek-v3", "jamba-v0.1", "gemma-3-27b"]


@given(batches, st.sampled_from(MODELS), st.floats(1.0, 8.0), st.floats(1.0, 8.0))
def test_more_bandwidth_or_flops_never_slower(batch, name, fb, ff):
    new, ctx = zip(*batch, strict=True)
    m = load_model(name)
    base = RooflineCost(m, _scaled()).step(new, ctx, len(new)).total_s
    assert RooflineCost(m, _scaled(factor_bw=fb)).step(new, ctx, len(new)).total_s <= base * (1 + 1e-12)
    assert RooflineCost(m, _scaled(factor_flops=ff)).step(new, ctx, len(new)).total_s <= base * (1 + 1e-12)


@given(batches, st.sampled_from(MODELS), st.integers(1, 100_000))
def test_more_context_never_faster(batch, name, extra):
    new, ctx = zip(*batch, strict=True)
    cost = RooflineCost(load_model(name), _scaled())
    longer = [c + extra for c in ctx]
    assert cost.step(new, longer, len(new)).total_s >= cost.step(new, ctx, len(new)).total_s


@given(batches, st.sampled_from(MODELS))
def test_never_below_physical_roofline(batch, name):
    """Sum of FLOPs over peak (the fastest unit the model's weights may use) and sum of bytes over
    bandwidth, at 100% efficiency, bound any step."""
    h100 = load_hardware("h100-sxm")
    new, ctx = zip(*batch, strict=True)
    model = load_model(name)
    cost = RooflineCost(model, h100)
    br = cost.breakdown(new, ctx, len(new))
    peak = max(h100.peak_flops.bf16, h100.peak_flops.for_dtype(model.weight_dtype))
    compute = br.loc[br.bound != "link", "flops"].sum() / peak
    memory = br.loc[br.bound != "link", "bytes"].sum() / h100.main_tier.bandwidth_bytes_per_s
    assert cost.step(new, ctx, len(new)).total_s >= max(compute, memory)
    assert br.time_s.sum() == pytest.approx(cost.step(new, ctx, len(new)).total_s, rel=1e-9)


def test_window_caps_attention():
    gemma = load_model("gemma-3-27b")
    cost = RooflineCost(gemma, ideal())
    near = cost.breakdown([1], [100_000], 1).set_index("op")
    far = cost.breakdown([1], [200_000], 1).set_index("op")
    local = "Lwattention/dense.attention"
    assert near.loc[local, "bytes"] == far.loc[local, "bytes"]
    assert far.loc["Lattention/dense.attention", "bytes"] > near.loc["Lattention/dense.attention", "bytes"]


def test_ssm_step_constant_in_context():
    mamba = load_model("mamba2-2.7b")
    cost = RooflineCost(mamba, ideal())
    assert cost.step([1], [10], 1).total_s == cost.step([1], [10_000_000], 1).total_s
    assert np.isfinite(memory_plan(mamba, ideal(), Parallelism()).kv_capacity_tokens)


def test_step_overhead_is_paid_once_per_step_and_bound_by_nothing(llama8b):
    base = ideal()
    slow = Accelerator.model_validate(
        {**base.model_dump(), "efficiency": {**base.efficiency.model_dump(), "step_overhead_s": 0.005}}
    )
    for new, ctx in (([1], [1000]), ([8192], [0]), ([1] * 64, [4000] * 64)):
        a, b = RooflineCost(llama8b, base).step(new, ctx, 1), RooflineCost(llama8b, slow).step(new, ctx, 1)
        assert b.total_s == pytest.approx(a.total_s + 0.005, rel=1e-12)
        assert (b.compute_bound_s, b.memory_bound_s) == pytest.approx((a.compute_bound_s, a.memory_bound_s))
    row = RooflineCost(llama8b, slow).breakdown([1], [10], 1).set_index("op").loc["step_overhead"]
    assert row.bound == "overhead" and row.time_s == pytest.approx(0.005)


def test_sequence_overhead_is_paid_per_sequence_of_the_step_and_bound_by_nothing(llama8b):
    """20 us per sequence: a step of one sequence pays 20 us, of 64 decoding sequences 1.28 ms, in
    single steps and in a span of decode steps alike."""
    base = ideal()
    slow = Accelerator.model_validate(
        {**base.model_dump(), "efficiency": {**base.efficiency.model_dump(), "seq_overhead_s": 20e-6}}
    )
    fast, slowed = RooflineCost(llama8b, base), RooflineCost(llama8b, slow)
    for new, ctx, extra in (([1], [1000], 20e-6), ([8192], [0], 20e-6), ([1] * 64, [4000] * 64, 1.28e-3)):
        a, b = fast.step(new, ctx, len(new)), slowed.step(new, ctx, len(new))
        assert b.total_s == pytest.approx(a.total_s + extra, rel=1e-12)
        assert (b.compute_bound_s, b.memory_bound_s) == pytest.approx((a.compute_bound_s, a.memory_bound_s))
    row = slowed.breakdown([1] * 64, [4000] * 64, 64).set_index("op").loc["step_overhead"]
    assert row.bound == "overhead" and row.time_s == pytest.approx(1.28e-3)


def test_moe_gemm_slows_the_expert_gemms_only():
    """At half of dense speed the grouped expert GEMMs take exactly twice as long; nothing else moves."""
    mixtral = load_model("mixtral-8x7b")
    base = ideal()
    slow = Accelerator.model_validate(
        {**base.model_dump(), "efficiency": {**base.efficiency.model_dump(), "moe_gemm": 0.5}}
    )
    for new, ctx in (([1] * 32, [1000] * 32), ([4096], [0])):
        a = RooflineCost(mixtral, base).breakdown(new, ctx, len(new)).set_index("op")["time_s"]
        b = RooflineCost(mixtral, slow).breakdown(new, ctx, len(new)).set_index("op")["time_s"]
        experts = a.index.str.endswith(".experts")
        assert b[experts].to_numpy() == pytest.approx(2 * a[experts].to_numpy(), rel=1e-12)
        assert b[~experts].to_numpy() == pytest.approx(a[~experts].to_numpy(), rel=1e-12)


@pytest.mark.parametrize(("algorithm", "hops"), [("ring", 2 * 7), ("tree", 2 * 3)])
def test_allreduce_latency_hops(llama8b, algorithm, hops):
    """Eight devices: a ring all-reduce makes 2(p-1) = 14 latency hops, a tree 2·log2(p) = 6."""
    hw = ideal()
    hw = Accelerator.model_validate(
        {
            **hw.model_dump(),
            "scale_up": {"bandwidth_bytes_per_s": 450e9, "latency_s": 1e-5, "algorithm": algorithm},
        }
    )
    br = RooflineCost(llama8b, hw, Parallelism(tp=8)).breakdown([1], [100], 1).set_index("op")
    per_call = br.loc["Lattention/dense.allreduce", "time_s"] / br.loc["Lattention/dense.allreduce", "count"]
    assert per_call == pytest.approx(hops * 1e-5 + 2 * 7 / 8 * 4096 * 2 / 450e9, rel=1e-9)
