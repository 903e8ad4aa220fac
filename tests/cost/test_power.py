"""Power by hand: idle power plus a dynamic part driven by each operator's compute and memory
activity, capped at the TDP; energy per run from the steps' active seconds."""

import numpy as np
import pytest

from hardware import load_hardware
from hardware.spec import Power
from sim.api import run
from sim.cost import pricing
from sim.cost.roofline import RooflineCost
from sim.scenario import scenario_from_dict
from workloads import load_model

H200 = Power(tdp_w=700)  # the defaults: idle 0.115, compute 1.0, memory 0.355
IDLE_W = 0.115 * 700  # 80.5 W
DYNAMIC_W = 700 - IDLE_W  # 619.5 W


@pytest.mark.parametrize(
    ("compute", "memory", "watts"),
    [
        (0.0, 0.0, IDLE_W),  # 0 % activity: idle
        (0.5, 0.0, IDLE_W + 0.5 * DYNAMIC_W),  # 50 % compute: 390.25 W
        (1.0, 0.0, 700.0),  # 100 % compute: the TDP
        (0.0, 1.0, IDLE_W + 0.355 * DYNAMIC_W),  # memory-bound decode: 300.42 W
        (0.0, 0.5, IDLE_W + 0.5 * 0.355 * DYNAMIC_W),
        (1.0, 1.0, 700.0),  # both saturated: capped at the TDP
    ],
)
def test_power_by_hand(compute, memory, watts):
    assert pricing.power_w(H200, compute, memory) == pytest.approx(watts, rel=1e-12)


def test_energy_of_idle_and_active_seconds():
    # 2 devices for 10 s, 4 active device-seconds: 700 x (0.115 x 20 + 0.885 x 4) J
    assert pricing.energy_j(700, 0.115, 10.0, 2, 4.0) == pytest.approx(700 * (2.3 + 3.54), rel=1e-12)
    assert pricing.energy_j(None, 0.115, 10.0, 2, 4.0) == 0.0


def test_step_active_seconds_follow_the_roofline_legs():
    """A compute-bound prefill is active nearly all its time; a memory-bound decode step about the
    memory share of it."""
    cost = RooflineCost(load_model("llama-3.1-8b"), load_hardware("h200"))
    prefill = cost.step([8192], [0], 1)
    assert prefill.bound == "compute"
    assert 0.9 < prefill.active_s / prefill.total_s <= 1.0
    decode = cost.step(np.ones(4, np.int64), np.full(4, 2000), 4)
    assert decode.bound == "memory"
    assert 0.355 * 0.9 < decode.active_s / decode.total_s < 0.355 * 1.1
    df = cost.breakdown([1], [2000], 1)
    expected = np.minimum(df["time_s"], 1.0 * df["compute_s"] + 0.355 * df["memory_s"])
    assert df["active_s"].to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-12)


def test_lightly_loaded_decoding_device_draws_far_below_tdp():
    """A device always decoding a few sequences is busy all the time but memory-bound: it draws
    near idle + 0.355 of the dynamic range, not its TDP."""
    scenario = scenario_from_dict({
        "hardware": "h200",
        "model": "llama-3.1-8b",
        "workload": {
            "arrivals": {"kind": "closed_loop", "users": 2, "think_time_s": 0},
            "prompt_tokens": {"kind": "fixed", "tokens": 64},
            "output_tokens": {"kind": "fixed", "tokens": 2000},
        },
        "stop": {"requests": 6},
    })
    s = run(scenario).summary
    assert s.utilization > 0.99
    mean_w = s.energy_j / s.duration_s
    assert IDLE_W < mean_w < IDLE_W + 0.4 * DYNAMIC_W
