"""Multi-step scheduling (`scheduler.scheduler_steps`, vLLM 0.6-0.9's `--num-scheduler-steps`): the
batch decodes in windows of that many steps, and a waiting request joins only at a window's end."""

import numpy as np
import pytest

from sim.api import run
from tests.conftest import tiny_scenario
from workloads.requests import Requests


def _requests(arrivals: list[float], output: int = 60) -> Requests:
    n = len(arrivals)
    return Requests(np.array(arrivals), np.full(n, 10), np.full(n, output), np.zeros(n, np.int64))


def _scenario(steps: int):
    return tiny_scenario(scheduler={"scheduler_steps": steps, "max_num_seqs": 4}, stop={"requests": 2})


def _decode_end(k: int) -> float:
    """When A, alone, ends its k-th decode step: the finish of A with k + 1 output tokens."""
    return run(_scenario(1), requests=_requests([0.0], output=k + 1)).requests["finish_s"].iloc[0]


@pytest.mark.parametrize(("steps", "joins_after"), [(1, 3), (4, 4), (10, 10)])
@pytest.mark.parametrize("skip", [True, False])
def test_an_arrival_waits_for_the_end_of_the_decode_window(steps, joins_after, skip):
    """A decodes alone; B arrives halfway through A's third decode step. One step at a time, B joins
    right after that step; in windows of 4 or 10 steps it waits for the window's end, after A's 4th
    or 10th decode step."""
    arrival = (_decode_end(2) + _decode_end(3)) / 2
    both = run(_scenario(steps), skip=skip, requests=_requests([0.0, arrival])).requests
    assert both["scheduled_s"].iloc[1] == pytest.approx(_decode_end(joins_after), rel=1e-9)


def test_windows_cost_a_busy_server_up_to_half_a_window_of_ttft():
    """Arrivals to a batch that is never empty land anywhere in a window, so windows of 10 add up to
    5 decode steps to the median TTFT (a prefill step starts the next window afresh, so somewhat
    fewer) and leave TPOT as it was. SGLang's v0.3 benchmark measured vLLM 0.6 with
    `--num-scheduler-steps 10` at 4.8-5.3 of its TPOTs above SGLang's median TTFT."""

    def requests(steps: int):
        sc = tiny_scenario(
            workload={"arrivals": {"kind": "poisson", "rate_per_s": 8000},
                      "prompt_tokens": {"kind": "fixed", "tokens": 50},
                      "output_tokens": {"kind": "fixed", "tokens": 100}},
            scheduler={"scheduler_steps": steps}, stop={"requests": 400},
        )
        return run(sc).requests

    one, ten = requests(1), requests(10)
    tpot = one["tpot_s"].median()
    assert ten["tpot_s"].median() == pytest.approx(tpot, rel=0.05)
    extra = (ten["ttft_s"].median() - one["ttft_s"].median()) / tpot
    assert 2.5 < extra <= 5.5


def _prefill_gate(least: int):
    return tiny_scenario(
        scheduler={"prefill_min_waiting": least, "max_num_seqs": 4}, stop={"requests": 3}
    )


def _prefill_end() -> float:
    """When A, alone, ends its prefill step (its first token)."""
    return run(_prefill_gate(1), requests=_requests([0.0])).requests["first_token_s"].iloc[0]


@pytest.mark.parametrize(("least", "waits_for"), [(1, 0), (2, 1), (3, 1)])
@pytest.mark.parametrize("skip", [True, False])
def test_after_a_prefill_a_lone_arrival_waits_for_one_decode_step(least, waits_for, skip):
    """B arrives during A's prefill step. Without the gate it joins the very next step; with AMD's
    patch at 2 or 3 (`prefill_min_waiting`), one waiting request is not enough right after a prefill,
    so one decode step of A runs first and B joins the step after it."""
    arrival = _prefill_end() / 2
    both = run(_prefill_gate(least), skip=skip, requests=_requests([0.0, arrival])).requests
    expected = _prefill_end() if waits_for == 0 else _decode_end(1)
    assert both["scheduled_s"].iloc[1] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("skip", [True, False])
def test_after_a_prefill_enough_arrivals_join_at_once(skip):
    """B and C both arrive during A's prefill step: two wait, which the gate at 2 lets straight in."""
    arrival = _prefill_end() / 2
    three = run(_prefill_gate(2), skip=skip, requests=_requests([0.0, arrival, arrival * 1.5])).requests
    assert three["scheduled_s"].iloc[1:].tolist() == pytest.approx([_prefill_end()] * 2, rel=1e-9)
