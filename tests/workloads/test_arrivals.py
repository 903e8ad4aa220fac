import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from workloads.arrivals import (
    ArrivalError,
    Arrivals,
    Burst,
    ClosedLoop,
    Diurnal,
    Gamma,
    Poisson,
    arrival_times,
    rate_at,
)
from workloads.spec import Workload, generate

ARRIVALS = TypeAdapter(Arrivals)


def gaps(spec, n=100_000, seed=0):
    times = arrival_times(spec, np.random.default_rng(seed), n)
    return np.diff(np.concatenate([[0.0], times]))


def test_poisson_gap_mean_and_cv_within_two_percent():
    g = gaps(Poisson(rate_per_s=4.0))
    assert g.mean() == pytest.approx(0.25, rel=0.02)
    assert g.std() / g.mean() == pytest.approx(1.0, rel=0.02)


@pytest.mark.parametrize("cv", [0.25, 0.5, 2.0, 3.0])
def test_gamma_gaps_have_the_asked_cv(cv):
    g = gaps(Gamma(rate_per_s=10.0, cv=cv))
    assert g.mean() == pytest.approx(0.1, rel=0.03)
    assert g.std() / g.mean() == pytest.approx(cv, rel=0.04)


def test_duration_mode_stays_within_the_duration_and_matches_the_rate():
    for spec in (Poisson(rate_per_s=50), Gamma(rate_per_s=50, cv=2)):
        t = arrival_times(spec, np.random.default_rng(1), duration_s=1000.0)
        assert t[-1] <= 1000.0 and np.all(np.diff(t) >= 0)
        assert len(t) == pytest.approx(50_000, rel=0.03)


def test_diurnal_sinusoid_rate_recovered_from_samples():
    spec = Diurnal(mean_rate_per_s=20.0, amplitude=0.8, period_s=3600.0, peak_s=900.0)
    t = arrival_times(spec, np.random.default_rng(2), duration_s=10 * 3600.0)
    counts, edges = np.histogram(t % 3600.0, bins=60, range=(0, 3600))
    centres = (edges[:-1] + edges[1:]) / 2
    # expected count per phase bin: the curve integrated over one bin, ten periods; midpoint is close enough
    expected = rate_at(spec, centres) * 60.0 * 10
    assert np.all(np.abs(counts - expected) < 4 * np.sqrt(expected) + 0.01 * expected)
    assert counts.argmax() in (14, 15)  # the bins either side of peak_s = 900 s
    assert len(t) == pytest.approx(20.0 * 36_000, rel=0.01)


def test_diurnal_table_rate_recovered_from_samples():
    spec = Diurnal(rates_per_s=(1.0, 8.0, 0.0, 3.0), bucket_s=600.0)
    t = arrival_times(spec, np.random.default_rng(3), duration_s=40 * 2400.0)
    counts, _ = np.histogram(t % 2400.0, bins=4, range=(0, 2400))
    assert counts / (600.0 * 40) == pytest.approx([1.0, 8.0, 0.0, 3.0], rel=0.03)
    assert counts[2] == 0
    first = arrival_times(spec, np.random.default_rng(3), n=1000)
    assert len(first) == 1000 and np.all(np.diff(first) >= 0)


def test_burst_and_closed_loop():
    assert np.all(arrival_times(Burst(), np.random.default_rng(0), 5) == 0)
    with pytest.raises(ArrivalError, match="not burst"):
        arrival_times(Burst(), np.random.default_rng(0), duration_s=10.0)
    nine = {"kind": "fixed", "tokens": 9}
    workload = Workload(arrivals=ClosedLoop(users=8, think_time_s=5), prompt_tokens=nine, output_tokens=nine)
    with pytest.raises(ArrivalError, match="engine drives them"):
        generate(workload, np.random.default_rng(0), requests=10)


@pytest.mark.parametrize(("data", "field"), [
    ({"kind": "poisson", "rate_per_s": -1}, "rate_per_s"),
    ({"kind": "gamma", "rate_per_s": 1, "cv": 0}, "cv"),
    ({"kind": "gamma", "rate_per_s": 1, "cv": -2}, "cv"),
    ({"kind": "diurnal", "mean_rate_per_s": 1, "amplitude": 1.5}, "amplitude"),
    ({"kind": "closed_loop", "users": 0, "think_time_s": 1}, "users"),
])
def test_bad_parameters_name_the_field(data, field):
    with pytest.raises(ValidationError, match=field):
        ARRIVALS.validate_python(data)


@pytest.mark.parametrize(("data", "message"), [
    ({"kind": "diurnal"}, "give mean_rate_per_s"),
    ({"kind": "diurnal", "rates_per_s": [1, 2]}, "needs bucket_s"),
    ({"kind": "diurnal", "rates_per_s": [0, 0], "bucket_s": 60}, "at least one positive"),
    ({"kind": "diurnal", "rates_per_s": [1], "bucket_s": 60, "amplitude": 0.3}, "drop the sinusoid fields"),
])
def test_diurnal_needs_one_shape(data, message):
    with pytest.raises(ValidationError, match=message):
        ARRIVALS.validate_python(data)
