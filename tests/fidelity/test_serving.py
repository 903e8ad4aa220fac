"""Serving-benchmark rows: each is simulated as its benchmark ran (Poisson, closed loop or offline),
the right statistic is read, rows of one run share one simulation, and what cannot be simulated says why."""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from hardware import load_hardware
from sim.api import run
from sim.cli import app
from sim.cost.parallelism import Parallelism
from sim.cost.roofline import RooflineCost
from sim.fidelity import ratesearch, serving
from sim.fidelity.validate import (
    MEASUREMENT_COLUMNS,
    coverage,
    load_device,
    read_measurements,
    resolve_gpu,
    resolve_model,
    skip_reasons,
    validate,
)
from sim.scenario import Scenario
from workloads import load_model

BASE = {
    "source_id": "TEST",
    "source_path": "bench.md",
    "framework": "vLLM",
    "model": "Meta-Llama-3.1-8B-Instruct",
    "precision": "BF16",
    "gpu": "H100-SXM",
    "num_gpus": "1",
    "tp": "1",
    "scenario": "poisson_rate",
    "input_len": "256",
    "output_len": "32",
    "qps": "4",
    "num_prompts": "60",
    "unit": "ms",
}


def _table(tmp_path, rows: list[dict]) -> pd.DataFrame:
    """Rows (each overriding BASE) written as a measurement CSV and read back the way `validate` reads it."""
    frame = pd.DataFrame([{**BASE, "row_id": str(i), **r} for i, r in enumerate(rows)])
    path = tmp_path / "serving.csv"
    frame.reindex(columns=list(MEASUREMENT_COLUMNS)).fillna("").to_csv(path, index=False)
    return read_measurements(path)


def _scenario(arrivals: dict, requests: int) -> Scenario:
    """The scenario a BASE row describes, written out by hand."""
    return Scenario(
        hardware="h100-sxm",
        stack="none",  # validate serves each row's device as given
        model="llama-3.1-8b",
        workload={
            "arrivals": arrivals,
            "prompt_tokens": {"kind": "fixed", "tokens": 256},
            "output_tokens": {"kind": "fixed", "tokens": 32},
        },
        stop={"requests": requests},
    )


def test_a_poisson_row_is_the_scenario_it_describes_run_through_the_engine(tmp_path):
    rows = [
        {"metric": "ttft", "stat": "median", "value": "20"},
        {"metric": "e2e_latency", "stat": "p99", "value": "400"},
        {"metric": "request_throughput", "stat": "none", "value": "4", "unit": "req/s"},
    ]
    got = validate(_table(tmp_path, rows)).set_index("row_id")
    assert (got["skipped_reason"] == "").all(), got["skipped_reason"].tolist()
    reqs = run(_scenario({"kind": "poisson", "rate_per_s": 4.0}, 60)).requests
    assert got.loc["0", "predicted"] == pytest.approx(np.median(reqs["ttft_s"]) * 1e3)
    assert got.loc["1", "predicted"] == pytest.approx(np.percentile(reqs["e2e_s"], 99) * 1e3)
    span = reqs["finish_s"].max() - reqs["arrival_s"].min()
    assert got.loc["2", "predicted"] == pytest.approx(60 / span)
    assert got.loc["0", "error_pct"] == pytest.approx((got.loc["0", "predicted"] / 20 - 1) * 100)
    assert set(got["regime"]) == {"serving"} and list(got["group"]) == ["ttft", "e2e", "throughput"]


def test_a_fixed_concurrency_row_runs_closed_loop_users_without_think_time(tmp_path):
    rows = [
        {"scenario": "fixed_concurrency", "qps": "", "concurrency": "1", "metric": m, "stat": s, "value": "1",
         "unit": u}
        for m, s, u in (("e2e_latency", "mean", "s"), ("request_throughput", "none", "req/s"))
    ]
    table = _table(tmp_path, rows)
    row = next(table.itertuples(index=False))
    plan = serving.plan_run(row, load_model("llama-3.1-8b"), load_hardware("h100-sxm"))
    assert dict(plan.arrivals) == {"kind": "closed_loop", "users": 1, "think_time_s": 0.0}
    got = validate(table).set_index("row_id")
    # one user who never thinks: back-to-back requests, so throughput is 1 / mean latency
    assert got.loc["1", "predicted"] == pytest.approx(1 / got.loc["0", "predicted"], rel=1e-9)
    reqs = run(_scenario({"kind": "closed_loop", "users": 1, "think_time_s": 0.0}, 60)).requests
    assert got.loc["0", "predicted"] == pytest.approx(reqs["e2e_s"].mean())


def test_an_offline_row_sends_every_request_at_once(tmp_path):
    table = _table(tmp_path, [{"scenario": "offline", "qps": "inf", "metric": "output_throughput",
                               "stat": "none", "value": "1", "unit": "tok/s"}])
    plan = serving.plan_run(next(table.itertuples(index=False)), load_model("llama-3.1-8b"),
                            load_hardware("h100-sxm"))
    assert dict(plan.arrivals) == {"kind": "burst"}


def test_the_statistic_picks_mean_median_p90_or_p99_and_itl_reads_tpot():
    n = np.arange(1, 101, dtype=float)
    reqs = pd.DataFrame({"arrival_s": 0.0, "finish_s": n, "ttft_s": n, "tpot_s": n / 100, "e2e_s": n,
                         "prompt_tokens": 10, "output_tokens": 2})
    assert serving.measure(reqs, "ttft", "median") == 50.5
    assert serving.measure(reqs, "ttft", "p99") == pytest.approx(99.01)
    assert serving.measure(reqs, "ttft", "p90") == pytest.approx(90.1)
    assert serving.measure(reqs, "e2e_latency", "mean") == 50.5
    assert serving.measure(reqs, "itl", "median") == serving.measure(reqs, "tpot", "median") == 0.505
    assert serving.measure(reqs, "total_token_throughput", "none") == 100 * 12 / 100
    assert serving.measure(reqs, "benchmark_duration", "none") == 100
    # ten tokens per streamed chunk: a client sees one gap of ten decode steps per chunk
    assert serving.measure(reqs, "itl", "median", stream_interval=10) == pytest.approx(5.05)


def test_a_row_runs_with_the_server_settings_it_states(tmp_path):
    """vLLM with `--max-num-seqs 2 --max-num-batched-tokens 512 --num-scheduler-steps 4`, chunked
    prefill off: the run is the scenario with that scheduler (decode windows of 4 steps, prefills
    first, as vLLM schedules without chunked prefill), and two sequences at a time take longer than
    256 for the same 60 requests. SGLang's `--stream-interval 4` only streams: its scheduler is as
    stated."""
    stated = {"max_num_seqs": "2", "max_num_batched_tokens": "512", "chunked_prefill": "false",
              "stream_interval": "4", "qps": "40", "metric": "itl", "stat": "median", "value": "1"}
    table = _table(tmp_path, [stated, {**stated, "max_num_seqs": "", "max_num_batched_tokens": "",
                                       "chunked_prefill": "", "stream_interval": ""}])
    rows = list(table.itertuples(index=False))
    model, hw = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    plan = serving.plan_run(rows[0], model, hw)
    stated_scheduler = {"max_num_seqs": 2, "max_num_batched_tokens": 512, "chunked_prefill": False}
    vllm = {"scheduler_steps": 4, "priority": "prefill"}
    assert dict(plan.scheduler) == stated_scheduler | vllm
    assert plan.stream_interval == 4
    sglang = serving.plan_run(rows[0]._replace(framework="SGLang"), model, hw)
    assert (dict(sglang.scheduler), sglang.stream_interval) == (stated_scheduler, 4)
    default = serving.plan_run(rows[1], model, hw)
    assert (default.scheduler, default.stream_interval) == ((), 1)
    reqs = serving.simulate(plan).requests
    assert serving.simulate(default).requests["e2e_s"].mean() < reqs["e2e_s"].mean()
    got = validate(table).set_index("row_id")
    assert got.loc["0", "predicted"] == pytest.approx(np.median(reqs["tpot_s"]) * 4 * 1e3)
    assert got.loc["0", "flags"].startswith("ITL read as 4 x TPOT")


@pytest.mark.parametrize(
    ("column", "text"),
    [
        ("max_num_seqs", "0"),
        ("max_num_batched_tokens", "1.5"),
        ("stream_interval", "ten"),
        ("prefill_min_waiting", "0"),
        ("chunked_prefill", "maybe"),
        ("attention_dp", "0"),
        ("ep", "two"),
        ("adp_timeout_iters", "0.5"),
    ],
)
def test_a_bad_server_setting_names_its_row_and_column(tmp_path, column, text):
    with pytest.raises(ValueError, match=rf"line 2 \(row_id 0\): {column} must be"):
        _table(tmp_path, [{column: text, "metric": "ttft", "stat": "median", "value": "1"}])


def test_rows_of_one_run_share_one_simulation(tmp_path, monkeypatch):
    calls = []
    simulate = serving.simulate
    monkeypatch.setattr(serving, "simulate", lambda r: calls.append(r) or simulate(r))
    rows = [{"metric": m, "stat": s, "value": "1"} for m in ("ttft", "tpot") for s in ("mean", "p99")]
    rows.append({"framework": "SGLang", "metric": "ttft", "stat": "median", "value": "1"})  # same system
    rows.append({"qps": "2", "metric": "ttft", "stat": "median", "value": "1"})  # another load
    got = validate(_table(tmp_path, rows))
    assert (got["skipped_reason"] == "").all()
    assert len(calls) == 2


def test_dataset_rows_run_at_the_datasets_mean_lengths(tmp_path):
    rows = [
        {"input_len": "", "output_len": "", "dataset": "sharegpt", "metric": "ttft", "stat": "mean",
         "value": "1"},
        {"input_len": "", "output_len": "", "dataset": "synthetic", "mean_input_len": "~2000",
         "mean_output_len": "~100", "metric": "ttft", "stat": "mean", "value": "1"},
    ]
    table = _table(tmp_path, rows)
    model, hw = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    plans = [serving.plan_run(r, model, hw) for r in table.itertuples(index=False)]
    assert (plans[0].prompt_tokens, plans[0].output_tokens) == (230, 203)  # vLLM PR #18566's ShareGPT means
    assert (plans[1].prompt_tokens, plans[1].output_tokens) == (2000, 100)


def test_serving_rows_that_cannot_be_simulated_say_why(tmp_path):
    rows = [
        {"input_len": "", "output_len": "", "dataset": "open_orca", "metric": "ttft", "stat": "p99",
         "value": "1"},
        {"gpu": "GH200", "metric": "ttft", "stat": "p99", "value": "1"},
        {"model": "Phi-3-mini", "metric": "ttft", "stat": "p99", "value": "1"},
        {"num_gpus": "4", "tp": "", "metric": "ttft", "stat": "p99", "value": "1"},
        {"qps": "", "metric": "ttft", "stat": "p99", "value": "1"},
    ]
    got = validate(_table(tmp_path, rows))["skipped_reason"].tolist()
    assert got == [
        "mean input and output length of dataset 'open_orca' not given",
        "unknown GPU 'GH200' (nearest preset: h200)",
        "unknown model 'Phi-3-mini' (nearest preset: minimax-m1)",
        "parallelism not stated: 4 GPUs and tp empty",
        "poisson_rate row without a finite request rate (qps '')",
    ]
    assert validate(_table(tmp_path, [{"metric": "ttft", "stat": "p99", "value": "1"}]),
                    engine=False)["skipped_reason"].tolist() == ["needs engine"]


def test_several_gpus_are_replicas_of_tp_gpus(tmp_path):
    table = _table(tmp_path, [{"num_gpus": "8", "tp": "2", "metric": "ttft", "stat": "p99", "value": "1"}])
    plan = serving.plan_run(next(table.itertuples(index=False)), load_model("llama-3.1-8b"),
                            load_hardware("h100-sxm"))
    assert (plan.tp, plan.replicas) == (2, 4)


def test_an_engine_with_attention_dp_runs_its_ranks_as_schedulers_sharing_its_batch(tmp_path):
    """TensorRT-LLM's `tp_size 8` with `enable_attention_dp` and EP8, as vendors write it: an engine of
    8 GPUs whose attention runs on 1 GPU per rank, 8 ranks (schedulers) sharing the engine's
    `max_num_seqs`, and the MoE layers in 8 expert-parallel groups."""
    stated = {"model": "DeepSeek-R1", "precision": "FP8", "gpu": "B200", "num_gpus": "16", "tp": "8",
              "attention_dp": "8", "ep": "8", "max_num_seqs": "4096", "metric": "ttft", "stat": "p99",
              "value": "1"}
    table = _table(tmp_path, [stated, {**stated, "attention_dp": "3"}, {**stated, "attention_dp": "",
                                                                          "ep": ""}])
    rows = list(table.itertuples(index=False))
    model, hw = load_model("deepseek-v3"), load_hardware("b200")
    plan = serving.plan_run(rows[0], model, hw)
    assert (plan.tp, plan.replicas) == (8, 2)
    assert plan.parallelism == {"tp": 1, "attention_dp": 8, "ep": 8}
    assert dict(plan.scheduler) == {"max_num_seqs": 512}
    assert serving.plan_run(rows[1], model, hw) == "attention_dp 3 does not divide tp 8"
    plain = serving.plan_run(rows[2], model, hw)
    assert plain.parallelism == {"tp": 8, "attention_dp": 1, "ep": 1}
    assert dict(plain.scheduler) == {"max_num_seqs": 4096}


def test_attention_dp_balancing_reaches_the_scheduler(tmp_path):
    """TensorRT-LLM's attention-DP balancing with `timeout_iters` 9 is the engine's balancing of its
    ranks (`sim.engine.lockstep.Balance`, tested in tests/engine/test_lockstep.py)."""
    stated = {"model": "DeepSeek-R1", "precision": "FP8", "gpu": "B200", "num_gpus": "8", "tp": "8",
              "attention_dp": "8", "ep": "8", "adp_timeout_iters": "9", "metric": "ttft", "stat": "p99",
              "value": "1"}
    table = _table(tmp_path, [stated])
    (row,) = table.itertuples(index=False)
    model, hw = load_model("deepseek-v3"), load_hardware("b200")
    assert dict(serving.plan_run(row, model, hw).scheduler) == {"adp_timeout_iters": 9}
    with pytest.raises(ValueError, match=r"row_id 0\): adp_timeout_iters balances attention-DP ranks"):
        _table(tmp_path, [{**stated, "attention_dp": ""}])


def test_mlperfs_deepseek_r1_runs_carry_their_attention_dp_and_expert_parallel_split():
    """NVIDIA's v5.1 DeepSeek-R1 configs run TP8 engines with attention DP and EP8, as each row's notes
    quote: every such row says so in the split columns, and no other row states a split."""
    rows = _mlperf_rows()
    split = rows["attention_dp"] != ""
    deepseek = (rows["model"] == "DeepSeek-R1") & (rows["source_id"] == "MLPERF-INF-v5.1")
    assert (split == deepseek).all() and deepseek.sum() == 28
    assert rows.loc[deepseek, "notes"].str.contains("TP8 EP8", regex=False).all()
    assert set(zip(rows.loc[deepseek, "attention_dp"], rows.loc[deepseek, "ep"], rows.loc[deepseek, "tp"],
                   strict=True)) == {("8", "8", "8")}
    # and their configs' attention-DP balancing (adp_balancing_timeout_iters 9), as the notes quote
    assert ((rows["adp_timeout_iters"] == "9") == deepseek).all()
    quoted = "adp_timeout_iters 9 (adp_balancing_timeout_iters"
    assert rows.loc[deepseek, "notes"].str.contains(quoted, regex=False).all()


def test_long_context_prefill_rows_are_one_prefill_step(tmp_path):
    rows = [{"scenario": "single_request_prefill", "model": "Llama-3-8B-Instruct-Gradient-1048k",
             "gpu": "A100-80GB", "input_len": "500000", "output_len": "0", "batch_size": "1",
             "metric": "prefill_time", "value": "456.8", "unit": "s", "qps": ""}]
    got = validate(_table(tmp_path, rows)).iloc[0]
    model = load_model("llama-3.1-8b").model_copy(update={"max_context_tokens": 1_048_576})
    step = RooflineCost(model, load_hardware("a100-80g-sxm")).step([500_000], [0], 1)
    assert got["skipped_reason"] == ""
    assert got["predicted"] == pytest.approx(step.total_s)
    assert got["regime"] == "prefill" and got["group"] == "ttft"


def test_a_one_prompt_prefill_on_pipeline_stages_says_it_is_not_modelled(tmp_path):
    # ctxsim runs one prompt's chunks through every stage in turn, so a chunked pipeline-parallel
    # prefill (chunks overlapped across stages) would be priced like pp 1; the pp 1 row is predicted
    row = {"scenario": "single_request_prefill", "gpu": "H100-SXM", "num_gpus": "8", "tp": "4",
           "input_len": "131072", "output_len": "", "batch_size": "1", "metric": "ttft", "value": "10",
           "unit": "s", "qps": ""}
    got = validate(_table(tmp_path, [{**row, "pp": "2"}, {**row, "num_gpus": "4", "pp": "1"}]))
    reason = "chunked pipeline-parallel prefill of one prompt (pp 2) not modelled"
    assert got.loc[0, "skipped_reason"] == reason
    assert got.loc[1, "skipped_reason"] == "" and got.loc[1, "predicted"] > 0


def test_a_cp_row_prefills_its_sequence_over_cp_ranks_of_tp_gpus(tmp_path):
    rows = [{"scenario": "single_request_prefill", "model": "Llama-3.1-405B", "precision": "FP8",
             "gpu": "H100-SXM", "num_gpus": "32", "tp": "8", "cp": cp, "input_len": "128000",
             "output_len": "0", "batch_size": "1", "metric": "ttft", "value": "10950", "qps": ""}
            for cp in ("4", "1")]
    got = validate(_table(tmp_path, rows))
    model = load_model("llama-3.1-405b").with_dtypes("fp8", "fp8")
    hw = load_hardware("h100-sxm")
    for (_, r), cp in zip(got.iterrows(), (4, 1), strict=True):
        step = RooflineCost(model, hw, Parallelism(tp=8, cp=cp)).step([128_000], [0], 1)
        assert r["skipped_reason"] == ""
        assert r["predicted"] == pytest.approx(step.total_s * 1e3)
    assert got.loc[0, "predicted"] < got.loc[1, "predicted"] / 3  # four ranks share the prompt
    assert "tp8 cp4" in got.loc[0, "case"] and "cp" not in got.loc[1, "case"]


def test_a_file_without_a_cp_column_reads_as_cp_1(tmp_path):
    row = {"scenario": "single_request_prefill", "input_len": "4096", "output_len": "0", "batch_size": "1",
           "metric": "ttft", "value": "1", "qps": ""}
    with_cp = validate(_table(tmp_path, [{**row, "cp": "1"}]))
    frame = pd.DataFrame([{**BASE, "row_id": "0", **row}])
    path = tmp_path / "no_cp.csv"
    frame.reindex(columns=[c for c in MEASUREMENT_COLUMNS if c != "cp"]).fillna("").to_csv(path, index=False)
    without = validate(read_measurements(path))
    assert without.loc[0, "predicted"] == pytest.approx(with_cp.loc[0, "predicted"])


def test_a_serving_row_with_context_parallelism_says_it_is_not_simulated(tmp_path):
    got = validate(_table(tmp_path, [{"num_gpus": "2", "tp": "1", "cp": "2", "metric": "ttft", "stat": "p99",
                                      "value": "1"}]))
    assert got.loc[0, "skipped_reason"] == "context parallelism (cp 2) not simulated for serving rows"


PUBLIC = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "public" / "serving_measurements.csv"
MODELS = Path(__file__).resolve().parents[1] / "data" / "validation" / "models"


def test_the_context_parallelism_papers_rows_parse_resolve_and_are_predicted():
    rows = read_measurements(PUBLIC)
    paper = rows[rows["source_id"] == "LC-PAPER-CONTEXT-PARALLELISM"]
    assert len(paper) > 10
    got = validate(paper, MODELS, engine=False)
    assert (got["skipped_reason"] == "").all(), got["skipped_reason"].tolist()
    for r in paper.itertuples(index=False):
        # each stated layout uses the GPUs the row says it ran on: tp GPUs per CP rank
        assert int(r.tp) * int(r.cp or 1) == int(r.num_gpus), r.row_id
        assert resolve_gpu(r.gpu, {}) == load_device("h100-gtt")
        assert resolve_model(r.model, r.precision, MODELS).max_context_tokens >= int(r.input_len)
    long = pd.to_numeric(paper["input_len"]) >= 128_000
    assert long.sum() >= 10


def test_the_chunked_pipeline_blogs_rows_parse_and_the_pp1_row_is_predicted_on_the_h20():
    rows = read_measurements(PUBLIC)
    blog = rows[rows["source_id"] == "LC-SGLANG-CHUNKED-PP"]
    assert len(blog) == 7
    assert (pd.to_numeric(blog["input_len"]) >= 128_000).all()
    assert set(blog["metric"]) == {"ttft"}
    got = validate(blog, MODELS, engine=False).set_index("row_id")
    single = blog[blog["pp"] == "1"]
    for r in blog.itertuples(index=False):
        # every layout uses the GPUs the row says it ran on: tp GPUs per pipeline stage
        assert int(r.tp) * int(r.pp) == int(r.num_gpus), r.row_id
        reason = got.loc[r.row_id, "skipped_reason"]
        if r.pp != "1":
            assert reason == f"chunked pipeline-parallel prefill of one prompt (pp {r.pp}) not modelled"
    on_h20 = single[single["gpu"] == "H20"]
    assert len(on_h20) == 1
    r = on_h20.iloc[0]
    assert resolve_gpu(r.gpu, {}) == load_device("h20")
    assert resolve_model(r.model, r.precision, MODELS).max_context_tokens >= int(r.input_len)
    assert got.loc[r.row_id, "skipped_reason"] == "" and got.loc[r.row_id, "predicted"] > 0
    # the 141 GB H20 has no part yet: its row says so rather than borrowing the 96 GB one
    other = single[single["gpu"] != "H20"].iloc[0]
    assert got.loc[other.row_id, "skipped_reason"].startswith("unknown GPU 'H20 (141GB)'")


def test_coverage_counts_predicted_rows_and_skip_reasons_are_counted(tmp_path):
    rows = [{"metric": "ttft", "stat": "p99", "value": "1"}] + [
        {"gpu": "GH200", "metric": "ttft", "stat": s, "value": "1"} for s in ("p90", "p99")
    ]
    got = validate(_table(tmp_path, rows))
    assert coverage(got) == (1, 3)
    reasons = skip_reasons(got)
    assert reasons.to_dict("records") == [{"reason": "unknown GPU 'GH200' (nearest preset: h200)", "rows": 2}]
    assert not math.isnan(got.loc[0, "predicted"])


def test_cli_reports_coverage_and_skip_reasons(tmp_path):
    _table(tmp_path, [{"metric": "ttft", "stat": "p99", "value": "1"},
                      {"gpu": "GH200", "metric": "ttft", "stat": "p99", "value": "1"}])
    path = str(tmp_path / "serving.csv")
    table = CliRunner().invoke(app, ["validate", path])
    assert table.exit_code == 0, table.output
    assert "predicted 1 of 2 rows (50%)" in table.stdout and "nearest preset: h200" in table.stdout
    lines = CliRunner().invoke(app, ["validate", path, "--json"]).stdout.splitlines()
    summary = json.loads(lines[-1])
    assert summary["coverage"] == {"predicted": 1, "rows": 2}
    assert summary["skipped"] == [{"reason": "unknown GPU 'GH200' (nearest preset: h200)", "rows": 1}]
    assert summary["by_source"][0]["source_id"] == "TEST"


PUBLIC = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "public" / "serving_measurements.csv"


def _mlperf_rows() -> pd.DataFrame:
    table = read_measurements(PUBLIC)
    return table[table["source_id"].str.startswith("MLPERF")]


def test_every_mlperf_dataset_has_cited_mean_lengths():
    """Each dataset an MLPerf row names resolves (case and spacing as the rows spell them) to its
    DATASET_LENGTHS entry, rounded to whole tokens per request."""
    rows = _mlperf_rows().drop_duplicates("dataset")
    assert len(rows) == 5
    model, hw = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    for row in rows.itertuples(index=False):
        plan = serving.plan_run(row, model, hw)
        assert not isinstance(plan, str), plan
        isl, osl = serving.DATASET_LENGTHS[row.dataset.strip().lower()]
        assert (plan.prompt_tokens, plan.output_tokens) == (round(isl), round(osl))
    # the published output means are what a run serves: loadgen's completed tokens per completed sample
    runs = _mlperf_rows()
    measured = runs.pivot_table(index="source_path", columns="metric", values="value", aggfunc="first")
    per_sample = measured["output_throughput"].astype(float) / measured["request_throughput"].astype(float)
    names = runs.drop_duplicates("source_path").set_index("source_path")["dataset"].str.lower()
    cited = names.map(lambda n: serving.DATASET_LENGTHS[n][1])
    assert ((per_sample / cited[per_sample.index] - 1).abs() < 0.1).all()


def test_each_mlperf_dataset_draws_its_samples_lengths_whose_means_are_the_cited_ones():
    """Every MLPerf dataset has a per-sample lengths file with one row per sample of the official set
    (counts from MLCommons' READMEs) and the DATASET_LENGTHS means; a row on it draws each request's
    lengths from the file, so its requests vary in length around those means. A row that states its
    own lengths keeps them fixed."""
    samples = {"llama2-70b": 24_576, "mixtral-8x7b": 15_000, "llama3.1-405b": 8_313,
               "deepseek-r1": 4_388, "llama3.1-8b": 13_368}
    assert set(serving.DATASET_FILES) == set(serving.DATASET_LENGTHS) - {"sharegpt"}
    for dataset, name in serving.DATASET_FILES.items():
        table = pd.read_csv(serving.DATASET_DIR / f"{name}.csv.gz")
        assert len(table) == samples[name]
        assert (table >= 1).all().all()
        isl, osl = serving.DATASET_LENGTHS[dataset]
        assert table["prompt_tokens"].mean() == pytest.approx(isl, abs=0.001)
        assert table["output_tokens"].mean() == pytest.approx(osl, abs=0.6)  # whole tokens per sample
    row = next(_mlperf_rows().drop_duplicates("dataset").itertuples(index=False))
    model, hw = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    plan = dataclasses.replace(serving.plan_run(row, model, hw), limits=None, requests=3000,
                               arrivals=(("kind", "poisson"), ("rate_per_s", 5.0)))
    assert plan.lengths_file == serving.DATASET_DIR / f"{serving.DATASET_FILES[row.dataset.lower()]}.csv.gz"
    served = serving.simulate(plan).requests
    isl, osl = serving.DATASET_LENGTHS[row.dataset.lower()]
    assert served["prompt_tokens"].nunique() > 100 and served["output_tokens"].nunique() > 10
    assert served["prompt_tokens"].mean() == pytest.approx(isl, rel=0.05)
    stated = row._replace(input_len="300", output_len="100")
    assert serving.plan_run(stated, model, hw).lengths_file is None


def test_an_mlperf_server_run_is_predicted_as_the_search_for_its_highest_rate():
    """A loadgen Server run (L40S, Llama-3.1-8B, 9.37 req/s, 13,368 queries, p99 limits TTFT 2 s and
    TPOT 100 ms) is simulated on the dataset's per-sample lengths, as many requests for each rate the
    search tries as the benchmark serves (its 13,368 queries: 600 s at 10 req/s is fewer), at the
    highest rate within its limits: every row is predicted, and its throughput is that rate."""
    rows = _mlperf_rows()
    run_rows = rows[rows["source_path"].str.contains("IBM_Cloud_gx3-48x240x2l40s_vLLM")]
    assert len(run_rows) == 14
    got = validate(run_rows).set_index("metric")
    assert (got["skipped_reason"] == "").all(), got["skipped_reason"].tolist()
    assert not got["flags"].str.contains("requests simulated").any()  # all 13,368 of them
    found = float(got["flags"].iloc[0].split("limits: ")[1].split("/s")[0])
    assert got["flags"].str.contains("highest rate within the p99 limits").all()
    assert got.loc["request_throughput", "predicted"] == pytest.approx(found, rel=0.05)
    plan = serving.plan_run(next(run_rows.itertuples(index=False)), load_model("llama-3.1-8b"),
                            load_hardware("l40s"))
    assert len(serving.simulate(plan).requests) == 13_368


@pytest.mark.parametrize(
    ("rate", "dataset", "requests"),
    [(100.0, 24_576, 60_000), (10.0, 24_576, 24_576), (0.45, 0, 2_000), (0.45, 8_313, 8_313),
     (1_000.0, 13_368, 200_000)],
)
def test_a_search_runs_each_rate_for_the_benchmark_duration(rate, dataset, requests):
    """600 s of arrivals at the rate tried (MLPerf's minimum duration), at least the dataset, at least
    2,000 and at most 200,000 requests."""
    assert serving.search_requests(rate, dataset) == requests


def test_the_search_finds_a_rate_the_server_sustains(monkeypatch):
    """NVIDIA's v4.1 8xH200 Llama-2-70B Server run: at the rate the search finds, the requests
    completed over the steady window keep up with the offered rate. A search whose runs last 8,000
    requests (about 60 s here) accepts a rate the server cannot hold, and fails the same check: its
    7,168 sequence slots take in every request, each lives tens of seconds, so no p99 crosses its
    limit before the run ends."""
    rows = _mlperf_rows()
    run = "closed/NVIDIA/results/H200-SXM-141GBx8_TRT/llama2-70b-99/"
    row = rows[(rows["source_id"] == "MLPERF-INF-v4.1") & rows["source_path"].str.startswith(run)]
    row = next(row.itertuples(index=False))
    plan = serving.plan_run(row, resolve_model(row.model, row.precision, None), load_hardware("h200"))

    def sustained(found: serving.Simulated) -> float:
        window = (found.steady_start_s, found.steady_end_s)
        return serving.measure(found.requests, "request_throughput", "none", window) / found.rate_per_s

    assert sustained(serving.simulate(plan)) > 0.97
    monkeypatch.setattr(serving, "SEARCH_SECONDS", 0.0)
    monkeypatch.setattr(serving, "SEARCH_MIN_REQUESTS", 8000)
    assert sustained(serving.simulate(dataclasses.replace(plan, requests=0))) < 0.97


def test_a_fit_reads_a_searched_run_at_its_submitted_rate_for_the_benchmarks_duration():
    """`at_submitted_rate`: an MLPerf run becomes a Poisson run at its scheduled rate, no search, for
    600 s of arrivals (at least the queries it served, at most 200,000 requests, its rates read over
    the steady window when cut); rows without limits are left as they were."""
    rows = _mlperf_rows()
    model, hw = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    for path, qps, requests, cut in (
        ("IBM_Cloud_gx3-48x240x2l40s_vLLM", 9.37, 13_368, False),  # 5,622 in 600 s: its 13,368 queries
        ("closed/NVIDIA/results/H200-SXM-141GBx8_TRT/llama2-70b-99/Server", 101.25, 200_000, True),
        ("closed/NVIDIA/results/B200-SXM-180GBx8_TRT/llama3.1-8b/Server", 999.47, 200_000, True),
    ):
        run = rows[rows["source_path"].str.contains(path, regex=False)].head(1)
        plan = serving.plan_run(next(serving.at_submitted_rate(run).itertuples(index=False)), model, hw)
        assert plan.limits is None
        assert dict(plan.arrivals)["rate_per_s"] == pytest.approx(qps)
        assert (plan.requests, plan.truncated) == (requests, cut)
    public = read_measurements(PUBLIC)
    plain = public[~serving.has_limits(public)]
    assert serving.at_submitted_rate(plain).drop(columns="duration_s").equals(plain)


def test_the_nvidia_h200_llama2_server_run_carries_its_config_batch_size_into_the_plan():
    """NVIDIA's v4.1 H200x8 Llama-2-70B Server config states `gpu_batch_size = {'llama2-70b': 896}`,
    TP1 and `max_num_tokens = 4096`: all 14 rows of the run carry them, with the file and line in the
    notes, and the plan is 8 TP1 replicas with that scheduler, not the 256-sequence default."""
    rows = _mlperf_rows()
    run = "closed/NVIDIA/results/H200-SXM-141GBx8_TRT/llama2-70b-99/"
    run_rows = rows[(rows["source_id"] == "MLPERF-INF-v4.1") & rows["source_path"].str.startswith(run)]
    assert len(run_rows) == 14
    assert set(run_rows["max_num_seqs"]) == {"896"}
    config = "closed/NVIDIA/configs/llama2-70b/Server/__init__.py:158"
    assert run_rows["notes"].str.contains(f"max_num_seqs 896 (gpu_batch_size per TP1 engine, {config})",
                                          regex=False).all()
    model, hw = load_model("llama-2-70b"), load_hardware("h200")
    for row in run_rows.itertuples(index=False):
        plan = serving.plan_run(row, model, hw)
        assert not isinstance(plan, str), plan
        assert (plan.tp, plan.replicas) == (1, 8)
        assert dict(plan.scheduler) == {"max_num_seqs": 896, "max_num_batched_tokens": 4096}


def test_a_benchmark_longer_than_the_simulation_reads_rates_over_the_steady_window(tmp_path, monkeypatch):
    """Rows whose benchmark served more requests than are simulated read rates over the engine's
    steady window; latencies are the same either way, and a run of the benchmark's own length keeps
    the whole span (its drain is part of what the benchmark timed)."""
    monkeypatch.setattr(serving, "MAX_REQUESTS", 300)
    metrics = [("request_throughput", "none", "req/s"), ("output_throughput", "none", "tok/s"),
               ("e2e_latency", "p99", "s")]
    rows = [{"qps": "20", "output_len": "256", "num_prompts": n, "metric": m, "stat": s, "value": "1",
             "unit": u} for n in ("300", "100000") for m, s, u in metrics]
    table = _table(tmp_path, rows)
    got = validate(table).set_index("row_id")["predicted"]
    model, hw = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    short, long = (serving.plan_run(next(table.iloc[[i]].itertuples(index=False)), model, hw) for i in (0, 3))
    assert (short.requests, short.truncated, long.requests, long.truncated) == (300, False, 300, True)
    simulated = serving.simulate(long)
    window = (simulated.steady_start_s, simulated.steady_end_s)
    reqs = simulated.requests
    assert got["3"] == pytest.approx(serving.measure(reqs, "request_throughput", "none", window))
    assert got["4"] == pytest.approx(serving.measure(reqs, "output_throughput", "none", window))
    assert got["0"] == pytest.approx(serving.measure(reqs, "request_throughput", "none"))
    assert got["2"] == got["5"]  # latencies over every request either way
    # the short run's rate includes its drain; the long run's is the offered rate it keeps up with
    assert got["0"] < got["3"] and got["3"] == pytest.approx(20, rel=0.15)


def test_a_rate_over_a_window_counts_the_requests_finishing_in_it():
    reqs = pd.DataFrame({"arrival_s": np.arange(10.0), "finish_s": np.arange(10.0) + 0.5,
                         "prompt_tokens": 10, "output_tokens": 2})
    assert serving.measure(reqs, "request_throughput", "none", (2.0, 6.0)) == 4 / 4  # 2.5 .. 5.5
    assert serving.measure(reqs, "output_throughput", "none", (2.0, 6.0)) == 4 * 2 / 4
    assert serving.measure(reqs, "request_throughput", "none") == 10 / 9.5


def test_a_row_with_latency_limits_is_the_search_for_the_highest_rate_within_them(tmp_path):
    """An MLPerf Server row: the run is simulated at the highest Poisson rate whose p99 TTFT and TPOT
    stay within the limits; a little above it the limits break, and the throughput row reads that
    rate, not the submitter's."""
    limits = {"ttft_p99_limit_ms": "200", "tpot_p99_limit_ms": "30", "qps": "5", "num_prompts": "200"}
    rows = [
        {**limits, "metric": "request_throughput", "stat": "none", "value": "5", "unit": "req/s"},
        {**limits, "metric": "ttft", "stat": "p99", "value": "150"},
    ]
    table = _table(tmp_path, rows)
    row = next(table.itertuples(index=False))
    model, hw = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    plan = serving.plan_run(row, model, hw)
    assert plan.limits == (0.2, 0.03)
    found = serving.simulate(plan)
    assert found.rate_per_s is not None and found.rate_per_s != 5
    assert serving.within(found.requests, plan.limits)
    faster = found.rate_per_s * 1.05
    longer = serving.search_requests(faster, plan.requests)
    arrivals = (("kind", "poisson"), ("rate_per_s", faster))
    above = serving.simulate(dataclasses.replace(plan, arrivals=arrivals, requests=longer, limits=None))
    assert not serving.within(above.requests, plan.limits)
    got = validate(table).set_index("row_id")
    rate = serving.measure(found.requests, "request_throughput", "none")
    assert got.loc["0", "predicted"] == pytest.approx(rate)
    assert "highest rate within the p99 limits" in got.loc["1", "flags"]


def test_a_search_started_from_a_rate_found_before_finds_the_same_edge_in_fewer_runs(tmp_path, monkeypatch):
    """How a fit searches again for its next knobs (`serving.search_from`): the run starts at the rate
    given, at the near step, and lands within the search's resolution of the edge the search from
    the submitter's rate found, in at most four runs instead of eight."""
    limits = {"ttft_p99_limit_ms": "200", "tpot_p99_limit_ms": "30", "qps": "5", "num_prompts": "200"}
    table = _table(tmp_path, [{**limits, "metric": "request_throughput", "stat": "none", "value": "5"}])
    model, hw = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    runs = []
    simulate_one = serving._simulate

    def counted(run, arrivals):
        runs.append(1)
        return simulate_one(run, arrivals)

    monkeypatch.setattr(serving, "_simulate", counted)
    cold = serving.simulate(serving.plan_run(next(table.itertuples(index=False)), model, hw))
    cold_runs = len(runs)
    near = serving.search_from(table, pd.Series([cold.rate_per_s * 1.02], index=table.index))
    plan = serving.plan_run(next(near.itertuples(index=False)), model, hw)
    assert plan.search_step == ratesearch.NEAR_STEP
    assert dict(plan.arrivals)["rate_per_s"] == pytest.approx(cold.rate_per_s * 1.02)
    warm = serving.simulate(plan)
    assert abs(math.log(warm.rate_per_s / cold.rate_per_s)) <= math.log(ratesearch.RESOLUTION) + 1e-9
    assert len(runs) - cold_runs <= 4 < cold_runs
    # a row without limits is no search: it keeps its rate and its step
    plain = _table(tmp_path, [{"metric": "ttft", "stat": "p99", "value": "1"}])
    assert serving.search_from(plain, pd.Series([9.0], index=plain.index))["qps"].tolist() == ["4"]


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"ttft_p99_limit_ms": "2000"}, "give both or neither"),
        ({"ttft_p99_limit_ms": "0", "tpot_p99_limit_ms": "200"}, "ttft_p99_limit_ms must be a positive"),
        (
            {"ttft_p99_limit_ms": "2000", "tpot_p99_limit_ms": "200", "scenario": "offline"},
            "apply to poisson_rate",
        ),
    ],
)
def test_bad_latency_limits_name_their_row(tmp_path, limits, message):
    with pytest.raises(ValueError, match=message):
        _table(tmp_path, [{**limits, "metric": "ttft", "stat": "median", "value": "1"}])


def test_a_row_behind_a_harness_batcher_runs_behind_it(tmp_path):
    """A 300 ms, 96-request batcher in the row's columns is the scenario's `cluster.batcher`: the
    same 60 arrivals, each waiting for its batch, so TTFT grows and arrival times do not move."""
    held = {"batcher_window_ms": "300", "batcher_max_requests": "96"}
    held |= {"metric": "ttft", "stat": "mean", "value": "1"}
    table = _table(tmp_path, [held, {**held, "batcher_window_ms": "", "batcher_max_requests": ""}])
    rows = list(table.itertuples(index=False))
    model, hw = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    plan, plain = (serving.plan_run(r, model, hw) for r in rows)
    assert dict(plan.batcher) == {"window_s": pytest.approx(0.3), "max_requests": 96}
    assert plain.batcher == ()
    batched, direct = serving.simulate(plan).requests, serving.simulate(plain).requests
    assert (batched["arrival_s"].to_numpy() == direct["arrival_s"].to_numpy()).all()
    assert batched["ttft_s"].mean() > direct["ttft_s"].mean() + 0.1


def test_amds_v41_server_runs_carry_their_harness_batcher():
    """AMD's v4.1 Llama-2-70B Server runs (1 and 8 MI300X) pass `--enable-batcher` and keep the
    harness's defaults, 0.3 s and 96 samples: all 28 rows carry them, citing the file and line."""
    rows = _mlperf_rows()
    amd = rows[(rows["source_id"] == "MLPERF-INF-v4.1") & (rows["gpu"] == "MI300X")]
    assert len(amd) == 28
    assert set(amd["batcher_window_ms"]) == {"300"} and set(amd["batcher_max_requests"]) == {"96"}
    where = "closed/AMD/code/llama2-70b-99/VllmFp8/mainVllmFp8_SyncServer.py:63"
    clause = f"batcher_window_ms 300 (--batcher-threshold in s, with --enable-batcher, {where})"
    assert amd["notes"].str.contains(clause, regex=False).all()
    others = rows[~rows.index.isin(amd.index)]
    assert set(others["batcher_window_ms"]) == {""}


def test_amds_v51_server_runs_carry_their_scheduler_patchs_prefill_threshold():
    """AMD's v5.1 Llama-2-70B Server YAMLs switch on the MLPerf scheduler patch with a prefill
    threshold of 8 (MI300X) and 10 (MI325X): their rows carry it, and the plan's scheduler has it."""
    rows = _mlperf_rows()
    stated = rows[rows["prefill_min_waiting"] != ""].drop_duplicates(["gpu", "qps"])
    got = {(r.gpu, r.qps): r.prefill_min_waiting for r in stated.itertuples(index=False)}
    assert got == {("MI300X", "83.90"): "8", ("MI325X", "109.52"): "10", ("MI325X", "61.89"): "1"}
    row = stated[stated["gpu"] == "MI300X"].iloc[0]
    yaml = "closed/AMD/code/llama2-70b-99/harness_llm/models/llama2-70b/server_mi300x.yaml:15"
    assert "prefill_min_waiting 8 (VLLM_LLAMA2_MLPERF_MIN_REQUIRE_PREFILL_QUERY" in row["notes"]
    assert yaml in row["notes"]
    plan = serving.plan_run(next(stated[stated["gpu"] == "MI300X"].itertuples(index=False)),
                            load_model("llama-2-70b"), load_hardware("mi300x"))
    assert dict(plan.scheduler)["prefill_min_waiting"] == 8


@pytest.mark.parametrize(
    ("batcher", "message"),
    [
        ({"batcher_window_ms": "300"}, "give both or neither"),
        ({"batcher_window_ms": "0", "batcher_max_requests": "96"}, "batcher_window_ms must be a positive"),
        ({"batcher_window_ms": "300", "batcher_max_requests": "1.5"}, "batcher_max_requests must be a whole"),
        (
            {"batcher_window_ms": "300", "batcher_max_requests": "96", "scenario": "offline"},
            "poisson_rate rows only",
        ),
    ],
)
def test_bad_batcher_columns_name_their_row(tmp_path, batcher, message):
    with pytest.raises(ValueError, match=rf"line 2 \(row_id 0\): .*{message}"):
        _table(tmp_path, [{**batcher, "metric": "ttft", "stat": "median", "value": "1"}])


def test_runs_simulated_in_a_process_pool_give_the_same_predictions_and_fit(tmp_path):
    """`pool_map` only moves the serving runs into worker processes: every prediction, skip reason and
    linearised row of the overhead fit is what simulating them one by one gives."""
    from concurrent.futures import ProcessPoolExecutor

    from sim.fidelity import overheads

    rows = _table(
        tmp_path,
        [
            {"metric": "ttft", "stat": "median", "value": "40"},
            {"metric": "tpot", "stat": "p99", "value": "9"},
            {"metric": "ttft", "stat": "mean", "qps": "8", "value": "50"},
            {"metric": "e2e_latency", "stat": "median", "scenario": "fixed_concurrency", "qps": "",
             "concurrency": "4", "value": "400"},
            {"metric": "ttft", "stat": "median", "gpu": "Unknown-GPU-9000", "value": "40"},
        ],
    )
    model = resolve_model("Meta-Llama-3.1-8B-Instruct", "BF16", None)
    hw = load_device("h100-sxm")
    with ProcessPoolExecutor(max_workers=2) as pool:
        pooled = validate(rows, pool_map=pool.map)
        system = overheads.overhead_system(rows.iloc[:4], [model] * 4, hw, engine=True, pool_map=pool.map)
    alone = validate(rows)
    pd.testing.assert_frame_equal(pooled, alone)
    assert pooled["skipped_reason"].tolist()[:4] == [""] * 4 and pooled["skipped_reason"].iloc[4]
    plain = overheads.overhead_system(rows.iloc[:4], [model] * 4, hw, engine=True)
    np.testing.assert_array_equal(system.slopes, plain.slopes)
    np.testing.assert_array_equal(system.gaps, plain.gaps)
