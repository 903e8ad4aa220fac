"""Pipelined pipeline parallelism: the closed form by hand, and the engine against it (micro-batches
overlap across stages in steady state; one batch still pays every stage)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware import load_hardware
from sim.api import run
from sim.cost.estimate import estimate
from sim.cost.ops import build_ops
from sim.cost.parallelism import Parallelism
from sim.cost.pipeline import bubble_fraction, pipeline_s, steady_interval_s
from sim.cost.roofline import CostModel, RooflineCost
from sim.runnable import scenario_from_dict
from workloads import load_model


def test_four_stages_eight_micro_batches_by_hand():
    """4 stages of 1 ms, 0.1 ms hops, 8 micro-batches: the first leaves after 4 + 3 x 0.1 = 4.3 ms,
    the other 7 one every 1.1 ms: 12.0 ms, the GPipe form (m + p - 1)(t + h) - h = 11 x 1.1 - 0.1."""
    assert pipeline_s([1e-3] * 4, 0.1e-3, 8) == pytest.approx(12.0e-3, rel=1e-12)
    assert pipeline_s([1e-3] * 4, 0.1e-3, 8) == pytest.approx((8 + 4 - 1) * 1.1e-3 - 0.1e-3, rel=1e-12)
    assert steady_interval_s([1e-3, 2e-3, 1e-3, 1e-3], 0.1e-3) == pytest.approx(2.1e-3)
    assert bubble_fraction(4, 8) == pytest.approx(3 / 11)
    assert pipeline_s([1e-3] * 4, 0.0, 1) == pytest.approx(4e-3)


def _scenario(pp: int, requests: int, arrivals: dict) -> dict:
    return {
        "hardware": "h100-sxm",
        "model": "llama-3.1-8b",
        "parallelism": {"pp": pp},
        "scheduler": {"max_num_seqs": 8},
        "workload": {
            "arrivals": arrivals,
            "prompt_tokens": {"kind": "fixed", "tokens": 512},
            "output_tokens": {"kind": "fixed", "tokens": 64},
        },
        "stop": {"requests": requests},
    }


def test_engine_overlaps_micro_batches_across_stages():
    """Four stages keep four scheduler batches in flight: at saturation the replica of 4 devices
    serves about 4 x what one device does (less the hops), where running them back to back gave the
    throughput of one; a lone request still pays every stage (TTFT of one device, not a quarter)."""
    burst = {"kind": "burst"}
    one = run(scenario_from_dict(_scenario(1, 256, burst))).summary
    four = run(scenario_from_dict(_scenario(4, 256, burst))).summary
    assert 3.5 < four.output_tokens_per_s / one.output_tokens_per_s <= 4.0
    lone_one = run(scenario_from_dict(_scenario(1, 1, burst))).summary
    lone_four = run(scenario_from_dict(_scenario(4, 1, burst))).summary
    assert lone_four.ttft_p50_s >= lone_one.ttft_p50_s
    assert lone_four.ttft_p50_s == pytest.approx(lone_one.ttft_p50_s, rel=0.05)


def test_engine_step_is_the_closed_form(llama8b, h100):
    """A batch of 8 on 4 stages runs as 4 micro-batches of 2 in flight: its step (the time between
    one sequence's tokens) is one micro-batch's trip through every stage and hop, and the replica
    delivers 4 micro-batches in that time, the closed form's steady interval for equal stages."""
    par = Parallelism(pp=4)
    pipelined = RooflineCost(llama8b, h100, par)
    one_trip = CostModel(build_ops(llama8b, h100, par)).breakdown([1] * 2, [512] * 2, 2)
    assert pipelined.step([1] * 8, [512] * 8, 8).total_s == pytest.approx(one_trip["time_s"].sum(), rel=1e-12)
    hops = one_trip[one_trip["op"].str.startswith("pp_")]["time_s"].sum() / 4
    stage = (one_trip["time_s"].sum() - 4 * hops) / 4
    four_more = pipeline_s([stage] * 4, hops, 8) - pipeline_s([stage] * 4, hops, 4)
    assert four_more == pytest.approx(one_trip["time_s"].sum(), rel=1e-12)


def test_estimate_shows_the_bubble(llama8b, h100):
    """One sequence on 8 stages keeps one stage busy at a time: an eighth of the rate 8 sequences
    (8 micro-batches in flight) get, at the same time per token."""
    lone = estimate(llama8b, h100, Parallelism(pp=8), 1000, 100, batch=1)
    full = estimate(llama8b, h100, Parallelism(pp=8), 1000, 100, batch=8)
    assert full.output_tokens_per_s == pytest.approx(8 * lone.output_tokens_per_s, rel=1e-9)
    assert np.isclose(full.tpot_s, lone.tpot_s)


@settings(max_examples=25, deadline=None)
@given(
    pp=st.sampled_from([2, 4, 8]),
    prompt=st.integers(256, 8192),
    decodes=st.integers(1, 40),
    context=st.integers(1, 32_000),
)
def test_a_sequence_is_not_split_across_micro_batches(pp, prompt, decodes, context):
    """A prefill sharing its step with decodes still carries all its tokens through every stage:
    the step takes at least what that prefill takes alone (adding work never speeds a step)."""
    cost = RooflineCost(load_model("llama-3.1-70b"), load_hardware("h100-sxm"), Parallelism(2, pp))
    alone = cost.step([prompt], [0], 1).total_s
    mixed = cost.step([prompt] + [1] * decodes, [0] + [context] * decodes, 1 + decodes).total_s
    assert mixed >= alone * (1 - 1e-12)
