"""Fitting serving-stack profiles: the split is fixed by the rows' configuration before anything is
scored, the fit never reads a scored row, and bands and coverage are read the way the docs say."""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hardware.spec import Efficiency
from hardware.stacks import StackProfile
from sim.fidelity import overheads as ovh
from sim.fidelity import serving
from sim.fidelity import stacks as st
from sim.fidelity import validate as val

DATA = Path(__file__).resolve().parents[1] / "data" / "validation"
MODELS = DATA / "models"


def rows():
    return pd.concat(
        [
            val.read_measurements(DATA / "sample_measurements.csv"),
            val.read_measurements(DATA / "splitwise_a100_steps_sample.csv"),
        ],
        ignore_index=True,
    )


def test_frameworks_name_their_stack():
    assert st.stack_of("TensorRT-LLM (PyTorch backend)") == "trtllm"
    assert st.stack_of("vLLM (V1, TPU backend)") == "vllm"
    assert st.stack_of("SGLang (+ NVIDIA Dynamo, PD disaggregation)") == "sglang"
    assert st.stack_of("JetStream-PyTorch") is None


def test_the_split_depends_on_the_rows_configuration_only():
    data = rows()
    held = set(data.loc[st.held_out(data), "row_id"])
    shuffled = data.sample(frac=1.0, random_state=3)
    assert set(shuffled.loc[st.held_out(shuffled), "row_id"]) == held
    assert set(data.assign(value="1").loc[st.held_out(data.assign(value="1")), "row_id"]) == held


def test_the_two_folds_swap_halves_and_cover_every_row_once():
    data = rows()
    fit1, held1 = st.fold(data, 1)
    fit2, held2 = st.fold(data, 2)
    assert set(held1["row_id"]) == set(fit2["row_id"])
    assert set(held2["row_id"]) == set(fit1["row_id"])
    assert sorted([*held1["row_id"], *held2["row_id"]]) == sorted(data["row_id"])
    with pytest.raises(ValueError, match="fold must be 1 or 2"):
        st.fold(data, 3)


def test_a_serving_run_stays_whole_on_one_side():
    """The rows of one serving run (same configuration, other metrics) never straddle the split."""
    base = {c: "" for c in val.MEASUREMENT_COLUMNS}
    runs = []
    for i, qps in enumerate(("4", "8", "12", "16")):
        for metric in ("ttft", "tpot", "e2e_latency"):
            runs.append(
                {
                    **base,
                    "row_id": f"{qps}-{metric}",
                    "source_id": "S",
                    "gpu": "H100",
                    "framework": "vLLM",
                    "model": "Llama-3.1-8B",
                    "scenario": "poisson_rate",
                    "qps": qps,
                    "metric": metric,
                    "dataset": "sharegpt",
                    "stat": "median",
                    "value": str(i + 1),
                }
            )
    data = pd.DataFrame(runs)
    held = data.assign(held=st.held_out(data))
    assert held.groupby("qps")["held"].nunique().eq(1).all()
    assert held["held"].sum() == 6


def test_the_fit_reads_no_scored_row():
    data = rows()
    fit_rows, scored = st.fold(data, 1)
    fit = st.fit_knobs(fit_rows, st.with_curves(Efficiency(), "t"), MODELS)
    assert fit.fitted_ids
    assert set(fit.fitted_ids) <= set(fit_rows["row_id"])
    assert set(fit.fitted_ids).isdisjoint(scored["row_id"])


def test_the_sequence_overhead_weighs_linear_rows_and_searched_rates_together(monkeypatch, caplog):
    """Two linearised rows that a 1 ms step overhead alone explains exactly, and one searched rate
    whose error is zero only at 10 us per sequence: every candidate is the free fit or a grid value
    with the other knobs refitted around it, the loss adds both kinds of squared error, and the
    least wins. Without a searched rate the free fit is kept and nothing is tried."""
    # relative slopes: per second of step overhead, and per second per sequence at batches 1 and 64
    slopes = np.zeros((2, 6))
    slopes[:, 0] = 100.0
    slopes[:, ovh.SEQ] = (100.0, 6400.0)
    system = ovh.OverheadSystem(slopes, np.array([0.1, 0.1]))

    def searched_errors(searched, profile, models_dir, pool_map=None):
        error = np.array([profile.efficiency.seq_overhead_s / 1e-5 - 1.0]) * 10
        return error, pd.Series(np.nan, index=searched.index)

    monkeypatch.setattr(st, "searched_errors", searched_errors)
    curves = st.with_curves(Efficiency(), "t")
    with caplog.at_level(logging.INFO, logger=st.__name__):
        knobs, tried = st.best_sequence_overhead(system, pd.DataFrame({"row_id": ["r"]}), curves, None)
    assert [seq for seq, _ in tried] == pytest.approx([0.0, *st.SEQ_GRID_S], abs=1e-12)
    # each candidate tried is reported as it finishes (a refit runs for hours)
    assert len(caplog.records) == len(tried)
    n = len(tried)
    assert caplog.messages[-1].startswith(f"{curves.name}: time per sequence {n} of {n} (40.0 us): loss")
    assert knobs.seq_overhead_s == 1e-5
    # the step overhead refitted around 10 us: least squares over the two rows' gaps
    assert knobs.step_overhead_s == pytest.approx(np.mean([0.1 - 100 * 1e-5, 0.1 - 6400 * 1e-5]) / 100)
    free = ovh.solve(system)
    assert (free.seq_overhead_s, free.step_overhead_s) == pytest.approx((0.0, 1e-3), abs=1e-12)
    assert tried[0][1] == pytest.approx(100.0)  # the free fit: no linear error, the rate 100% off
    assert st.best_sequence_overhead(system, pd.DataFrame(), curves, None) == (free, ())


@pytest.mark.parametrize(
    ("losses", "tried"),
    [
        ([5, 4, 3, 2, 1, 0, 1], 7),  # falling all the way: every candidate
        ([5, 4, 3, 4, 5, 6, 7], 5),  # risen twice after the least: the rest are not run
        ([5, 4, 5, 3, 4, 5, 6], 6),  # one rise, then a fall: the count starts again
        ([1, 9, 8, 9, 9, 9, 9], 7),  # level is no rise
    ],
)
def test_the_grid_stops_once_its_loss_has_risen_twice_in_a_row(losses, tried):
    """Candidate 0 is the free fit, 1.. the grid upwards; only the grid's own rises count."""
    asked = []

    def loss(i):
        asked.append(i)
        return float(losses[i])

    got = st.tried_in_order(len(losses), loss)
    assert asked == list(range(tried))
    assert got == {i: float(losses[i]) for i in range(tried)}


def test_each_candidate_after_the_first_searches_from_the_rates_the_one_before_found(monkeypatch):
    """The free fit searches from the submitter's rates; every later candidate from those its
    predecessor found, at the near step."""
    slopes = np.zeros((1, 6))
    slopes[:, 0] = 100.0
    system = ovh.OverheadSystem(slopes, np.array([0.1]))
    searched = pd.DataFrame(
        {"row_id": ["a", "b"], "qps": ["10", "10"], "ttft_p99_limit_ms": ["2000", ""]}, index=[4, 7]
    )
    starts = []

    def searched_errors(rows, profile, models_dir, pool_map=None):
        starts.append((rows["qps"].tolist(), rows["search_step"].tolist()))
        rate = 12.0 + len(starts)
        return np.zeros(1), pd.Series([rate, np.nan], index=rows.index)

    monkeypatch.setattr(st, "searched_errors", searched_errors)
    st.best_sequence_overhead(system, searched, st.with_curves(Efficiency(), "t"), None)
    near = repr(serving.ratesearch.NEAR_STEP)
    assert starts[0] == (["10", "10"], ["", ""])
    # row b states no limits: it is never a search, so it keeps its rate
    assert starts[1] == ([repr(13.0), "10"], [near, ""])
    assert starts[2] == ([repr(14.0), "10"], [near, ""])


def test_a_searched_run_with_no_rate_within_its_limits_counts_as_a_rate_of_zero(monkeypatch):
    predicted = pd.DataFrame(
        {
            "measured": [100.0, 50.0, 10.0],
            "predicted": [120.0, float("nan"), float("nan")],
            "skipped_reason": ["", f"cannot run: {serving.NO_RATE} down to 0.1/s meets them", "unknown GPU"],
            "searched_rate_per_s": [121.0, float("nan"), float("nan")],
        }
    )
    monkeypatch.setattr(st, "predict", lambda rows, profile, models_dir, pool_map=None: predicted)
    errors, rates = st.searched_errors(pd.DataFrame(index=[5, 6, 9]), st.with_curves(Efficiency(), "t"), None)
    assert errors == pytest.approx([0.2, -1.0])
    # the rates found, by the searched rows' index, for the next candidate to start from
    assert rates.index.tolist() == [5, 6, 9]
    assert rates.tolist() == pytest.approx([121.0, float("nan"), float("nan")], nan_ok=True)


def test_bands_are_an_80pct_prediction_interval_of_measured_over_predicted():
    """Ratios 1..10 (10 rows): j = floor(0.1 * 11) = 1 and k = ceil(0.9 * 11) = 10, so the band is
    the smallest and the largest, which hold a new row with probability 9/11 (>= 80%)."""
    held = pd.DataFrame(
        {"group": "tpot", "regime": "decode", "gpu": "H100-SXM", "ratio": np.arange(1.0, 11.0),
         "error_pct": np.arange(10.0)}
    )
    (all_regimes, decode) = st.bands(held)
    assert (all_regimes.regime, decode.regime) == ("all", "decode")
    assert (decode.lo, decode.hi, decode.rows) == (1.0, 10.0, 10)
    assert decode.median_abs_error_pct == pytest.approx(4.5)
    mixed = pd.concat([held.iloc[:3], held.iloc[3:].assign(regime="serving")])
    assert [b.regime for b in st.bands(mixed)] == ["all"]  # 3 decode rows: too few for their own band
    assert st.bands(held.iloc[: st.MIN_BAND_ROWS - 1]) == ()


def test_rows_on_other_vendors_parts_get_bands_of_their_own_which_those_parts_read_first():
    """Ten H100 rows at ratios 1..10 and ten MI300X rows at 0.2..0.65: the bands of all rows span
    the smallest to the largest of the 20 (j = floor(2.1) = 2, k = ceil(18.9) = 19); the MI300X rows
    give their own (`parts` non-nvidia), which an AMD or TPU device reads first and an NVIDIA one
    never does; a metric without such a band falls back to the band of all rows."""
    nvidia = pd.DataFrame({"gpu": "H100-SXM", "ratio": np.arange(1.0, 11.0)})
    amd = pd.DataFrame({"gpu": "MI300X", "ratio": np.linspace(0.2, 0.65, 10)})
    held = pd.concat([nvidia, amd], ignore_index=True).assign(
        group="throughput", regime="serving", error_pct=0.0
    )
    held = pd.concat([held, nvidia.assign(group="tpot", regime="serving", error_pct=0.0)], ignore_index=True)
    found = {(b.metric, b.regime, b.parts): b for b in st.bands(held)}
    everything = found["throughput", "serving", "any"]
    assert (everything.lo, everything.hi) == pytest.approx((0.25, 9.0))
    other = found["throughput", "serving", "non-nvidia"]
    assert (other.lo, other.hi, other.rows) == pytest.approx((0.2, 0.65, 10))
    assert ("tpot", "serving", "non-nvidia") not in found
    profile = StackProfile(name="t", description="", scale_up_latency_s=0.0, scale_up_algorithm="ring",
                           uncertainty=tuple(found.values()))
    assert profile.band("throughput", "serving", "AMD") == other
    assert profile.band("throughput", "serving", "Google") == other
    assert profile.band("throughput", "serving", "NVIDIA") == found["throughput", "serving", "any"]
    assert profile.band("throughput", "serving") == found["throughput", "serving", "any"]
    assert profile.band("tpot", "serving", "AMD") == found["tpot", "serving", "any"]
    inside = st.covered(held, profile)
    assert inside.iloc[:9].all() and inside.iloc[9] == 0  # 1..9 inside 0.25-9.0, 10 outside
    assert inside.iloc[10:20].all()  # the MI300X rows, each in its own band


def test_the_prediction_interval_holds_80pct_of_new_draws():
    """n = 29 ratios: j = 3, k = 27, so the band is the 3rd and 27th smallest; over many samples a
    new draw lands inside it (27 - 3) / 30 = 80% of the time, where the sample's 10th-90th
    percentiles hold fewer (their expected coverage is below 80% for small n)."""
    x = np.arange(1.0, 30.0)
    assert st.prediction_interval(x[::-1]) == (3.0, 27.0)
    rng = np.random.default_rng(0)
    draws = rng.lognormal(size=(20_000, 12))
    inside = [lo <= d[-1] <= hi for d in draws for lo, hi in [st.prediction_interval(d[:-1])]]
    percentile = [np.quantile(d[:-1], 0.1) <= d[-1] <= np.quantile(d[:-1], 0.9) for d in draws]
    assert np.mean(inside) == pytest.approx(10 / 12, abs=0.01)  # n = 11: j = 1, k = 11
    assert np.mean(percentile) < 0.72


def test_a_duration_ratio_is_turned_round_to_read_like_a_rate():
    results = pd.DataFrame(
        {
            "row_id": ["a", "b"],
            "metric": ["benchmark_duration", "output_throughput"],
            "group": "throughput",
            "regime": "serving",
            "measured": [20.0, 50.0],
            "predicted": [10.0, 100.0],
            "error_pct": [-50.0, 100.0],
            "skipped_reason": "",
        }
    )
    frame = pd.DataFrame({"row_id": ["a", "b"], "framework": "vLLM", "gpu": "H100", "input_len": ""})
    assert st.ratios(results, frame)["ratio"].tolist() == [0.5, 0.5]


def test_latencies_of_a_searched_run_are_not_compared_with_the_roofline_but_its_rate_is():
    rows = pd.DataFrame(
        {
            "metric": ["ttft", "request_throughput", "ttft", "tpot"],
            "ttft_p99_limit_ms": ["2000", "2000", "", ""],
        }
    )
    assert st.roofline_comparable(rows).tolist() == [False, True, True, True]
    assert st.roofline_comparable(rows.drop(columns="ttft_p99_limit_ms")).tolist() == [True] * 4


def test_coverage_judges_each_run_by_the_band_read_from_the_other_runs():
    """Ten runs with one TPOT row each at ratios 1..10, and a second row (ratio 0.5) in the run at
    10. Left out, the run at r (1..9) meets the band of the other ten rows, the smallest to the
    largest (n = 10: j = 1, k = 10), 0.5-10, and lies inside. The run at 10 leaves with both its
    rows: the band of 1..9 (n = 9: j = 1, k = 9) holds neither, where a band that had read the
    0.5 row would have held it. So 9 of 11."""
    base = {c: "" for c in val.MEASUREMENT_COLUMNS}
    measured = [
        {**base, "row_id": f"r{i}", "source_id": "S", "gpu": "H100-SXM", "qps": str(i), "metric": "tpot"}
        for i in range(1, 11)
    ]
    measured.append({**measured[-1], "row_id": "r10b", "metric": "itl"})
    data = pd.DataFrame(measured)
    held = pd.DataFrame(
        {"row_id": data["row_id"], "gpu": "H100-SXM", "group": "tpot", "regime": "serving",
         "ratio": [*np.arange(1.0, 11.0), 0.5], "error_pct": 0.0}
    )
    profile = StackProfile(name="t", description="", scale_up_latency_s=0.0, scale_up_algorithm="ring")
    inside = st.covered_leaving_out_runs(held, data, profile)
    assert inside.tolist() == [1.0] * 9 + [0.0, 0.0]
    assert st.runs(data).nunique() == 10


def test_a_metric_with_too_few_rows_of_its_own_reads_its_band_from_every_stacks_rows():
    """A stack with ten held-out TPOT rows (ratios 1..10) and three TTFT rows keeps its own TPOT
    band and takes its TTFT band from the pool (its profile's ratios on every stack's held-out
    rows, here ten at 0.5..0.95), marked as read from every stack. Coverage leaves a run's rows out
    of the pool too: the own TTFT row at 2.0, also in the pool, is judged by the band of the other
    pool rows (0.5-0.95), which does not hold it."""
    base = {c: "" for c in val.MEASUREMENT_COLUMNS}
    own_rows = [
        {**base, "row_id": f"t{i}", "source_id": "S", "gpu": "H100-SXM", "qps": str(i), "metric": "tpot"}
        for i in range(1, 11)
    ]
    own_rows += [{**base, "row_id": f"f{i}", "source_id": "S", "gpu": "H100-SXM", "qps": f"f{i}",
                  "metric": "ttft"} for i in range(3)]
    data = pd.DataFrame(own_rows)
    held = pd.DataFrame(
        {"row_id": data["row_id"], "gpu": "H100-SXM", "group": [*["tpot"] * 10, *["ttft"] * 3],
         "regime": "serving", "ratio": [*np.arange(1.0, 11.0), 2.0, 0.6, 0.7], "error_pct": 0.0}
    )
    others = pd.DataFrame(
        {"row_id": [f"o{i}" for i in range(10)], "gpu": "H100-SXM", "group": "ttft", "regime": "serving",
         "ratio": np.linspace(0.5, 0.95, 10), "error_pct": 0.0}
    )
    pool = pd.concat([others, held[held["group"] == "ttft"]], ignore_index=True)
    found = {(b.metric, b.regime): b for b in st.bands(held, pool)}
    assert found["tpot", "serving"].rows_of == "this stack" and found["tpot", "serving"].rows == 10
    ttft = found["ttft", "serving"]
    assert (ttft.rows_of, ttft.rows, ttft.hi) == ("every stack", 13, 2.0)
    assert st.bands(held) == tuple(b for b in found.values() if b.metric == "tpot")
    profile = StackProfile(name="t", description="", scale_up_latency_s=0.0, scale_up_algorithm="ring")
    inside = st.covered_leaving_out_runs(held, data, profile, pool)
    assert inside.tolist()[10:] == [0.0, 1.0, 1.0]
