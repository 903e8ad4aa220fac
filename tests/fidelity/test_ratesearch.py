"""The search for the highest rate within latency limits, as an MLPerf Server submitter runs it."""

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
