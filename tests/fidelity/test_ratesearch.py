"""The search for the highest rate within latency limits, as an MLPerf Server submitter runs it."""

import math

import pytest

from sim.fidelity import ratesearch


def _counting(limit):
    calls = []

    def meets(rate):
        calls.append(rate)
        return rate <= limit

    return meets, calls


@pytest.mark.parametrize("start", [1.0, 37.3, 100.0, 400.0])
def test_the_search_lands_just_under_the_edge_from_any_start(start):
    meets, calls = _counting(37.3)
    found = ratesearch.highest_rate(meets, start)
    assert found <= 37.3
    # a factor-2 bracket bisected six times: within 2 ** (1 / 64) of the edge
    assert found >= 37.3 / 2 ** (1 / 64)
    assert len(calls) <= ratesearch.BRACKET_STEPS + ratesearch.BISECT_STEPS


def test_no_rate_meeting_the_limits_is_none_and_every_rate_meeting_them_is_the_highest_tried():
    assert ratesearch.highest_rate(lambda r: False, 10.0) is None
    steps = ratesearch.BRACKET_STEPS - 1
    assert ratesearch.highest_rate(lambda r: True, 10.0) == 10.0 * 2**steps


def test_a_start_rate_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        ratesearch.highest_rate(lambda r: True, 0.0)


def _old_search(meets, start):
    """The search as first written (doubling or halving, then six bisections), to pin `step=2` to."""
    good = bad = None
    rate = start
    for _ in range(8):
        if meets(rate):
            good = rate
            if bad is not None:
                break
            rate *= 2
        else:
            bad = rate
            if good is not None:
                break
            rate /= 2
    if good is None or bad is None:
        return good
    for _ in range(6):
        mid = math.sqrt(good * bad)
        if meets(mid):
            good = mid
        else:
            bad = mid
    return good


@pytest.mark.parametrize("start", [0.3, 1.0, 37.3, 100.0, 400.0, 3000.0])
def test_a_search_from_the_submitters_rate_tries_the_rates_it_always_did(start):
    meets, calls = _counting(37.3)
    old, old_calls = _counting(37.3)
    assert ratesearch.highest_rate(meets, start) == _old_search(old, start)
    assert calls == old_calls


@pytest.mark.parametrize("edge", [30.0, 36.5, 37.3, 38.9, 5.0, 900.0])
def test_a_search_started_near_the_edge_takes_fewer_runs_to_the_same_resolution(edge):
    meets, calls = _counting(edge)
    found = ratesearch.highest_rate(meets, 37.3, ratesearch.NEAR_STEP)
    assert edge / ratesearch.RESOLUTION <= found <= edge
    if abs(edge / 37.3 - 1) < 0.04:  # within the first step: two runs bracket it, two bisect
        assert len(calls) <= 4


@pytest.mark.parametrize("step", [1.0, 0.5, 2.5])
def test_a_step_outside_one_to_two_is_refused(step):
    with pytest.raises(ValueError, match="step"):
        ratesearch.highest_rate(lambda r: True, 1.0, step)
