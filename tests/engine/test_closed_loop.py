import numpy as np
import pytest

from sim.api import run
from sim.cost.roofline import RooflineCost
from tests.conftest import tiny_scenario


def closed(users, think, requests=200):
    return tiny_scenario(
        workload={
            "arrivals": {"kind": "closed_loop", "users": users, "think_time_s": think},
            "prompt_tokens": {"kind": "fixed", "tokens": 100},
            "output_tokens": {"kind": "fixed", "tokens": 10},
        },
        stop={"requests": requests},
    )


def test_one_user_without_think_time_sends_back_to_back():
    """One user, no thinking: each request arrives the moment the previous one finishes, and each
    takes one 100-token prefill step plus 9 decode steps on an otherwise idle replica."""
    sc = closed(1, 0.0, requests=5)
    r = run(sc).requests
    cost = RooflineCost(sc.model, sc.hardware)
    service = cost.step([100], [0], 1).total_s + sum(cost.step([1], [100 + j], 1).total_s for j in range(9))
    assert r.arrival_s.tolist() == pytest.approx([i * service for i in range(5)])
    assert r.e2e_s.tolist() == pytest.approx([service] * 5)


def test_concurrency_never_exceeds_users():
    r = run(closed(users=3, think=0.002))
    in_flight = r.timeseries.in_system.max()
    assert in_flight <= 3
    assert np.all(np.diff(r.requests.arrival_s) >= 0)
    assert r.requests.finish_s.notna().all()


def test_interactive_response_time_law():
    """Closed system: users = throughput x (response time + think time), within noise."""
    users, think = 8, 0.01
    r = run(closed(users, think, requests=4000))
    req = r.requests
    throughput = len(req) / req.finish_s.max()
    assert users == pytest.approx(throughput * (req.e2e_s.mean() + think), rel=0.05)


def test_closed_loop_needs_a_request_count():
    from sim.api import make_requests

    sc = tiny_scenario(
        workload={"arrivals": {"kind": "closed_loop", "users": 2, "think_time_s": 1.0}},
        stop={"requests": None, "duration_s": 10},
    )
    with pytest.raises(ValueError, match=r"closed-loop arrivals need stop\.requests"):
        make_requests(sc)
