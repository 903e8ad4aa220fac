"""Dequantising a quantised KV cache as it is read, by hand: 2 vector operations per element, run on
the vector units (H100 SXM: 133.8 TFLOPS against 989 TFLOPS of matrix math)."""

import numpy as np
import pytest

from hardware import load_hardware
from sim.cost.ops import dequant_flops_per_kv_byte
from sim.cost.roofline import RooflineCost
from workloads import load_model

RATIO = 989e12 / 133.8e12


@pytest.mark.parametrize(("kv", "per_byte"), [("bf16", 0.0), ("fp8", 2 * RATIO), ("int4", 4 * RATIO),
                                              ("int2", 8 * RATIO)])
def test_dequant_flops_per_byte(kv, per_byte):
    m = load_model("llama-3.1-8b").with_dtypes(kv_dtype=kv)
    assert dequant_flops_per_kv_byte(m, load_hardware("h100-sxm")) == pytest.approx(per_byte, rel=1e-12)


def test_decode_attention_flops_by_hand():
    """Llama-3.1-8B, one sequence decoding at 32,768 tokens of context, int4 KV: per layer 4·H·d FLOPs
    a key (32 heads x 128) plus 2 x 2·8·128 elements a token x (989 / 133.8)."""
    m = load_model("llama-3.1-8b").with_dtypes(kv_dtype="int4")
    df = RooflineCost(m, load_hardware("h100-sxm")).breakdown([1], [32_768], 1)
    got = df.loc[df["op"].str.endswith(".attention"), "flops"].sum()
    keys = 32_769
    assert got == pytest.approx(32 * keys * (4 * 32 * 128 + 2 * (2 * 8 * 128) * RATIO), rel=1e-12)


def test_low_bit_kv_trades_bandwidth_for_compute():
    hw = load_hardware("h100-sxm")
    legs = {}
    for kv in ("bf16", "int4", "int2"):
        df = RooflineCost(load_model("llama-3.1-8b").with_dtypes(kv_dtype=kv), hw).breakdown(
            np.ones(64, np.int64), np.full(64, 32_768), 64)
        attn = df[df["op"].str.endswith(".attention")]
        legs[kv] = (attn["compute_s"].sum(), attn["memory_s"].sum())
    assert legs["int4"][1] == pytest.approx(legs["bf16"][1] / 4, rel=1e-3)
    assert legs["int2"][1] == pytest.approx(legs["int4"][1] / 2, rel=1e-3)
    assert legs["int4"][0] > 2.5 * legs["bf16"][0]  # dequantisation on the vector units
    assert legs["int2"][0] == pytest.approx(legs["int4"][0], rel=1e-12)  # the same elements
