"""Attention ranks of a MoE engine step together (`sim.engine.lockstep`): a rank's prefill holds up
the other ranks' decodes, and every request still finishes with all its tokens."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.api import build_pools, cluster_config, run, scheduler_config
from sim.engine.lockstep import Balance
from sim.engine.simulate import simulate
from sim.runnable import scenario_from_dict
from sim.scenario import ScenarioError
from tests.engine.test_engine import assert_same_request_times, check_invariants
from workloads.requests import Requests

PROMPT, LONG_PROMPT, OUTPUT = 100, 8000, 200


def _scenario(attention_dp=2):
    return scenario_from_dict(
        {
            "hardware": "h100-sxm",
            "model": "qwen3-30b-a3b",
            "parallelism": {"attention_dp": attention_dp, "ep": attention_dp},
            "scheduler": {"max_num_batched_tokens": 8192},
            "workload": {
                "arrivals": {"kind": "poisson", "rate_per_s": 1},
                "prompt_tokens": {"kind": "fixed", "tokens": PROMPT},
                "output_tokens": {"kind": "fixed", "tokens": OUTPUT},
            },
            "stop": {"requests": 2},
        }
    )


def _two(arrival_b: float) -> Requests:
    """A decodes on rank 0 from t=0; B's long prompt reaches rank 1 (round robin) at arrival_b."""
    return Requests(
        np.array([0.0, arrival_b]),
        np.array([PROMPT, LONG_PROMPT]),
        np.array([OUTPUT, 2]),
        np.zeros(2, np.int64),
    )


def _served(requests: Requests, lockstep: bool):
    sc = _scenario()
    pools, per_token, latency = build_pools(sc)
    assert pools[0].lockstep == 2
    if not lockstep:
        pools = [replace(p, lockstep=1) for p in pools]
    result = simulate(requests, pools, scheduler_config(sc.scheduler), cluster_config(sc, per_token, latency))
    return result.state


def test_a_prefill_on_one_rank_holds_up_the_other_ranks_decode():
    """In step with rank 1, A's decode waits out B's 8,000-token prefill: A finishes later by that
    step, less the decode step it replaced; stepping apart, A does not notice B."""
    assert _served(_two(0.5), lockstep=False).finish_s[0] == _served(_two(1e6), lockstep=False).finish_s[0]
    alone, together = _served(_two(1e6), lockstep=True), _served(_two(0.5), lockstep=True)
    cost = build_pools(_scenario())[0][0].cost
    a_decodes = (np.array([1]), np.array([PROMPT + 60]), 1)  # about where A is when B arrives
    b_prefills = (np.array([LONG_PROMPT]), np.array([0]), 1)
    prefill_step = cost.group_step_into([a_decodes, b_prefills], 2, [np.zeros(5), np.zeros(5)])
    decode_step = cost.group_step_into([a_decodes], 2, [np.zeros(5)])
    delay = together.finish_s[0] - alone.finish_s[0]
    # B's second token is one more shared decode step, slightly slower than A's alone
    assert delay == pytest.approx(prefill_step - decode_step, rel=0.02)
    assert together.generated.tolist() == [OUTPUT, 2]


def test_ranks_in_step_serve_every_request_with_all_its_tokens():
    sc = scenario_from_dict(
        _scenario(4).model_dump(mode="json")
        | {
            "workload": {
                "arrivals": {"kind": "poisson", "rate_per_s": 40},
                "prompt_tokens": {"kind": "lognormal", "median": 800, "sigma": 0.8, "max": 8000},
                "output_tokens": {"kind": "lognormal", "median": 100, "sigma": 0.6, "max": 600},
            },
            "stop": {"requests": 400},
        }
    )
    req = run(sc).requests
    assert req["finish_s"].notna().all()
    assert (req["first_token_s"] <= req["finish_s"]).all()
    assert set(req["replica"]) == {0, 1, 2, 3}


@pytest.mark.parametrize("steps", [1, 4])
def test_group_decode_spans_equal_stepping_one_step_at_a_time(steps):
    data = _scenario(4).model_dump(mode="json")
    data["scheduler"] |= {"scheduler_steps": steps, "max_num_seqs": 16}
    data["workload"] = {
        "arrivals": {"kind": "poisson", "rate_per_s": 30},
        "prompt_tokens": {"kind": "lognormal", "median": 600, "sigma": 0.8, "max": 6000},
        "output_tokens": {"kind": "lognormal", "median": 80, "sigma": 0.8, "max": 500},
    }
    data["stop"] = {"requests": 300}
    sc = scenario_from_dict(data)
    fast, slow = run(sc).requests, run(sc, skip=False).requests
    for column in ("scheduled_s", "first_token_s", "finish_s"):
        assert fast[column].to_numpy() == pytest.approx(slow[column].to_numpy(), rel=1e-9, abs=1e-12)


class _Rank:
    def __init__(self, n, waiting, max_num_seqs=4):
        self.n, self.waiting = n, [0] * waiting
        self.cfg = type("Cfg", (), {"max_num_seqs": max_num_seqs})


def _admissions(balance, ranks, iterations):
    return [i for i in range(1, iterations + 1) if balance.admit(ranks)]


def test_balance_lets_requests_in_every_timeout_iterations_while_some_rank_has_none():
    """TensorRT-LLM's counts, by hand: timeout 3, every rank decoding, one with a request waiting."""
    ranks = [_Rank(2, 1), _Rank(2, 0)]
    assert _admissions(Balance(3, 0), ranks, 9) == [3, 6, 9]


def test_balance_lets_requests_in_at_once_when_every_rank_has_one_or_one_rank_is_idle():
    assert _admissions(Balance(9, 0), [_Rank(2, 1), _Rank(3, 2)], 3) == [1, 2, 3]
    assert _admissions(Balance(9, 2), [_Rank(2, 1), _Rank(3, 2)], 6) == [3, 6]  # batching wait of 2
    assert _admissions(Balance(9, 2), [_Rank(0, 1), _Rank(3, 2)], 2) == [1, 2]  # rank 0 has nothing to decode
    assert _admissions(Balance(9, 0), [_Rank(2, 1), _Rank(0, 0)], 2) == [1, 2]
    full = [_Rank(4, 1), _Rank(2, 1)]  # rank 0 has no free slot: not every rank can take one
    assert _admissions(Balance(3, 0), full, 6) == [3, 6]


def test_balanced_ranks_admit_a_request_at_the_timeout_iteration():
    """A and C start together on ranks 0 and 1 (every rank has one waiting: they join at once, in
    iteration 1); D reaches rank 0 while both decode and joins only in an iteration 4k + 1, when 4
    iterations have passed since requests last joined. Without balancing it joins at once."""
    data = _scenario().model_dump(mode="json")
    data["scheduler"] |= {"adp_timeout_iters": 4}
    sc = scenario_from_dict(data)
    reqs = Requests(
        np.array([0.0, 0.0, 0.1]), np.full(3, PROMPT), np.array([OUTPUT, OUTPUT, 5]), np.zeros(3, np.int64)
    )
    served, plain = run(sc, requests=reqs).requests, run(_scenario(), requests=reqs).requests
    assert served["scheduled_s"][:2].tolist() == [0.0, 0.0]
    cost = build_pools(sc)[0][0].cost
    step = cost.group_step_into([(np.array([1]), np.array([PROMPT + 10]), 1)] * 2, 2, [np.zeros(5)] * 2)
    iterations = (served["scheduled_s"][2] - served["first_token_s"][0]) / step  # since iteration 2 began
    assert abs(iterations - round(iterations)) < 0.05
    assert (round(iterations) + 2) % 4 == 1
    assert plain["scheduled_s"][2] < served["scheduled_s"][2]


@settings(max_examples=15, deadline=None)
@given(
    st.sampled_from([2, 4]),
    st.floats(5.0, 200.0),
    st.integers(1, 3000),
    st.integers(1, 300),
    st.sampled_from([1, 1, 4]),
    st.sampled_from(["recompute", "swap"]),
    st.sampled_from([0, 0, 3, 9]),
    st.sampled_from([0, 0, 3]),
    st.integers(0, 10_000),
)
def test_ranks_in_step_keep_the_invariants_and_skip_events_exactly(
    dp, rate, prompt_hi, out_hi, steps, mode, adp, wait, seed
):
    data = _scenario(dp).model_dump(mode="json")
    data["seed"] = seed
    data["scheduler"] |= {
        "max_num_seqs": 8,
        "max_num_batched_tokens": 2048,
        "scheduler_steps": steps,
        "preemption": mode,
        "adp_timeout_iters": adp,
        "adp_batching_wait_iters": wait,
        "memory_fraction": 0.6,
    }
    data["workload"] = {
        "arrivals": {"kind": "poisson", "rate_per_s": rate},
        "prompt_tokens": {"kind": "uniform", "low": 1, "high": prompt_hi},
        "output_tokens": {"kind": "uniform", "low": 1, "high": out_hi},
    }
    data["stop"] = {"requests": 60}
    sc = scenario_from_dict(data)
    fast, slow = run(sc), run(sc, skip=False)
    check_invariants(sc, fast)
    assert_same_request_times(fast, slow)


def test_balancing_needs_attention_ranks_of_a_moe_engine():
    data = _scenario(1).model_dump(mode="json")
    data["scheduler"] |= {"adp_timeout_iters": 9}
    with pytest.raises(ScenarioError, match=r"scheduler.adp_timeout_iters balances the attention ranks"):
        scenario_from_dict(data)
