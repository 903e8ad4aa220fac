"""Run-length control (`stop: {until: converged}`): the schema, the doubling loop and the CLI's
warning when the cap is hit."""

import json
import re

import pytest
import yaml
from typer.testing import CliRunner

from sim.api import run
from sim.cli import app
from sim.converge import relative_half_width, request_counts
from sim.engine.summary import FIELDS, Summary
from sim.limits import LimitError, check_memory
from sim.runnable import load_scenario
from sim.scenario import Scenario, ScenarioError, scenario_from_dict
from tests.conftest import TINY_BASE, tiny_scenario


def converging(**stop):
    return tiny_scenario(stop={"until": "converged", **stop})


def test_request_counts_double_up_to_the_cap():
    assert request_counts(2000, 200_000) == [2000, 4000, 8000, 16000, 32000, 64000, 128000, 200_000]
    assert request_counts(500, 500) == [500]


def test_relative_half_width_is_inf_without_an_interval():
    s = Summary(
        **{
            **dict.fromkeys(FIELDS),
            "throughput_rps": 10.0,
            "throughput_ci_lo_rps": 9.0,
            "throughput_ci_hi_rps": 11.5,
            "ttft_p99_s": 1.0,
        }
    )
    assert relative_half_width(s, "throughput_rps") == pytest.approx(0.125)
    assert relative_half_width(s, "ttft_p99_s") == float("inf")


def test_converges_with_doubling_requests():
    stop = {"requests": 1000, "relative_ci": 0.10, "metrics": ["throughput_rps", "e2e_p90_s"]}
    attempts = []
    s = run(converging(**stop), attempt=attempts.append).summary
    assert s.converged is True and attempts == request_counts(1000, 200_000)[: len(attempts)]
    assert s.converged_requests == attempts[-1] == s.requests_total
    assert all(relative_half_width(s, f) <= 0.10 for f in stop["metrics"])


def test_cap_hit_is_reported_not_converged():
    attempts = []
    s = run(converging(requests=200, max_requests=400, relative_ci=0.001), attempt=attempts.append).summary
    assert attempts == [200, 400]
    assert s.converged is False and s.converged_requests == 400 == s.requests_total


def test_overloaded_run_stops_at_once():
    """The chat example's two replicas serve about 23 requests/s; at 40 more requests only grow
    the queue, so the first attempt is the last."""
    stop = "stop={until: converged, requests: 4000, max_requests: 16000}"
    attempts = []
    sc = load_scenario("examples/chat-h100.yaml", ["workload.arrivals.rate_per_s=40", stop])
    s = run(sc, attempt=attempts.append).summary
    assert s.overloaded and s.converged is False and attempts == [4000]


def test_without_until_nothing_changes():
    s = run(tiny_scenario()).summary
    assert s.converged is None and s.converged_requests is None and s.requests_total == 50


def test_defaults_fill_in_and_read_back():
    stop = Scenario.model_validate({**TINY_BASE, "stop": {"until": "converged"}}).stop
    assert (stop.requests, stop.relative_ci, stop.max_requests) == (2000, 0.05, 200_000)
    assert stop.metrics == ("ttft_p99_s", "tpot_p99_s", "e2e_p99_s", "throughput_rps")
    for sc in (converging(), tiny_scenario()):
        assert Scenario.model_validate(sc.model_dump(mode="json")) == sc


@pytest.mark.parametrize(
    ("stop", "message"),
    [
        ({"until": "converged", "metrics": ["ttft_p99"]}, "stop.metrics: 'ttft_p99' is not a summary field"),
        ({"until": "converged", "metrics": ["kv_peak_fraction"]}, "choose from ttft_p50_s"),
        ({"until": "converged", "relative_ci": 0}, "stop.relative_ci"),
        ({"until": "converged", "relative_ci": 1.5}, "stop.relative_ci"),
        ({"until": "converged", "requests": 500, "max_requests": 100}, "max_requests (100) is below"),
        ({"until": "converged", "duration_s": 10}, "give requests, not duration_s"),
        ({"until": "converged", "max_requests": 2**60}, "stop.max_requests"),
        ({"requests": 100, "relative_ci": 0.1}, "relative_ci: only with until: converged"),
        ({"until": "soon", "requests": 100}, "stop.until"),
    ],
)
def test_bad_convergence_targets_name_the_field(stop, message):
    with pytest.raises(ScenarioError, match=re.escape(message)):
        scenario_from_dict({**TINY_BASE, "stop": stop})


def test_memory_is_checked_against_the_cap():
    with pytest.raises(LimitError, match=r"stop\.max_requests: about 200,000 requests"):
        check_memory(converging(), available=1e6)


def test_cli_warns_when_the_cap_is_hit(tmp_path):
    path = tmp_path / "tiny.yaml"
    stop = {
        "until": "converged",
        "requests": 200,
        "max_requests": 400,
        "relative_ci": 0.001,
        "metrics": ["throughput_rps", "ttft_p99_s"],
    }
    path.write_text(yaml.safe_dump({**TINY_BASE, "stop": stop}))
    r = CliRunner().invoke(app, ["run", str(path), "--json"])
    assert r.exit_code == 0
    assert json.loads(r.stdout)["converged"] is False
    warning = r.stderr.replace("\n", " ")
    assert "not converged" in warning and "at the cap of 400 requests (target ±0.1%)" in warning
    assert "throughput_rps ±" in warning and "ttft_p99_s has no interval" in warning
