"""The front-end batcher (`sim.engine.batcher`): its release times by hand and as properties, and
the engine serving its batches."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.api import run
from sim.cost.memory import memory_plan
from sim.cost.roofline import FixedCost
from sim.engine.batcher import Batcher, dispatch
from sim.engine.config import ClusterConfig, Pool
from sim.engine.kvcache import KVLayout
from sim.engine.simulate import simulate
from sim.scenario import ScenarioError, Scheduler
from tests.conftest import tiny_scenario
from workloads.requests import Requests


def test_release_times_by_hand():
    """Window 0.3 s: the first batch's clock starts at t=0; the arrival at 0.35 finds 0.35 s passed
    and sends four; the one at 0.5 waits until the wait begun at 0.5 times out (0.8); the arrival
    at 2.0 finds the window long passed and leaves at once; the last waits out its timeout."""
    release, batch = dispatch(np.array([0, 0.1, 0.2, 0.35, 0.5, 2.0, 2.05]), Batcher(0.3, 96))
    assert release.tolist() == pytest.approx([0.35, 0.35, 0.35, 0.35, 0.8, 2.0, 2.35])
    assert batch.tolist() == [0, 0, 0, 0, 1, 2, 3]


def test_a_full_batch_leaves_at_once():
    release, batch = dispatch(np.array([0, 0.01, 0.02, 0.03, 0.04]), Batcher(0.3, 2))
    assert release.tolist() == pytest.approx([0.01, 0.01, 0.03, 0.03, 0.34])
    assert batch.tolist() == [0, 0, 1, 1, 2]


def test_no_arrivals():
    release, batch = dispatch(np.array([]), Batcher(0.3, 2))
    assert len(release) == len(batch) == 0


@pytest.mark.parametrize("window, most", [(0.0, 1), (-1.0, 1), (0.1, 0)])
def test_bad_batcher_is_refused(window, most):
    with pytest.raises(ValueError, match="batcher"):
        Batcher(window, most)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=60),
    st.floats(0.001, 1.0),
    st.integers(1, 8),
)
def test_release_properties(times, window, most):
    """Nobody leaves before arriving; batches leave in order, in arrival order, none above the
    cap; with room in every batch, nobody waits two windows (a wait may restart just before the
    window ends and run a whole window more)."""
    arrival = np.sort(np.array(times))
    release, batch = dispatch(arrival, Batcher(window, most))
    assert (release >= arrival).all()
    assert (np.diff(release) >= 0).all() and (np.diff(batch) >= 0).all()
    assert set(np.diff(batch).tolist()) <= {0, 1} and batch[0] == 0
    assert np.bincount(batch).max() <= most
    assert (release[batch == batch[-1]] == release[-1]).all()
    roomy, _ = dispatch(arrival, Batcher(window, len(arrival)))
    assert (roomy - arrival <= 2 * window + 1e-12).all()


def test_engine_serves_a_batch_when_it_leaves():
    """Arrivals at 0 and 0.1 behind a 0.3 s window leave together at 0.4 (the wait begun at 0.1
    times out) and prefill in one 10 ms step: first tokens at 0.41, TTFTs 0.41 and 0.31 s counted
    from arrival."""
    sc = tiny_scenario()
    layout = KVLayout(memory_plan(sc.model, sc.hardware, sc.par, 0.9, 256), 16)
    res = simulate(
        Requests.from_arrays([0.0, 0.1], [10, 10], [2, 2]),
        [Pool("mixed", 1, FixedCost(0.01), layout)],
        Scheduler(max_num_batched_tokens=256, max_num_seqs=16),
        ClusterConfig(batcher=Batcher(0.3, 96)),
    )
    assert res.state.scheduled_s.tolist() == pytest.approx([0.4, 0.4])
    assert res.state.first_token_s.tolist() == pytest.approx([0.41, 0.41])


def test_each_batch_goes_to_one_replica_round_robin():
    sc = tiny_scenario(cluster={"replicas": 3, "batcher": {"window_s": 0.05, "max_requests": 4}})
    req = run(sc).requests
    _, batch = dispatch(req.arrival_s.to_numpy(), Batcher(0.05, 4))
    served = req.replica.to_numpy()
    for b in np.unique(batch):
        assert len(set(served[batch == b])) == 1, "a batch stays together"
    assert (served[np.searchsorted(batch, np.unique(batch))] == np.unique(batch) % 3).all()
    assert (req.ttft_s > 0).all() and req.finish_s.notna().all()


def test_batcher_waits_show_in_ttft():
    plain = run(tiny_scenario()).requests
    held = run(tiny_scenario(cluster={"batcher": {"window_s": 0.3, "max_requests": 96}})).requests
    assert held.ttft_s.mean() > plain.ttft_s.mean() + 0.1
    assert (held.arrival_s.to_numpy() == plain.arrival_s.to_numpy()).all()


def test_batcher_with_closed_loop_is_refused():
    with pytest.raises(ScenarioError, match=r"cluster\.batcher"):
        tiny_scenario(
            workload={"arrivals": {"kind": "closed_loop", "users": 2, "think_time_s": 0.0}},
            cluster={"batcher": {"window_s": 0.3, "max_requests": 8}},
        )


def test_batcher_window_must_be_positive():
    with pytest.raises(ScenarioError, match="window_s"):
        tiny_scenario(cluster={"batcher": {"window_s": 0, "max_requests": 8}})
