"""MLA attention by hand: prefilling sequences in the non-absorbed form, decoding ones absorbed."""

import pytest

from hardware import load_hardware
from sim.cost.ops import mla_pair_flops
from sim.cost.roofline import RooflineCost
from workloads import load_model

LAYERS = 61
ABSORBED = 2 * 128 * (2 * 512 + 64)  # 278,528 FLOPs per query-key pair
EXPANDED = 2 * 128 * (128 + 64) + 2 * 128 * 128  # 81,920
UP = 2 * 512 * 128 * (128 + 128)  # up-projecting one latent token to per-head K (nope) and V


@pytest.fixture(scope="module")
def cost():
    return RooflineCost(load_model("deepseek-v3"), load_hardware("h200"))


def attention_flops(cost, new, ctx):
    df = cost.breakdown(new, ctx, len(new))
    return df.loc[df["op"].str.endswith(".attention"), "flops"].sum()


def test_pair_flops_of_deepseek_v3():
    assert mla_pair_flops(load_model("deepseek-v3")) == (ABSORBED, EXPANDED)
    assert ABSORBED * 10 == EXPANDED * 34  # 3.4x


def test_prefill_from_scratch_is_non_absorbed(cost):
    n = 8192
    assert attention_flops(cost, [n], [0]) == pytest.approx(LAYERS * EXPANDED * n * (n + 1) / 2, rel=1e-12)


def test_chunked_prefill_up_projects_its_prior_context(cost):
    n, c = 4096, 4096
    pairs = n * c + n * (n + 1) / 2
    expected = LAYERS * (EXPANDED * pairs + UP * c)
    assert attention_flops(cost, [n], [c]) == pytest.approx(expected, rel=1e-12)


def test_decode_is_absorbed_and_a_mixed_batch_adds_both(cost):
    assert attention_flops(cost, [1], [10_000]) == pytest.approx(LAYERS * ABSORBED * 10_001, rel=1e-12)
    mixed = attention_flops(cost, [1, 1000], [10_000, 0])
    expected = LAYERS * (ABSORBED * 10_001 + EXPANDED * 1000 * 1001 / 2)
    assert mixed == pytest.approx(expected, rel=1e-12)


def test_long_prefill_is_faster_than_in_absorbed_form(cost):
    """At 128K the attention FLOPs fall 3.4x, so TTFT falls by most of that (projections and
    experts are unchanged)."""
    n = 131_072
    step = cost.step([n], [0], 1).total_s
    df = cost.breakdown([n], [0], 1)
    attn = df.loc[df["op"].str.endswith(".attention"), "time_s"].sum()
    absorbed_s = step - attn + attn * ABSORBED / EXPANDED
    assert 2.5 < absorbed_s / step < 3.4
