"""Output analysis checked against cases with known answers: the M/D/1 queue's mean wait
(Pollaczek-Khinchine), the quantiles and rate of known distributions, the warm-up of a run started
empty, stationary series that have none, and a run whose arrivals outrun its service."""

import numpy as np
import pytest

from sim import stats
from sim.api import run
from sim.runnable import load_scenario
from tests.conftest import tiny_scenario


def _md1(rate_per_s: float, requests: int, seed: int):
    """One replica serving one request at a time, every request the same: an M/D/1 queue."""
    return tiny_scenario(
        seed=seed,
        scheduler={"max_num_seqs": 1, "max_num_batched_tokens": 256},
        workload={
            "arrivals": {"kind": "poisson", "rate_per_s": rate_per_s},
            "prompt_tokens": {"kind": "fixed", "tokens": 100},
            "output_tokens": {"kind": "fixed", "tokens": 1},
        },
        stop={"requests": requests},
    )


@pytest.fixture(scope="module")
def service_s() -> float:
    done = run(_md1(1.0, 20, 0)).requests
    service = (done["finish_s"] - done["scheduled_s"]).to_numpy()
    assert np.ptp(service) < 1e-9 * service[0]  # deterministic, as M/D/1 needs
    return float(service[0])


def test_md1_mean_wait_interval_covers_pollaczek_khinchine(service_s):
    """At load rho the mean wait is rho S / (2 (1 - rho)); the summary's 95% interval of the mean
    queueing time must contain it in at least 90 of 100 independent runs."""
    rho = 0.5
    expected = rho * service_s / (2 * (1 - rho))
    covered = 0
    for seed in range(100):
        s = run(_md1(rho / service_s, 4000, seed)).summary
        covered += s.mean_queue_ci_lo_s <= expected <= s.mean_queue_ci_hi_s
    assert covered >= 90, f"{covered} of 100 intervals contain the Pollaczek-Khinchine mean wait"


def test_quantile_and_rate_intervals_cover_known_values():
    rng = np.random.default_rng(0)
    p90 = -np.log(0.1)  # of a unit exponential
    q_covered = r_covered = 0
    for _ in range(100):
        q = stats.quantile_ci(rng.exponential(1.0, 4000), 90)
        q_covered += q.lo <= p90 <= q.hi
        arrivals = np.cumsum(rng.exponential(1 / 5.0, 4000))  # a Poisson process at 5 per second
        r = stats.rate_ci(arrivals, 0.0, float(arrivals[-1]))
        r_covered += r.lo <= 5.0 <= r.hi
    assert q_covered >= 90 and r_covered >= 90, (q_covered, r_covered)


def _ar1(rng, n: int, phi: float = 0.9) -> np.ndarray:
    """A stationary AR(1) series, started from its stationary distribution."""
    e = rng.normal(size=n)
    x = np.empty(n)
    x[0] = e[0] / np.sqrt(1 - phi * phi)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return x


def test_mser5_drops_next_to_nothing_of_stationary_series():
    rng = np.random.default_rng(1)
    dropped = [stats.mser5(rng.exponential(1.0, 10_000)) / 10_000 for _ in range(50)]
    dropped += [stats.mser5(_ar1(rng, 10_000)) / 10_000 for _ in range(50)]
    assert np.mean(dropped) < 0.005 and max(dropped) < 0.05, (np.mean(dropped), max(dropped))


def test_mser5_finds_a_known_transient():
    rng = np.random.default_rng(2)
    x = np.concatenate([np.linspace(0.0, 10.0, 500), 10.0 + rng.normal(size=9500)])
    assert 400 <= stats.mser5(x) <= 700


def _chat(rate_per_s: float, seed: int, requests: int = 6000):
    return load_scenario(
        "examples/chat-h100.yaml",
        [f"workload.arrivals.rate_per_s={rate_per_s}", f"stop.requests={requests}", f"seed={seed}"],
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_run_started_empty_at_90_percent_load_loses_its_fill_up(seed):
    """The chat example's two replicas serve about 23 requests/s; at 20.5 the first seconds run
    with a half-empty batch, which the summary leaves out."""
    s = run(_chat(20.5, seed)).summary
    assert not s.overloaded
    assert s.warmup_requests_dropped > 0 and s.steady_start_s > 1.0
    assert s.warmup_requests_dropped + s.drain_requests_dropped < 0.25 * s.requests_total


def test_overload_is_reported_with_the_sustainable_rate():
    s = run(_chat(40.0, 1, 4000)).summary
    assert s.overloaded
    assert 20.0 < s.sustainable_rps < 26.0 and s.offered_rps > 38.0
    assert s.ttft_p99_s is None and s.ttft_p99_ci_hi_s is None
    calm = run(_chat(12.0, 1, 4000)).summary
    assert not calm.overloaded and calm.ttft_p90_ci_lo_s <= calm.ttft_p90_s <= calm.ttft_p90_ci_hi_s
    assert calm.ttft_p99_ci_lo_s is None  # 4,000 requests hold too few in the 1% tail for an interval


def test_bursts_are_measured_whole():
    """A burst has no steady state: every request is measured, as before."""
    s = run(tiny_scenario(workload={"arrivals": {"kind": "burst"}})).summary
    assert s.warmup_requests_dropped == 0 and s.drain_requests_dropped == 0 and not s.overloaded
    assert s.throughput_rps == pytest.approx(s.requests_finished / s.duration_s)


def test_a_heavier_head_is_an_excursion_not_a_warm_up():
    """Dropping a head that is busier than the rest would flatter the run, so it is never dropped."""
    rng = np.random.default_rng(3)
    fill = np.concatenate([np.linspace(0.0, 10.0, 200), 10.0 + rng.normal(size=1800)])
    burst = np.concatenate([np.full(200, 30.0), 10.0 + rng.normal(size=1800)])
    assert stats.warmup_samples(fill) > 0 and stats.warmup_samples(burst) == 0


def test_a_load_that_still_grows_has_no_steady_state():
    rng = np.random.default_rng(4)
    flat = 50.0 + rng.normal(size=2000)
    assert not stats.trending(flat)
    assert stats.trending(flat + np.linspace(0.0, 100.0, 2000))


def test_a_run_that_never_settles_is_flagged():
    """Sessions whose population is still growing when the run stops: no steady state to report."""
    s = run(load_scenario("examples/multiturn-prefix-cache.yaml", ["stop.requests=2000"])).summary
    assert not s.steady_state


def test_latency_intervals_never_reach_below_zero():
    """A run near its edge, whose TTFT median spread over batches once gave a 95% interval from
    -0.09 s: a latency's interval is cut at zero, as a rate's is."""
    near_edge = ["workload.arrivals.rate_per_s=3", "stop.requests=4000"]
    summary = run(load_scenario("examples/multiturn-prefix-cache.yaml", near_edge)).summary.to_dict()
    bounds = {name: v for name, v in summary.items() if name.endswith("_ci_lo_s")}
    assert bounds["ttft_p50_ci_lo_s"] == 0.0
    assert all(v is None or v >= 0.0 for v in bounds.values()), bounds


def test_a_tail_percentile_needs_enough_samples_for_an_interval():
    rng = np.random.default_rng(5)
    assert np.isnan(stats.quantile_ci(rng.exponential(1.0, 19_999), 99).lo)
    assert np.isfinite(stats.quantile_ci(rng.exponential(1.0, 20_000), 99).lo)
    assert np.isfinite(stats.quantile_ci(rng.exponential(1.0, 2_000), 90).lo)
    assert stats.quantile_min_samples(99) == 20_000 and stats.quantile_min_samples(90) == 2_000
    assert stats.quantile_min_samples(50) == 400


def test_intervals_stay_within_what_the_quantity_can_be():
    share = stats.Interval(0.97, 0.90, 1.04).within(0.0, 1.0)
    assert (share.lo, share.hi) == (0.90, 1.0)
    rate = stats.Interval(0.5, -0.2, 1.2).within(0.0)
    assert (rate.lo, rate.hi) == (0.0, 1.2)
