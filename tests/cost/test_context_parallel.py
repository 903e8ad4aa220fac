"""Context parallelism for long prefill, and the roofline floor under every split."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware import load_hardware
from sim.cost import _kernels as K
from sim.cost.ops import build_ops
from sim.cost.parallelism import ConfigError, Parallelism
from sim.cost.roofline import RooflineCost
from workloads import load_model


@pytest.fixture(scope="module")
def llama405b():
    return load_model("llama-3.1-405b")


def test_cp_splits_each_sequence_and_adds_the_ring(llama8b, h100):
    """cp 4: every per-token, per-pair and per-KV coefficient a quarter, weights whole; the ring's
    K and V of the new tokens (3/4 of them a device) and each sequence's query and partial output
    (3/4) join attention's memory leg."""
    one = build_ops(llama8b, h100, Parallelism())
    four = build_ops(llama8b, h100, Parallelism(cp=4))
    row = one.names.index("Lattention/dense.attention")
    assert four.flops_coef[row, K.PAIRS_FULL] == pytest.approx(one.flops_coef[row, K.PAIRS_FULL] / 4)
    assert four.bytes_coef[row, K.KV_FULL] == pytest.approx(one.bytes_coef[row, K.KV_FULL] / 4)
    proj = one.names.index("Lattention/dense.attn_proj")
    assert four.bytes_coef[proj, K.ONE] == one.bytes_coef[proj, K.ONE]
    kv, query = 2 * 8 * 128 * 2, 2 * 2 * 32 * 128  # K and V of 8 heads; q and output of 32, bf16
    link = h100.scale_up.bandwidth_bytes_per_s * h100.efficiency.collective * h100.efficiency.link
    to_hbm = one.ops[row, K.RATE_B] / link
    tokens, seqs = four.bytes_coef[row, K.TOKENS], four.bytes_coef[row, K.SEQS]
    assert tokens == pytest.approx(one.bytes_coef[row, K.TOKENS] / 4 + 3 / 4 * kv * to_hbm)
    assert seqs == pytest.approx(one.bytes_coef[row, K.SEQS] + 3 / 4 * query * to_hbm)


def test_million_token_prefill_scales_with_cp(llama405b, h100):
    """A 1M-token prompt on Llama-3.1-405B (tp 8 per node): 8, 16 and 64 nodes each cut the prefill
    nearly in proportion, as attention's quadratic work dominates and hides the ring."""
    prompt = 1 << 20
    times = {
        cp: RooflineCost(llama405b, h100, Parallelism(tp=8, cp=cp)).step([prompt], [0], 1).total_s
        for cp in (1, 8, 16, 64)
    }
    for cp in (8, 16, 64):
        assert times[1] / cp < times[cp] < 1.3 * times[1] / cp
    assert times[1] > times[8] > times[16] > times[64]


def test_cp_on_tpu_and_gpu(llama405b):
    """The same 4M-token prompt on 64 TPU v5p and 64 H200: both finish, the ring crossing nothing
    but ICI on the TPU slice and NVLink plus the NICs on the GPUs."""
    prompt = 4 << 20
    for name in ("tpu-v5p", "h200"):
        step = RooflineCost(llama405b, load_hardware(name), Parallelism(tp=8, cp=8)).step([prompt], [0], 1)
        assert np.isfinite(step.total_s) and step.bound == "compute"


def test_cp_refuses_recurrent_layers():
    with pytest.raises(ConfigError, match=r"cp \(2\)"):
        build_ops(load_model("mamba2-2.7b"), load_hardware("h100-sxm"), Parallelism(cp=2))


SPLITS = st.sampled_from(
    [
        Parallelism(),
        Parallelism(tp=8),
        Parallelism(tp=16),
        Parallelism(tp=4, pp=4),
        Parallelism(attention_dp=8, ep=8),
        Parallelism(tp=2, attention_dp=4, ep=4),
        Parallelism(attention_dp=32, ep=32),
        Parallelism(tp=8, cp=4),
        Parallelism(tp=8, ep=8, pp=2),
    ]
)


@settings(deadline=None, max_examples=40)
@given(SPLITS, st.integers(1, 64), st.integers(1, 4096), st.integers(0, 100_000))
def test_a_prediction_is_never_below_the_roofline(split, seqs, new, ctx):
    """However a MoE model is split, a step takes at least its compute at the device's fastest peak
    and its bytes at the device's bandwidth, each operator on its own (per-operator roofline)."""
    model = load_model("qwen3-30b-a3b")
    hw = load_hardware("h100-sxm")
    cost = RooflineCost(model, hw, split)
    news, ctxs = [new] * seqs, [ctx] * seqs
    br = cost.breakdown(news, ctxs, seqs)
    work = br[br["bound"] != "link"]
    fastest = max(v for v in (hw.peak_flops.bf16, hw.peak_flops.fp8) if v)
    floor = (np.maximum(work["flops"] / fastest, work["bytes"] / hw.main_tier.bandwidth_bytes_per_s)).sum()
    assert cost.step(news, ctxs, seqs).total_s >= floor * (1 - 1e-9)
