"""The value of a cached prefix: the prefill it saves at the positions it sits at, by hand at 1M."""

import numpy as np
import pandas as pd
import pytest

from hardware import Accelerator, load_hardware
from sim.cost.prefill import prefill_s
from sim.cost.roofline import RooflineCost
from sim.engine.metrics import CachePrices, cache_summary
from workloads import load_model

PEAK = 989e12
L, C = 1_000_000, 8192


def compute_only():
    """A device whose memory is so fast that every operator is compute-bound at 100% of peak."""
    return Accelerator.model_validate({
        "name": "compute-only",
        "peak_flops": {"bf16": PEAK},
        "memory": [{"name": "hbm", "capacity_bytes": 80e9, "bandwidth_bytes_per_s": 1e30}],
    })


def test_saved_prefill_at_1m_tokens_by_hand():
    """Llama-3.1-8B, 1M cached tokens in 8,192-token chunks: every new token runs the layers' weight
    GEMMs (2 FLOPs a parameter) and the causal pairs sum to L(L+1)/2 whatever the chunking, at
    4·H·d FLOPs a pair per layer."""
    m = load_model("llama-3.1-8b")
    layer_params = m.attention_params() + m.dense_ffn_params()  # 218,103,808
    linear = 2 * m.num_layers * layer_params * L
    attention = m.num_layers * 4 * 32 * 128 * L * (L + 1) / 2
    by_hand = (linear + attention) / PEAK  # 14.10 s + 265.07 s = 279.2 s
    got = prefill_s(RooflineCost(m, compute_only()), np.array([L]), C)[0]
    assert got == pytest.approx(by_hand, rel=1e-9)
    assert by_hand == pytest.approx(279.17, rel=1e-3)
    # the old ledger (L x the first chunk's time per token) undervalues it 17x
    first_chunk = (2 * m.num_layers * layer_params * C + m.num_layers * 4 * 32 * 128 * C * (C + 1) / 2) / PEAK
    assert by_hand / (L * first_chunk / C) == pytest.approx(17.14, rel=1e-3)


def test_prefill_s_adds_chunks_and_a_tail():
    cost = RooflineCost(load_model("llama-3.1-8b"), load_hardware("h100-sxm"))
    tokens = np.array([0, 100, 8192, 20_000])
    want = [0.0, cost.step([100], [0], 0).total_s, cost.step([8192], [0], 0).total_s,
            cost.step([8192], [0], 0).total_s + cost.step([8192], [8192], 0).total_s
            + cost.step([20_000 - 16_384], [16_384], 0).total_s]
    assert prefill_s(cost, tokens, 8192) == pytest.approx(want, rel=1e-12)


def test_cache_summary_values_hits_at_their_length():
    requests = pd.DataFrame({
        "scheduled_s": [0.0, 1.0], "finish_s": [2.0, 3.0], "prompt_tokens": [L + 10, 500],
        "cached_tokens": [L, 0], "reloaded_tokens": [0, 0], "reloaded_blocks": [0, 0],
        "cached_blocks": [L // 16, 0], "prefilled_tokens": [10, 500], "replica": [0, 0],
        "kv_transfer_s": [0.0, 0.0],
    })
    timeseries = pd.DataFrame(
        {"time_s": [0.0], "replica": [0], "kv_cached_blocks": [0], "offload_blocks": [0]}
    )
    cost = RooflineCost(load_model("llama-3.1-8b"), compute_only())
    prices = CachePrices(1.0, None, 0.0, lambda t: prefill_s(cost, t, C), 2.0)
    out = cache_summary(requests, timeseries, {}, 1.0, prices)
    assert out["cache_prefill_saved_s"] == pytest.approx(prefill_s(cost, np.array([L]), C)[0], rel=1e-12)
    assert out["cache_prefill_saved_usd"] == pytest.approx(2.0 * out["cache_prefill_saved_s"], rel=1e-12)
