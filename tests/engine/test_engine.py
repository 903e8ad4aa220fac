import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sim.api import make_requests, run
from sim.cost.memory import memory_plan
from sim.cost.roofline import FixedCost
from sim.engine.config import Pool
from sim.engine.kvcache import KVLayout
from sim.engine.metrics import block_seconds, time_average_in_system
from sim.engine.simulate import simulate
from sim.scenario import Scheduler
from tests.conftest import TINY_HW, disaggregated_cluster, tiny_scenario
from workloads.requests import Requests


def fixed_run(arrival, prompt, output, step_s=0.01, capacity_tokens=10_000, **sched):
    sc = tiny_scenario()
    plan = memory_plan(sc.model, sc.hardware, sc.par, 0.9, 256)
    layout = KVLayout(plan, 16)
    cfg = Scheduler(**{"max_num_batched_tokens": 256, "max_num_seqs": 16, **sched})
    reqs = Requests.from_arrays(arrival, prompt, output)
    assert layout.capacity_blocks * 16 >= min(capacity_tokens, 1)
    return simulate(reqs, [Pool("mixed", 1, FixedCost(step_s), layout)], cfg)


def test_two_requests_by_hand():
    """Both prompts fit one step (t 0 -> 0.01, first tokens); two decode steps finish them at 0.03."""
    res = fixed_run([0.0, 0.0], [10, 20], [3, 3])
    st_ = res.state
    assert st_.first_token_s.tolist() == pytest.approx([0.01, 0.01])
    assert st_.finish_s.tolist() == pytest.approx([0.03, 0.03])
    assert st_.scheduled_s.tolist() == [0.0, 0.0]


def test_chunked_prefill_splits_long_prompt():
    """A 600-token prompt under a 256-token budget takes three chunks: first token at 0.03."""
    res = fixed_run([0.0], [600], [2])
    assert res.state.first_token_s[0] == pytest.approx(0.03)
    assert res.state.finish_s[0] == pytest.approx(0.04)
    assert res.state.prefilled[0] == 600


def test_late_arrival_joins_at_step_boundary():
    """Request 1 arrives mid-step at 0.015 while request 0 decodes; it joins the step at 0.02."""
    for skip in (True, False):
        sc = tiny_scenario()
        plan = memory_plan(sc.model, sc.hardware, sc.par, 0.9, 256)
        res = simulate(
            Requests.from_arrays([0.0, 0.015], [10, 10], [10, 2]),
            [Pool("mixed", 1, FixedCost(0.01), KVLayout(plan, 16))],
            Scheduler(max_num_batched_tokens=256, max_num_seqs=16),
            skip=skip,
        )
        assert res.state.scheduled_s[1] == pytest.approx(0.02)
        assert res.state.first_token_s[1] == pytest.approx(0.03)
        assert res.state.finish_s.tolist() == pytest.approx([0.10, 0.04])


def test_without_chunking_prefill_waits_for_budget():
    res = fixed_run([0.0, 0.0], [200, 200], [1, 1], chunked_prefill=False)
    assert res.state.finish_s.tolist() == pytest.approx([0.01, 0.02])  # 400 tokens exceed the 256 budget


def test_request_too_large_is_rejected_with_reason():
    sc = tiny_scenario(workload={"prompt_tokens": {"kind": "fixed", "tokens": 50_000}})
    r = run(sc)
    assert (r.requests.rejected_reason == "kv_capacity").all()
    assert r.summary.requests_rejected == 50 and r.summary.requests_finished == 0


@pytest.mark.parametrize("mode", ["recompute", "swap"])
def test_preemption_under_memory_pressure(mode):
    """20 requests of 300 + 300 tokens at once overflow the tiny device's KV. Recompute preemption
    prefills a victim's prompt and generated tokens again; swap parks its KV in host memory and
    never prefills twice. Either way every request gets all of its tokens."""
    sc = tiny_scenario(
        workload={
            "arrivals": {"kind": "burst"},
            "prompt_tokens": {"kind": "fixed", "tokens": 300},
            "output_tokens": {"kind": "fixed", "tokens": 300},
        },
        stop={"requests": 20},
        scheduler={"preemption": mode},
    )
    r = run(sc)
    req = r.requests
    assert r.summary.preemptions > 0
    assert r.summary.requests_finished == 20 and (req.output_tokens == 300).all()
    assert r.summary.kv_peak_fraction <= 1.0
    preempted = req.preemptions > 0
    if mode == "recompute":
        assert (req.prefilled_tokens[preempted] > 300).all()
    else:
        assert (req.prefilled_tokens == 300).all()
    assert (req.prefilled_tokens[~preempted] == 300).all()


def check_invariants(sc, r):
    req, ts = r.requests, r.timeseries
    rejected = req.rejected_reason.notna()
    finished = req.finish_s.notna()
    assert (rejected ^ finished).all(), "every request finishes or is rejected with a reason"
    done = req[finished]
    assert (done.output_tokens.to_numpy() == make_output(sc)[finished.to_numpy()]).all()
    assert (done.arrival_s <= done.scheduled_s).all()
    assert (done.scheduled_s <= done.first_token_s).all()
    assert (done.first_token_s <= done.finish_s).all()
    assert (ts.kv_used_fraction <= 1.0).all() and (ts.kv_used_blocks >= 0).all()
    assert (ts.kv_occupied_fraction <= 1.0).all(), "sequences and cached entries fit the pool"
    last = ts.groupby("replica").kv_used_blocks.last()
    assert (last == 0).all(), "KV held by sequences drains to zero"


def make_output(sc):
    return make_requests(sc).output_tokens


scenarios = st.fixed_dictionaries(
    {
        "rate": st.floats(1.0, 400.0),
        "prompt_hi": st.integers(1, 1500),
        "out_hi": st.integers(1, 400),
        "replicas": st.integers(1, 3),
        "seqs": st.integers(1, 32),
        "chunked": st.booleans(),
        "priority": st.sampled_from(["decode", "prefill"]),
        "preemption": st.sampled_from(["recompute", "swap"]),
        "scheduler_steps": st.sampled_from([1, 1, 4, 10]),
        "prefill_min_waiting": st.sampled_from([1, 1, 3, 8]),
        "router": st.sampled_from(["round_robin", "least_tokens"]),
        "batcher": st.sampled_from(
            [None, None, {"window_s": 0.02, "max_requests": 4}, {"window_s": 0.3, "max_requests": 96}]
        ),
        "seed": st.integers(0, 10_000),
    }
)


def build(p):
    return tiny_scenario(
        seed=p["seed"],
        workload={
            "arrivals": {"kind": "poisson", "rate_per_s": p["rate"]},
            "prompt_tokens": {"kind": "uniform", "low": 1, "high": p["prompt_hi"]},
            "output_tokens": {"kind": "uniform", "low": 1, "high": p["out_hi"]},
        },
        cluster={"replicas": p["replicas"], "router": p["router"], "batcher": p["batcher"]},
        scheduler={
            "max_num_seqs": p["seqs"],
            "chunked_prefill": p["chunked"],
            "priority": p["priority"],
            "preemption": p["preemption"],
            "scheduler_steps": p["scheduler_steps"],
            "prefill_min_waiting": p["prefill_min_waiting"],
            "max_num_batched_tokens": 256,
        },
        stop={"requests": 40},
    )


def assert_same_request_times(fast, slow):
    for col in ("scheduled_s", "first_token_s", "finish_s"):
        a, b = fast.requests[col].to_numpy(), slow.requests[col].to_numpy()
        assert np.array_equal(np.isnan(a), np.isnan(b))
        ok = ~np.isnan(a)
        assert np.allclose(a[ok], b[ok], rtol=1e-9, atol=0), col
    assert (fast.requests.preemptions == slow.requests.preemptions).all()


@settings(max_examples=30, deadline=None)
@given(scenarios)
# a prefill-first step swapped out a sequence and swapped it straight back in, forever, until a
# step that preempts stopped admitting
@example(
    {"rate": 261.16802959627745, "prompt_hi": 82, "out_hi": 339, "replicas": 3, "seqs": 23, "chunked": True,
     "priority": "prefill", "preemption": "swap", "scheduler_steps": 4, "prefill_min_waiting": 1,
     "router": "round_robin", "batcher": {"window_s": 0.3, "max_requests": 96}, "seed": 6410}
)
def test_invariants_and_event_skipping_equals_step_by_step(p):
    sc = build(p)
    fast, slow = run(sc), run(sc, skip=False)
    check_invariants(sc, fast)
    assert_same_request_times(fast, slow)


@settings(max_examples=20, deadline=None)
@given(
    st.sampled_from(["closed_loop", "disaggregated"]),
    st.integers(1, 6),
    st.integers(1, 400),
    st.integers(1, 16),
    st.integers(0, 10_000),
)
def test_event_skipping_equals_step_by_step_closed_loop_and_disaggregated(mode, users, out_hi, seqs, seed):
    """The other two ways requests reach a replica: users waiting for answers, and KV handed over
    from a prefill pool."""
    if mode == "closed_loop":
        workload = {"arrivals": {"kind": "closed_loop", "users": users, "think_time_s": 0.01}}
        cluster = {"replicas": 2}
    else:
        workload = {"arrivals": {"kind": "poisson", "rate_per_s": 20.0 * users}}
        cluster = disaggregated_cluster(decode_replicas=2)
    sc = tiny_scenario(
        seed=seed,
        workload=workload | {"output_tokens": {"kind": "uniform", "low": 1, "high": out_hi}},
        cluster=cluster,
        scheduler={"max_num_seqs": seqs},
        stop={"requests": 40},
    )
    fast, slow = run(sc), run(sc, skip=False)
    check_invariants(sc, fast)
    assert_same_request_times(fast, slow)


@settings(max_examples=10, deadline=None)
@given(scenarios)
def test_same_seed_same_tables(p):
    sc = build(p)
    a, b = run(sc), run(sc)
    pd.testing.assert_frame_equal(a.requests, b.requests)
    pd.testing.assert_frame_equal(a.timeseries, b.timeseries)


def test_tokens_conserved_without_preemption():
    sc = tiny_scenario(workload={"arrivals": {"kind": "poisson", "rate_per_s": 5}}, stop={"requests": 100})
    r = run(sc)
    reqs = make_requests(sc)
    assert r.summary.preemptions == 0
    assert (r.requests.output_tokens.to_numpy() == reqs.output_tokens).all()
    assert (r.requests.prompt_tokens.to_numpy() == reqs.prompt_tokens).all()


def test_littles_law_on_long_steady_run():
    """Time-average number in system (timeseries) = throughput x mean time in system (requests)."""
    hbm = {**TINY_HW["memory"][0], "bandwidth_bytes_per_s": "200 MB/s"}  # slow enough to queue: ~70% busy
    hw = {**TINY_HW, "peak_flops": {"bf16": "100 GFLOPS"}, "memory": [hbm, TINY_HW["memory"][1]]}
    sc = tiny_scenario(
        hardware=hw,
        workload={
            "arrivals": {"kind": "poisson", "rate_per_s": 40},
            "prompt_tokens": {"kind": "uniform", "low": 10, "high": 200},
            "output_tokens": {"kind": "uniform", "low": 5, "high": 60},
        },
        cluster={"replicas": 2},
        stop={"requests": 20_000},
    )
    r = run(sc)
    req = r.requests
    end = req.finish_s.max()
    l_ts = time_average_in_system(r.timeseries, end)
    l_req = len(req) / end * req.e2e_s.mean()
    assert l_ts == pytest.approx(l_req, rel=0.02)
    assert r.summary.preemptions == 0 and 0.5 < r.summary.utilization < 0.9


def test_block_seconds_by_hand():
    # replica 0 holds 4 blocks over [0, 2) and 1 over [2, 5); replica 1 holds 3 over [1, 5)
    ts = pd.DataFrame({"time_s": [0.0, 1.0, 2.0], "replica": [0, 1, 0], "kv_cached_blocks": [4, 3, 1]})
    assert block_seconds(ts, "kv_cached_blocks", 5.0) == 4 * 2 + 1 * 3 + 3 * 4
