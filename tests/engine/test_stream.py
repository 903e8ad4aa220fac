"""Streamed runs: the ring engine against the ordinary one, the online summary against the exact
one, and what a streamed run refuses."""

import numpy as np
import pandas as pd
import pytest
from ddsketch import DDSketch
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.api import arrival_regime, build_pools, cluster_config, make_requests, scheduler_config
from sim.engine import metrics
from sim.engine.online import MAPPING, RELATIVE_ACCURACY, TIME_BINS, TimeCounts, add_values
from sim.engine.recorder import REASONS
from sim.engine.simulate import simulate
from sim.engine.steady import ci_names
from sim.engine.stream import RingFull, simulate_stream
from sim.scenario import ScenarioError, scenario_from_dict
from sim.stream import run_streamed
from tests.conftest import TINY_HW, TINY_MODEL, disaggregated_cluster
from workloads.spec import generate_chunks


def scenario(requests=2000, rate=40.0, cluster=None, arrivals=None, **extra):
    return scenario_from_dict(
        {
            "seed": 5,
            "hardware": TINY_HW,
            "model": TINY_MODEL | {"max_context_tokens": 400},
            "cluster": cluster or {"replicas": 2, "router": "least_tokens"},
            "scheduler": {"max_num_batched_tokens": 256, "max_num_seqs": 16},
            "workload": {
                "arrivals": arrivals or {"kind": "poisson", "rate_per_s": rate},
                "prompt_tokens": {"kind": "uniform", "low": 20, "high": 300},
                "output_tokens": {"kind": "uniform", "low": 1, "high": 120},
            },
            "stop": {"requests": requests},
            **extra,
        }
    )


class Collect:
    def __init__(self):
        self.tables, self.rows = [], []

    def requests(self, first_id, reqs, state):
        table = metrics.requests_table(reqs, state, REASONS)
        table["request_id"] += first_id
        self.tables.append(table)

    def events(self, rows):
        self.rows.append(rows)


def streamed_table(sc, reqs, chunk, ring):
    sink = Collect()
    pools, per_token, latency = build_pools(sc)
    chunks = (reqs.rows(i, min(i + chunk, len(reqs))) for i in range(0, len(reqs), chunk))
    result = simulate_stream(
        chunks,
        reqs.class_names,
        pools,
        scheduler_config(sc.scheduler),
        cluster_config(sc, per_token, latency),
        sink,
        chunk=chunk,
        ring=ring,
    )
    return pd.concat(sink.tables, ignore_index=True), np.concatenate(sink.rows), result


def ordinary_table(sc, reqs):
    pools, per_token, latency = build_pools(sc)
    res = simulate(reqs, pools, scheduler_config(sc.scheduler), cluster_config(sc, per_token, latency))
    return metrics.requests_table(res.requests, res.state, REASONS), res


@pytest.mark.parametrize(
    "cluster", [None, disaggregated_cluster(decode_replicas=2)], ids=["mixed", "disaggregated"]
)
def test_ring_engine_gives_the_ordinary_engine_rows(cluster):
    sc = scenario(cluster=cluster)
    reqs = make_requests(sc)
    want, ref = ordinary_table(sc, reqs)
    got, events, result = streamed_table(sc, reqs, chunk=128, ring=512)
    pd.testing.assert_frame_equal(got, want)
    assert (want["rejected_reason"] == "context_limit").any()  # rejections take the same path
    assert len(events) == len(ref.recorder.rows) // 8 and result.stats.events == ref.stats.events


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    rate=st.floats(5.0, 200.0),
    chunk=st.sampled_from([16, 50, 128]),
    segments=st.integers(2, 6),
)
def test_ring_engine_matches_whatever_the_chunking(seed, rate, chunk, segments):
    sc = scenario(requests=400, rate=rate).model_copy(update={"seed": seed})
    reqs = make_requests(sc)
    want, _ = ordinary_table(sc, reqs)
    try:
        got, _, _ = streamed_table(sc, reqs, chunk=chunk, ring=chunk * segments)
    except RingFull:  # a ring too small for the requests in flight is refused, never wrong
        return
    pd.testing.assert_frame_equal(got, want)


def test_a_ring_too_small_for_the_backlog_is_refused():
    sc = scenario(requests=2000, rate=200_000.0)  # ten times what two tiny replicas serve
    with pytest.raises(RingFull, match="requests arrived while request 0 was still in the system"):
        streamed_table(sc, make_requests(sc), chunk=64, ring=128)


def test_time_counts_merge_bins_as_the_run_grows():
    counts = TimeCounts(width_s=1.0)
    counts.add(np.array([0.5, 1.5, 1.7, 10.0]))
    assert counts.between(0.0, 2.0) == 3 and counts.width == 1.0
    counts.add(np.array([TIME_BINS * 1.5]))  # past the last bin: widths double
    assert counts.width == 2.0 and counts.counts.sum() == 5
    assert counts.between(0.0, 2.0) == 3 and counts.between(0.0, 12.0) == 4
    assert counts.between(0.0, 1.0) == pytest.approx(1.5)  # half of the first 2-second bin


def test_bulk_adds_fill_the_sketch_as_single_adds_do():
    values = np.random.default_rng(2).lognormal(-3.0, 1.5, 50_000)
    values[:100] = [MAPPING.value(k) for k in range(-400, -300)]  # bucket representatives
    values[100:200] = MAPPING.gamma ** np.arange(-400.0, -300.0)  # bucket edges, within rounding
    bulk, single = DDSketch(RELATIVE_ACCURACY), DDSketch(RELATIVE_ACCURACY)
    add_values(bulk, values)
    for v in values.tolist():
        single.add(v)
    assert bulk.count == single.count
    for q in (0.0, 0.01, 0.5, 0.9, 0.99, 0.999, 1.0):
        assert bulk.get_quantile_value(q) == single.get_quantile_value(q)


DIURNAL = {"kind": "diurnal", "mean_rate_per_s": 30.0, "amplitude": 0.5, "period_s": 600.0}


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    """A streamed run of a time-varying load, and the exact summary of the same rows."""
    folder = tmp_path_factory.mktemp("day")
    sc = scenario(requests=30_000, arrivals=DIURNAL, slo={"ttft_s": 0.5})
    streamed = run_streamed(sc, folder, chunk=1000, ring=8000)
    table = pd.read_parquet(folder / "requests.parquet")
    table["rejected_reason"] = table["rejected_reason"].astype(object).where(table["rejected_reason"].notna())
    timeseries = pd.read_parquet(folder / "timeseries.parquet")
    zero = dict.fromkeys(("idle_fraction", "busy_device_s", "active_device_s", "compute_bound_s"), 0.0)
    zero |= dict.fromkeys(("memory_bound_s", "link_s", "electricity_usd_per_kwh", "sim_wall_s"), 0.0)
    consts = metrics.RunConstants(1, None, None, **zero, sim_events=0, **arrival_regime(sc))
    exact = metrics.summarize(table, timeseries, consts, sc.slo, {})
    return streamed, table, timeseries, exact


def test_streamed_counts_and_rates_are_exact(day):
    streamed, table, timeseries, exact = day
    s = streamed.summary
    assert len(table) == s.requests_total == 30_000
    assert list(table["request_id"]) == list(range(30_000))
    for name in ("requests_finished", "requests_rejected", "preemptions", "warmup_requests_dropped"):
        assert getattr(s, name) == exact[name], name
    for name in ("duration_s", "output_tokens_per_s", "input_tokens_per_s", "kv_peak_fraction"):
        assert getattr(s, name) == pytest.approx(exact[name], rel=1e-12), name
    for name in ("throughput_rps", "goodput_rps", "slo_attainment", "mean_queue_s"):
        assert getattr(s, name) == pytest.approx(exact[name], rel=1e-9), name
    assert streamed.rejected == table["rejected_reason"].value_counts().to_dict()
    assert len(timeseries) > len(table)  # an event or more per request, all written out


def test_streamed_percentiles_are_within_the_sketch_relative_accuracy(day):
    streamed, table, _, _ = day
    for m in ("ttft", "tpot", "e2e"):
        values = np.sort(table[f"{m}_s"].dropna().to_numpy())
        for q in (50, 90, 99):
            exact = values[int(q / 100 * (len(values) - 1))]
            estimate = streamed.summary.metric(f"{m}_p{q}_s")
            assert abs(estimate - exact) <= RELATIVE_ACCURACY * exact, (m, q)
        for name, group in table.groupby("class", observed=True):
            per_class = streamed.classes.set_index("class").loc[name, f"{m}_p99_s"]
            exact = np.sort(group[f"{m}_s"].dropna().to_numpy())
            assert abs(per_class - exact[int(0.99 * (len(exact) - 1))]) <= RELATIVE_ACCURACY * per_class


def test_streamed_intervals_cover_their_estimates(day):
    s = day[0].summary
    for name in ("ttft_p50_s", "ttft_p90_s", "e2e_p90_s", "mean_queue_s", "throughput_rps", "slo_attainment"):
        lo, hi = (s.metric(bound) for bound in ci_names(name))
        assert lo is not None and lo < s.metric(name) < hi, name
    assert s.ttft_p99_ci_lo_s is None  # 30 chunks of 1,000: too few values past a p99 in a batch


def test_streamed_classes_table_counts_every_request(day):
    streamed, table, _, _ = day
    classes = streamed.classes
    assert classes["requests"].sum() == len(table)
    assert classes["finished"].sum() == table["finish_s"].notna().sum()


def test_same_seed_same_streamed_run(tmp_path, day):
    sc = scenario(requests=30_000, arrivals=DIURNAL, slo={"ttft_s": 0.5})
    again = run_streamed(sc, tmp_path, chunk=1000, ring=8000)
    assert again.summary.to_dict() | {"sim_wall_s": 0} == day[0].summary.to_dict() | {"sim_wall_s": 0}
    first = pd.read_parquet(tmp_path / "requests.parquet")
    first["rejected_reason"] = first["rejected_reason"].astype(object).where(first["rejected_reason"].notna())
    pd.testing.assert_frame_equal(first, day[1])


def test_streamed_chunks_draw_the_poisson_rate():
    sc = scenario(requests=20_000, rate=40.0)
    chunks = list(generate_chunks(sc.workload, sc.seed, 20_000, None, 3000))
    arrival = np.concatenate([c.arrival_s for c in chunks])
    assert [len(c) for c in chunks] == [3000] * 6 + [2000]
    assert np.all(np.diff(arrival) >= 0)
    gaps = np.diff(arrival)
    assert gaps.mean() == pytest.approx(1 / 40.0, rel=0.03)  # 20,000 gaps: 0.7% standard error
    by_time = list(generate_chunks(sc.workload, sc.seed, None, 100.0, 3000))
    assert np.concatenate([c.arrival_s for c in by_time]).max() <= 100.0


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (
            {"workload": {"arrivals": {"kind": "closed_loop", "users": 4, "think_time_s": 1}}},
            "workload.arrivals",
        ),
        ({"kv_cache": {"prefix_caching": True}}, "kv_cache.prefix_caching"),
        ({"stop": {"until": "converged", "requests": 2000}}, "stop.until"),
    ],
)
def test_what_a_streamed_run_cannot_do_is_refused_by_field(tmp_path, extra, field):
    base = scenario().model_dump(mode="json")
    for key, value in extra.items():
        base[key] = base[key] | value if isinstance(base.get(key), dict) else value
    with pytest.raises(ScenarioError, match=field.replace(".", r"\.")):
        run_streamed(scenario_from_dict(base), tmp_path)


def test_streamed_run_of_an_overloaded_cluster_names_the_field(tmp_path):
    sc = scenario(requests=3000, rate=200_000.0)
    with pytest.raises(ScenarioError, match=r"cluster\.replicas: more than 512 requests arrived"):
        run_streamed(sc, tmp_path, chunk=64, ring=512)
