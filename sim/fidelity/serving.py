"""Serving benchmarks: rows measured while a server was under load, simulated the way the benchmark ran.

A serving row says how load was offered (`scenario`): `poisson_rate` (open loop, Poisson arrivals at
`qps` requests/s: vLLM / SGLang `--request-rate`, MLPerf Server), `fixed_concurrency` (closed loop,
`concurrency` requests in flight: each finished request is replaced at once, think time 0) or
`offline` (every request at t=0, `--request-rate inf`). It names a statistic (`stat`: mean, median,
p90, p99) of a per-request latency (`ttft`, `tpot`, `itl`, `e2e_latency`), or a rate over the run
(`request_throughput`, `output_throughput`, `total_token_throughput`, `benchmark_duration`).

All rows of one run (the same system, model, load and workload; MLPerf prints 14 numbers per run)
share one simulation: `Run` is what ctxsim simulates, and the same `Run` reached from another row, or
from another framework measured on the same configuration, is simulated once (`validate` keeps a
cache keyed by `Run`). A run serves `num_prompts` requests, at most `MAX_REQUESTS` (when the row
states latency limits, `LIMIT_COLUMNS`, the run is the benchmark's search for the highest rate within
them, `sim.fidelity.ratesearch`, each rate tried for the benchmark's duration, `search_requests`), on
`num_gpus / tp` replicas of `tp` GPUs behind a round-robin router (each split as the row's
`PARALLEL_COLUMNS` say, where it states them), with the scenario defaults for
batching (256 sequences, 8,192 tokens per step, chunked prefill, 90% of memory) unless the row
states the server's own (`SERVER_COLUMNS`: `--max-num-seqs`, `--max-num-batched-tokens`, chunked
prefill on or off, how many tokens each streamed chunk carries, how many requests must wait before a
prefill may follow a prefill, and a harness that batches arrivals in front of the replicas,
`BATCHER_COLUMNS`), and nothing fitted.

Assumptions, stated where they bite:
- Lengths: `input_len` / `output_len` when given; else, on an MLPerf dataset, each request's prompt
  and output drawn from the dataset's per-sample lengths (`DATASET_FILES`; each independently, so a
  sample's prompt and output are not kept together); else the dataset's mean lengths (the row's
  `mean_input_len` / `mean_output_len`, else `DATASET_LENGTHS`). Where only means are known every
  request gets the mean, and tails (p90, p99) of such a run are expected to come out too narrow. A
  dataset whose mean lengths are unknown is skipped, not guessed.
- Statistics are taken over every finished request, as bench_serving and MLPerf's loadgen report
  them, not over the steady window of `sim.engine.summary`; a rate divides by the run's span, first
  arrival to last finish (loadgen's "Completed samples per second" is the same: samples over the
  time to the last completion).
- A benchmark that served more requests than are simulated (MLPerf Server runs last at least 10
  minutes, 8,313 to 945,000 queries) spends almost none of its time draining, while a few thousand
  simulated requests at hundreds per second would spend a third of their span on it. Such a run's
  rates are read over its steady window (`sim.engine.steady`: after the warm-up, before the drain),
  the rate the long run sustains; latencies stay over every request.
  Where the simulated requests are too few to settle (2,000 requests at 348 req/s arrive in 6 s and
  take 3 s each) the engine finds no steady state (`Summary.steady_state`), the window may be all of
  the run, and the row is flagged.
- ctxsim has no token-by-token timeline, so ITL (inter-token latency) is read as each request's mean
  time per output token (TPOT), times the tokens per streamed chunk when the row states them
  (`stream_interval`): vLLM 0.6's `--num-scheduler-steps 10` runs ten decode steps and then streams
  their ten tokens at once, so a benchmark client sees one gap of ten steps per chunk.
- `stat` "unstated" is scored as the mean and flagged.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hardware.spec import Accelerator
from sim.api import run as run_scenario
from sim.fidelity import ratesearch
from sim.scenario import Scenario
from workloads.model import ModelArch

SERVING_SCENARIOS = ("poisson_rate", "fixed_concurrency", "offline")
# per-request latency metric -> column of the engine's requests table
LATENCY_COLUMNS = {"ttft": "ttft_s", "tpot": "tpot_s", "itl": "tpot_s", "e2e_latency": "e2e_s"}
RATE_METRICS = ("request_throughput", "output_throughput", "total_token_throughput", "benchmark_duration")
SERVING_METRICS = (*LATENCY_COLUMNS, *RATE_METRICS)
STATS = ("mean", "median", "p90", "p99", "unstated")
MAX_REQUESTS = 2000
"""Requests simulated per run at most: MLPerf runs serve 24,576+ samples, which would take minutes
per run; 2,000 Poisson arrivals put each p99 on 20 requests."""
SEARCH_SECONDS = 600.0
"""Seconds of Poisson arrivals simulated per rate a search tries (a run with latency limits): MLPerf
Server runs last at least this long (github.com/mlcommons/inference, loadgen/mlperf.conf at commit
b66003e: `*.Server.min_duration = 600000` ms), and serve at least their dataset (`num_prompts`). A
shorter run cannot tell a rate the server holds from one it cannot: at its limits a llama2-70b
request lives 30-60 s, and 8,000 arrivals at 140 requests/s onto 8 H200s (whose 7,168 sequence
slots take them all) end before the batch fills, so every p99 stays within the limits while the
server completes 95 requests/s; over 600 s the queue builds and TTFT grows past a minute."""
SEARCH_MIN_REQUESTS = 2000
"""Requests per rate tried at least, so a slow run's p99 rests on 20 requests."""
SEARCH_MAX_REQUESTS = 200_000
"""Requests per rate tried at most (about 5 s of simulation): above 333 requests/s the simulated span
is shorter than 600 s, but still many request lifetimes (200 s at 1,000 requests/s, 50 lifetimes of
a 4 s Llama-3.1-8B request)."""


def search_requests(rate_per_s: float, prompts: int, seconds: float = SEARCH_SECONDS) -> int:
    """Requests simulated at one rate of a search: the benchmark's duration (`seconds`) at that rate,
    at least its dataset, within `SEARCH_MIN_REQUESTS` and `SEARCH_MAX_REQUESTS`."""
    wanted = max(math.ceil(rate_per_s * seconds), prompts)
    return min(max(wanted, SEARCH_MIN_REQUESTS), SEARCH_MAX_REQUESTS)


# Mean lengths (prompt tokens, output tokens) per request of public datasets, by the `dataset` column.
# sharegpt: vLLM PR #18566 (github.com/vllm-project/vllm/pull/18566, description), `vllm bench serve`
# on ShareGPT_Vicuna_unfiltered with the Llama-3.1-8B-Instruct tokenizer: 1,000 requests, 229,711
# input and 203,068 generated tokens. Cross-check: SGLang's offline ShareGPT run of the same model
# (benchmark/benchmark_vllm_060/README.md) gives 4,281.51 tok/s / 22.03 req/s = 194 output tokens
# per request.
#
# MLPerf Inference datasets, keyed by the names the MLPerf rows give. Input means: per-sample prompt
# token counts of the official MLCommons dataset files, published one row per sample as
# mlperf-data/summaries/<name>.csv in github.com/openshift-psap/performance-dashboard (llama2-70b-99,
# llama3-1-8b-datacenter and deepseek-r1 at commit 7cd1065, 2025-11-04; mixtral-8x7b and
# llama3-1-405b at 67033ba, 2025-11-20); the mean is the column's sum over its row count. Each file
# has the dataset's sample count, and where the file's output column holds the reference outputs
# its mean equals MLCommons' published one (mixtral 144.84, llama3.1-405b 684.68), so the files are
# the official sets. Output means are what the benchmark's reference generation produced, from
# github.com/mlcommons/inference at commit b66003e unless noted: a benchmark row serves the model's
# generated tokens, not the dataset's reference answers.
DATASET_LENGTHS = {
    "sharegpt": (229.711, 203.068),
    # input 5,463,976 tokens / 24,576 samples; output language/llama2-70b/README.md "Tokens per
    # sample: 294.45"
    "open_orca (mlperf llama2-70b, 24576 samples)": (222.330, 294.45),
    # input 6,410,905 / 15,000; output language/mixtral-8x7b/README.md {'tokens_per_sample': 144.84}
    "mlperf mixtral-8x7b dataset": (427.394, 144.84),
    # input 78,380,323 / 8,313; output language/llama3.1-405b/README.md 'tokens_per_sample': 684.68
    "mlperf llama3.1-405b dataset": (9428.645, 684.68),
    # input 3,527,036 / 4,388; output language/deepseek-r1/README.md "mean-output-tok-len": 3886.2274
    "mlperf deepseek-r1 dataset": (803.791, 3886.2274),
    # input 11,639,915 / 13,368. Output: the reference's gen_len (8,167,644) counts characters, so the
    # token mean is NVIDIA's B200 Offline run over the whole dataset, github.com/mlcommons/
    # inference_results_v5.1 (commit 965182b) closed/NVIDIA/results/B200-SXM-180GBx8_TRT/llama3.1-8b/
    # Offline/performance/run_1/mlperf_log_summary.txt: "Tokens per second: 136752" / "Samples per
    # second: 1060.23" (the reference caps output at 128 tokens, language/llama3.1-8b/SUT_VLLM.py)
    "cnn_dailymail (mlperf llama3.1-8b)": (870.730, 128.983),
}

# Per-sample lengths of the MLPerf datasets (`sim/fidelity/datasets/<name>.csv.gz`, written by
# scripts/mlperf_lengths.py from the official dataset files' per-sample token counts; outputs
# scaled to the generated means above where the file holds other answers). A row on one of these
# datasets that states no lengths of its own draws each request's prompt and output from them, as
# loadgen draws samples, rather than giving every request the means.
DATASET_FILES = {
    "open_orca (mlperf llama2-70b, 24576 samples)": "llama2-70b",
    "mlperf mixtral-8x7b dataset": "mixtral-8x7b",
    "mlperf llama3.1-405b dataset": "llama3.1-405b",
    "mlperf deepseek-r1 dataset": "deepseek-r1",
    "cnn_dailymail (mlperf llama3.1-8b)": "llama3.1-8b",
}
DATASET_DIR = Path(__file__).parent / "datasets"


def dataset_file(row) -> Path | None:
    """The per-sample lengths file a row's requests are drawn from, or None (fixed lengths): only for
    a dataset with a file, when the row states no lengths or means of its own."""
    own = (row.input_len, row.output_len, row.mean_input_len, row.mean_output_len)
    name = DATASET_FILES.get(str(row.dataset).strip().lower())
    if name is None or any(_number(v) > 0 for v in own):
        return None
    return DATASET_DIR / f"{name}.csv.gz"


# The server's settings a row may state (empty: the scenario's default). `stream_interval` is the
# tokens per streamed chunk (vLLM's `--num-scheduler-steps`, SGLang's `--stream-interval`). The
# batcher columns describe a harness that holds arrivals and sends them to the replicas in batches
# (`sim.engine.batcher`; AMD's MLPerf v4.1 `--enable-batcher`): its window in milliseconds and the
# most requests a batch carries. `prefill_min_waiting` is AMD's MLPerf v5.1 vLLM scheduler patch
# (`VLLM_LLAMA2_MLPERF_MIN_REQUIRE_PREFILL_QUERY`): right after a step that prefilled, new requests
# join only when that many wait (`scheduler.prefill_min_waiting`). `adp_timeout_iters` is TensorRT-LLM's
# attention-DP balancing (`attention_dp_config: {enable_balance: true, timeout_iters: N}`), which holds
# new context requests back until N iterations have passed since it last let them in, unless every
# attention rank has one waiting (`sim.engine.lockstep.Balance`).
BATCHER_COLUMNS = ("batcher_window_ms", "batcher_max_requests")
SERVER_COLUMNS = (
    "max_num_seqs",
    "max_num_batched_tokens",
    "chunked_prefill",
    "stream_interval",
    "prefill_min_waiting",
    "adp_timeout_iters",
    *BATCHER_COLUMNS,
)
# A benchmark's latency limits on the 99th percentiles (MLPerf Server and Interactive). A run that
# states them is simulated as the benchmark's search for the highest rate within them
# (`sim.fidelity.ratesearch`), not at the rate the submitter found.
LIMIT_COLUMNS = ("ttft_p99_limit_ms", "tpot_p99_limit_ms")
# How an engine of `tp` GPUs splits a model beyond tensor parallelism, as vendors write it (empty: 1):
# `attention_dp` data-parallel attention ranks, each serving its own requests with attention split
# tp / attention_dp ways (TensorRT-LLM's `enable_attention_dp`, SGLang's `--enable-dp-attention --dp`),
# and `ep` expert-parallel groups of its MoE layers. The engine's `max_num_seqs` is then shared by its
# attention ranks, each scheduling max_num_seqs / attention_dp (`sim.cost.parallelism`).
PARALLEL_COLUMNS = ("attention_dp", "ep")
NO_RATE = "no request rate"
"""How the reason a searched run found no rate within its limits begins (`simulate`)."""


def has_limits(rows: pd.DataFrame) -> pd.Series:
    """Per row of a measurement table, whether it states latency limits (its run is searched)."""
    return rows.get(LIMIT_COLUMNS[0], pd.Series("", index=rows.index)).astype(str) != ""


def at_submitted_rate(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` with each searched run (`has_limits`) turned into a run at the Poisson rate its
    submitter found (`qps`) for the benchmark's duration (`SEARCH_SECONDS`, in a `duration_s`
    column), not a search: how a fit reads such rows, one simulation per probe instead of a dozen.
    At that rate the row's latencies are what the benchmark measured."""
    limited = has_limits(rows)
    out = rows.copy()
    for column in LIMIT_COLUMNS:
        out.loc[limited, column] = ""
    out["duration_s"] = np.where(limited, str(SEARCH_SECONDS), "")
    return out


def search_from(rows: pd.DataFrame, rates: pd.Series) -> pd.DataFrame:
    """`rows` with each searched run (`has_limits`) that `rates` gives a rate for (by row index; nan:
    none) started there at `ratesearch.NEAR_STEP` (in a `search_step` column) instead of at its
    submitter's rate: how a fit searches again for knobs close to those that found `rates`, in
    about half the runs of a search from the submitter's rate, to the same resolution."""
    rates = rates.reindex(rows.index)
    near = has_limits(rows) & rates.notna()
    out = rows.copy()
    out.loc[near, "qps"] = rates[near].map(repr)
    out["search_step"] = np.where(near, repr(ratesearch.NEAR_STEP), "")
    return out


_SWITCH = {"true": True, "on": True, "false": False, "off": False}


def server_settings_error(row) -> str | None:
    """Why a row's server settings cannot be read (the column named), or None."""
    whole = ("max_num_seqs", "max_num_batched_tokens", "stream_interval", "prefill_min_waiting")
    whole += ("adp_timeout_iters",)
    for col in (*whole, "batcher_max_requests", *PARALLEL_COLUMNS):
        text = str(getattr(row, col, "")).strip()
        if text and not (_number(text) >= 1 and _number(text) == round(_number(text))):
            return f"{col} must be a whole number >= 1, got {text!r}"
    batcher = [str(getattr(row, c, "")).strip() for c in BATCHER_COLUMNS]
    if batcher[0] and not 0 < _number(batcher[0]) < math.inf:
        return f"batcher_window_ms must be a positive number of milliseconds, got {batcher[0]!r}"
    if any(batcher) and not all(batcher):
        return f"{' and '.join(BATCHER_COLUMNS)} go together: give both or neither"
    if any(batcher) and row.scenario != "poisson_rate":
        return f"a batcher holds open-loop arrivals: poisson_rate rows only, not {row.scenario!r}"
    balanced = str(getattr(row, "adp_timeout_iters", "")).strip()
    if balanced and not _number(getattr(row, "attention_dp", "")) > 1:
        return "adp_timeout_iters balances attention-DP ranks: it needs attention_dp above 1"
    text = str(row.chunked_prefill).strip().lower()
    if text and text not in _SWITCH:
        return f"chunked_prefill must be true or false, got {row.chunked_prefill!r}"
    limits = [str(getattr(row, c)).strip() for c in LIMIT_COLUMNS]
    for col, text in zip(LIMIT_COLUMNS, limits, strict=True):
        if text and not 0 < _number(text) < math.inf:
            return f"{col} must be a positive number of milliseconds, got {text!r}"
    if any(limits) and not all(limits):
        return f"{' and '.join(LIMIT_COLUMNS)} go together: give both or neither"
    if any(limits) and row.scenario != "poisson_rate":
        return f"latency limits apply to poisson_rate rows (the rate is searched), not {row.scenario!r}"
    return None


def _scheduler(row, attention_dp: int = 1) -> tuple[tuple[str, object], ...]:
    """The scheduler settings the row states, as items of the scenario's `scheduler` mapping (each of
    an engine's `attention_dp` schedulers takes its share of the engine's `max_num_seqs`). On a
    vLLM row, `stream_interval` is `--num-scheduler-steps`, which also batches in windows of that
    many decode steps (`scheduler_steps`); and with chunked prefill off, vLLM's scheduler runs
    admissible prefills alone and first ("By default, vLLM scheduler prioritizes prefills ... Once
    chunked prefill is enabled, the policy is changed to prioritize decode requests", vLLM's docs as
    quoted in github.com/vllm-project/vllm/pull/7874), `priority: prefill`. TensorRT-LLM's attention-DP
    balancing is the scheduler's `adp_timeout_iters` (`sim.engine.lockstep.Balance`)."""
    stated = ("max_num_seqs", "max_num_batched_tokens", "prefill_min_waiting")
    out = [(c, _number(getattr(row, c, ""))) for c in stated]
    out = [(c, round(v)) for c, v in out if v >= 1]
    out = [(c, max(1, v // attention_dp) if c == "max_num_seqs" else v) for c, v in out]
    switch = str(row.chunked_prefill).strip().lower()
    if switch:
        out.append(("chunked_prefill", _SWITCH[switch]))
    if "vllm" in str(row.framework).lower():
        steps = _number(getattr(row, "stream_interval", ""))
        if steps > 1:
            out.append(("scheduler_steps", round(steps)))
        if switch and not _SWITCH[switch]:
            out.append(("priority", "prefill"))
    timeout = _number(getattr(row, "adp_timeout_iters", ""))
    if timeout >= 1:
        out.append(("adp_timeout_iters", round(timeout)))
    return tuple(out)


@dataclass(frozen=True)
class Run:
    """One benchmark run as ctxsim simulates it: `arrivals` is the scenario's arrivals mapping as a
    tuple of items (hashable), lengths are per request."""

    model: ModelArch
    hardware: Accelerator
    tp: int
    """GPUs of one engine (a replica), as the row counts them."""
    replicas: int
    arrivals: tuple[tuple[str, object], ...]
    prompt_tokens: int
    output_tokens: int
    requests: int
    lengths_file: Path | None = None
    """Per-sample lengths each request is drawn from (`DATASET_FILES`); `prompt_tokens` and
    `output_tokens` are then the dataset's means."""
    scheduler: tuple[tuple[str, object], ...] = ()
    stream_interval: int = 1
    batcher: tuple[tuple[str, object], ...] = ()
    """The harness's front-end batcher (`sim.scenario.FrontBatcher` fields), if the row states one."""
    truncated: bool = False
    """The benchmark served more requests than `requests` (rates are read over the steady window)."""
    limits: tuple[float, float] | None = None
    """p99 TTFT and TPOT limits (s): simulate the search for the highest rate within them, each rate
    for the benchmark's duration (`search_requests`; `requests` is then the dataset's size, 0 when
    not stated)."""
    attention_dp: int = 1
    """Data-parallel attention ranks of each engine (`PARALLEL_COLUMNS`); attention runs on
    tp / attention_dp GPUs each."""
    ep: int = 1
    """Expert-parallel groups of each engine's MoE layers."""
    search_step: float = 2.0
    """The first step of a search from the run's rate (`ratesearch.highest_rate`): 2 from the
    submitter's rate, `ratesearch.NEAR_STEP` from a rate found for knobs close to these
    (`search_from`)."""

    @property
    def parallelism(self) -> dict[str, int]:
        """The scenario's `parallelism` mapping of one engine."""
        return {"tp": self.tp // self.attention_dp, "attention_dp": self.attention_dp, "ep": self.ep}


@dataclass(frozen=True)
class Simulated:
    """A simulated run: the engine's requests table and the run's steady window (`sim.engine.steady`);
    `steady` is the summary's `steady_state`."""

    requests: pd.DataFrame
    steady_start_s: float
    steady_end_s: float
    steady: bool
    rate_per_s: float | None = None
    """The rate the search found, for a run with `limits`."""
    truncated: bool = False
    """The search's run at that rate was cut at `SEARCH_MAX_REQUESTS`, short of `SEARCH_SECONDS`
    (rates are then read over the steady window). A run of 600 s or more is read whole, even where
    the benchmark served more queries (its drain is a few percent of either span)."""


def is_serving(row) -> bool:
    """Whether a measurement row is a serving-benchmark row (`plan_run` and `measure` read it)."""
    return row.scenario in SERVING_SCENARIOS and row.metric in SERVING_METRICS


def _number(text: str) -> float:
    """A table cell as a number ("~20000" is 20000: an approximate mean is still the mean given);
    nan when empty or not a number."""
    try:
        return float(str(text).strip().lstrip("~"))
    except ValueError:
        return math.nan


def _lengths(row) -> tuple[int, int] | str:
    """(prompt tokens, output tokens) per request, or why they are unknown."""
    isl, osl = _number(row.input_len), _number(row.output_len)
    if isl > 0 and osl > 0:
        return round(isl), round(osl)
    isl, osl = _number(row.mean_input_len), _number(row.mean_output_len)
    known = DATASET_LENGTHS.get(str(row.dataset).strip().lower())
    if known is not None:
        isl = isl if isl > 0 else known[0]
        osl = osl if osl > 0 else known[1]
    if not (isl > 0 and osl > 0):
        missing = " and ".join(n for n, v in (("input", isl), ("output", osl)) if not v > 0)
        return f"mean {missing} length of dataset {row.dataset or '(none)'!r} not given"
    return round(isl), round(osl)


def _arrivals(row) -> dict | str:
    """The scenario's arrivals mapping for the row's load, or why it cannot be built."""
    if row.scenario == "offline":
        return {"kind": "burst"}
    if row.scenario == "fixed_concurrency":
        users = _number(row.concurrency)
        if not users >= 1:
            return "fixed_concurrency row without a concurrency"
        return {"kind": "closed_loop", "users": round(users), "think_time_s": 0.0}
    rate = _number(row.qps)
    if not 0 < rate < math.inf:
        return f"poisson_rate row without a finite request rate (qps {row.qps!r})"
    return {"kind": "poisson", "rate_per_s": rate}


def plan_run(row, model: ModelArch, hw: Accelerator) -> Run | str:
    """The run a serving row was measured in, or why it cannot be simulated."""
    if row.stat and row.stat not in STATS and row.metric in LATENCY_COLUMNS:
        return f"unsupported statistic {row.stat!r}"
    if _number(getattr(row, "cp", "")) > 1:
        return f"context parallelism (cp {row.cp}) not simulated for serving rows"
    tp = round(_number(row.tp)) if _number(row.tp) > 0 else 1
    gpus = _number(row.num_gpus)
    if not gpus > 0:
        gpus = tp
    if gpus % tp:
        return f"num_gpus {row.num_gpus} is not a multiple of tp {tp}"
    stated = (_number(getattr(row, c, "")) for c in PARALLEL_COLUMNS)
    attention_dp, ep = (round(v) if v >= 1 else 1 for v in stated)
    if tp % attention_dp:
        return f"attention_dp {attention_dp} does not divide tp {tp}"
    lengths = _lengths(row)
    if isinstance(lengths, str):
        return lengths
    arrivals = _arrivals(row)
    if isinstance(arrivals, str):
        return arrivals
    prompts = _number(row.num_prompts)
    limits = _limits(row)
    dataset = round(prompts) if prompts >= 1 else 0
    # a search sizes each rate's run from the dataset's size itself (`search_requests`)
    simulated = min(dataset, MAX_REQUESTS) if dataset else MAX_REQUESTS
    requests = dataset if limits is not None else simulated
    duration = _number(getattr(row, "duration_s", ""))
    truncated = limits is None and prompts > MAX_REQUESTS
    if limits is None and duration > 0 and arrivals.get("kind") == "poisson":
        # a run of a stated duration at its rate (`at_submitted_rate`)
        requests = search_requests(arrivals["rate_per_s"], dataset, duration)
        truncated = requests < max(arrivals["rate_per_s"] * duration, dataset)
    interval = _number(getattr(row, "stream_interval", ""))
    step = _number(getattr(row, "search_step", ""))
    return Run(
        model,
        hw,
        tp,
        round(gpus) // tp,
        tuple(arrivals.items()),
        *lengths,
        requests,
        lengths_file=dataset_file(row),
        scheduler=_scheduler(row, attention_dp),
        stream_interval=round(interval) if interval >= 1 else 1,
        batcher=_batcher(row),
        truncated=truncated,
        limits=limits,
        attention_dp=attention_dp,
        ep=ep,
        search_step=step if step > 0 else 2.0,
    )


def _batcher(row) -> tuple[tuple[str, object], ...]:
    """The row's front-end batcher as items of the scenario's `cluster.batcher`, or ()."""
    window, most = (_number(getattr(row, c, "")) for c in BATCHER_COLUMNS)
    if math.isnan(window) or math.isnan(most):
        return ()
    return (("window_s", window * 1e-3), ("max_requests", round(most)))


def _limits(row) -> tuple[float, float] | None:
    """The row's p99 TTFT and TPOT limits in seconds, or None."""
    values = [_number(getattr(row, c, "")) for c in LIMIT_COLUMNS]
    return None if any(math.isnan(v) for v in values) else (values[0] * 1e-3, values[1] * 1e-3)


def simulate(run: Run) -> Simulated:
    """`sim.api.run` on the scenario `run` describes: its requests table and steady window. A run
    with latency limits is the benchmark's search: the highest Poisson rate whose p99 TTFT and TPOT
    stay within them (every request finished), from the run's rate (the submitter's, or one found
    before: `Run.search_step`)."""
    if run.limits is None:
        return _simulate(run, dict(run.arrivals))
    tried: dict[float, Simulated] = {}

    def meets(rate: float) -> bool:
        sized = dataclasses.replace(run, requests=search_requests(rate, run.requests))
        tried[rate] = _simulate(sized, {"kind": "poisson", "rate_per_s": rate})
        return within(tried[rate].requests, run.limits)

    rate = ratesearch.highest_rate(meets, float(dict(run.arrivals)["rate_per_s"]), run.search_step)
    if rate is None:
        raise ValueError(f"{NO_RATE} down to {min(tried):.3g}/s meets the p99 latency limits")
    found = tried[rate]
    cut = rate * SEARCH_SECONDS > SEARCH_MAX_REQUESTS  # fewer than the benchmark's 600 s simulated
    return Simulated(found.requests, found.steady_start_s, found.steady_end_s, found.steady, rate, cut)


def within(requests: pd.DataFrame, limits: tuple[float, float]) -> bool:
    """Whether every request finished with p99 TTFT and p99 TPOT within `limits` (seconds)."""
    if requests["finish_s"].isna().any():
        return False
    return measure(requests, "ttft", "p99") <= limits[0] and measure(requests, "tpot", "p99") <= limits[1]


def _simulate(run: Run, arrivals: dict) -> Simulated:
    scenario = Scenario(
        name="serving-benchmark",
        hardware=run.hardware,
        stack="none",
        model=run.model,
        parallelism=run.parallelism,
        cluster={"replicas": run.replicas, "batcher": dict(run.batcher) or None},
        workload={
            "arrivals": arrivals,
            **_length_fields(run),
        },
        stop={"requests": run.requests},
        scheduler=dict(run.scheduler),
    )
    result = run_scenario(scenario)
    summary = result.summary
    return Simulated(result.requests, summary.steady_start_s, summary.steady_end_s, summary.steady_state)


def _length_fields(run: Run) -> dict:
    """The workload's length distributions: drawn from the dataset's samples, else fixed."""
    if run.lengths_file is not None:
        return {
            name: {"kind": "empirical", "path": run.lengths_file, "column": name}
            for name in ("prompt_tokens", "output_tokens")
        }
    return {
        "prompt_tokens": {"kind": "fixed", "tokens": run.prompt_tokens},
        "output_tokens": {"kind": "fixed", "tokens": run.output_tokens},
    }


def read(simulated: Simulated, run: Run, metric: str, stat: str) -> float:
    """The row's number from a simulated run: `measure`, over the steady window when the benchmark
    ran longer than the simulation (`Run.truncated`, `Simulated.truncated`)."""
    cut = run.truncated or simulated.truncated
    window = (simulated.steady_start_s, simulated.steady_end_s) if cut else None
    return measure(simulated.requests, metric, stat, window, run.stream_interval)


def measure(
    requests: pd.DataFrame,
    metric: str,
    stat: str,
    window: tuple[float, float] | None = None,
    stream_interval: int = 1,
) -> float:
    """The row's number from a simulated requests table, in SI units (seconds, or per second):
    `stat` of a latency over the finished requests, or a rate over the run's span (first arrival
    to last finish), or over `window` (start_s, end_s) when given: requests finishing in it. ITL is
    the gap between streamed chunks: `stream_interval` decode steps."""
    done = requests[requests["finish_s"].notna()]
    if metric in LATENCY_COLUMNS:
        values = done[LATENCY_COLUMNS[metric]].dropna().to_numpy()
        if metric == "itl":
            values = values * stream_interval
        if not len(values):
            return math.nan
        if stat in ("mean", "unstated", ""):
            return float(values.mean())
        return float(np.percentile(values, {"median": 50, "p90": 90, "p99": 99}[stat]))
    span = float(done["finish_s"].max() - requests["arrival_s"].min()) if len(done) else math.nan
    if metric == "benchmark_duration":
        return span
    if window is not None:
        start, end = window
        done = done[(done["finish_s"] >= start) & (done["finish_s"] <= end)]
        span = end - start
    tokens = {
        "request_throughput": len(done),
        "output_throughput": done["output_tokens"].sum(),
        "total_token_throughput": done["output_tokens"].sum() + done["prompt_tokens"].sum(),
    }[metric]
    return float(tokens) / span if span > 0 else math.nan
