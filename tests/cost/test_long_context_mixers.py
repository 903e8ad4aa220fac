"""Sparse and linear attention by hand at long context: DeepSeek sparse attention attends to the top
2,048 tokens plus the indexer's light pass over all of them; gated-DeltaNet layers cost the same per
token at any context."""

import numpy as np
import pytest

from hardware import load_hardware
from sim.cost.roofline import RooflineCost
from workloads import load_model

L = 1_000_000
ABSORBED = 2 * 128 * (2 * 512 + 64)  # 278,528 FLOPs a query-key pair
INDEX = 2 * 64 * 128  # 16,384 FLOPs a pair for the indexer
EXPANDED = 2 * 128 * (128 + 64) + 2 * 128 * 128  # 81,920: V3's non-absorbed prefill


def flops(df, suffix):
    return df.loc[df["op"].str.endswith(suffix), "flops"].sum()


@pytest.fixture(scope="module")
def v32():
    return RooflineCost(load_model("deepseek-v3.2-exp"), load_hardware("h200"))


def test_dsa_prefill_of_1m_tokens_by_hand(v32):
    df = v32.breakdown([L], [0], 1)
    selected = 2048 * 2049 / 2 + (L - 2048) * 2048  # each query attends to min(position, 2048) keys
    assert flops(df, ".attention") == pytest.approx(61 * ABSORBED * selected, rel=1e-12)
    assert flops(df, ".indexer") == pytest.approx(61 * INDEX * L * (L + 1) / 2, rel=1e-12)
    # against DeepSeek-V3's dense attention over the same prompt: 4.7x less attention work
    dense = 61 * EXPANDED * L * (L + 1) / 2
    assert dense / (flops(df, ".attention") + flops(df, ".indexer")) == pytest.approx(4.675, rel=1e-3)


def test_dsa_decode_at_1m_context_by_hand(v32):
    df = v32.breakdown([1], [L - 1], 1).set_index("op")
    attn = df[df.index.str.endswith(".attention")]
    assert attn["flops"].sum() == pytest.approx(61 * ABSORBED * 2048, rel=1e-12)
    # it reads the latent of the 2,048 selected tokens (plus writes one), the indexer every index key
    assert attn["bytes"].sum() == pytest.approx(61 * (1152 * 2048 + 1152 + 2 * 2 * 128 * 576), rel=1e-12)
    idx = df[df.index.str.endswith(".indexer")]
    assert idx["flops"].sum() == pytest.approx(61 * INDEX * L, rel=1e-12)
    assert idx["bytes"].sum() == pytest.approx(61 * (132 * L + 132 + 2 * 64 * 128), rel=1e-12)


def test_dsa_beats_dense_mla_at_long_context_only():
    hw = load_hardware("h200")
    dense = RooflineCost(load_model("deepseek-v3"), hw)
    sparse = RooflineCost(load_model("deepseek-v3.2-exp"), hw)
    for ctx in (131_072, 1_000_000):
        assert sparse.step([8192], [ctx], 1).total_s < dense.step([8192], [ctx], 1).total_s
    # at short context the indexer is pure overhead
    assert sparse.step([2048], [0], 1).total_s > dense.step([2048], [0], 1).total_s


def test_linear_attention_layers_cost_the_same_at_any_context():
    cost = RooflineCost(load_model("qwen3-next-80b-a3b"), load_hardware("h200"))
    short = cost.breakdown([1], [1000], 1).set_index("op")
    long = cost.breakdown([1], [L], 1).set_index("op")
    rec = short.index.str.endswith(".recurrence")
    assert short.loc[rec, "time_s"].sum() == long.loc[rec, "time_s"].sum()
    # 36 layers x 9 x 32 heads x 128 x 128 FLOPs a token, reading and writing the fp32 state
    assert short.loc[rec, "flops"].sum() == 36 * 9 * 32 * 128 * 128
    assert short.loc[rec, "bytes"].sum() >= 36 * 2 * 32 * 128 * 128 * 4


def test_qwen3_next_decodes_1m_context_faster_than_qwen3_32b():
    """12 of 48 layers keep a KV cache of 2 heads: at 1M tokens the hybrid reads 24.6 GB of KV per
    decode step where Qwen3-32B (64 layers x 8 KV heads) reads 262 GB."""
    hw = load_hardware("h200")
    nxt = RooflineCost(load_model("qwen3-next-80b-a3b"), hw).step(np.ones(1, np.int64), np.full(1, L), 1)
    dense = RooflineCost(load_model("qwen3-32b"), hw).step(np.ones(1, np.int64), np.full(1, L), 1)
    assert dense.total_s / nxt.total_s > 5
