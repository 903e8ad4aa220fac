"""Predict published measurements and report how far off ctxsim is.

A measurement file has one measured number per row with the configuration it was taken at, in the
columns of `MEASUREMENT_COLUMNS` (the layout of the TensorRT-LLM / paper transcriptions in the
project's validation data). Each supported row becomes a query:

- `output_throughput_per_gpu` (static batch, e.g. TensorRT-LLM v0.9 gptSessionBenchmark): one prefill
  step of `batch_size` prompts of `input_len`, then `output_len - 1` decode steps of the whole batch;
  output tokens / time / `num_gpus`;
- `ttft` (ms): one prefill step of `batch_size` (default 1) prompts;
- `tpot` (ms): mean decode step over `output_len - 1` steps from context `input_len` at `batch_size`;
- `output_token_throughput` (offline: every request at t=0, fixed lengths): the engine (`sim.api.run`)
  serves the benchmark's request count with its own batching and KV limits; output tokens/s.

Rows ctxsim cannot model (unknown model or GPU, other metrics) are kept with a `skipped_reason`.
Precision FP8 means FP8 weights and FP8 KV cache (as TensorRT-LLM builds FP8 engines); FP16/BF16 both
cost 2 bytes. Each predicted row is labelled prefill- or decode-bound by which phase takes most of its
predicted time, and flagged when an efficiency curve is read outside its measured range or was fitted
on a device with other peaks (a transfer; see `sim.fidelity.calibrate`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import hardware
from hardware.catalog import load_hardware
from hardware.spec import Accelerator
from sim.cost.parallelism import ConfigError, Parallelism
from sim.cost.roofline import CostModel, RooflineCost, new_acc
from sim.fidelity import names, serving
from workloads.catalog import load_model
from workloads.model import ModelArch

MEASUREMENT_COLUMNS = (
    "row_id",
    "source_id",
    "source_repo",
    "source_path",
    "source_commit",
    "framework",
    "framework_version",
    "model",
    "precision",
    "gpu",
    "num_gpus",
    "tp",
    "pp",
    "cp",
    "scenario",
    "input_len",
    "output_len",
    "batch_size",
    "concurrency",
    "qps",
    "metric",
    "value",
    "unit",
    "notes",
    "dataset",
    "mean_input_len",
    "mean_output_len",
    "num_prompts",
    "stat",
    *serving.SERVER_COLUMNS,
    *serving.LIMIT_COLUMNS,
    *serving.PARALLEL_COLUMNS,
)
REQUIRED_COLUMNS = ("row_id", "model", "gpu", "metric", "value")
METRIC_GROUP = {
    "output_throughput_per_gpu": "throughput",
    "output_token_throughput": "throughput",
    "ttft": "ttft",
    "prefill_time": "ttft",
    "tpot": "tpot",
    "itl": "tpot",
    "e2e_latency": "e2e",
    "request_throughput": "throughput",
    "output_throughput": "throughput",
    "total_token_throughput": "throughput",
    "benchmark_duration": "throughput",
}
NEEDS = {
    "output_throughput_per_gpu": ("input_len", "output_len", "batch_size"),
    "ttft": ("input_len",),
    "prefill_time": ("input_len",),
    "tpot": ("input_len", "output_len"),
    "output_token_throughput": ("input_len", "output_len"),
}
UNIT_SCALE = {
    "ms": 1e-3,
    "s": 1.0,
    "us": 1e-6,
    "tokens/s": 1.0,
    "tok/s": 1.0,
    "req/s": 1.0,
    "output tokens/s/gpu": 1.0,
}

# TensorRT-LLM v0.17 perf-overview, "$num_requests" per ISL/OSL (NVIDIA/TensorRT-LLM @ 258c7540,
# docs/source/performance/perf-overview.md, "Preparing a Dataset").
OFFLINE_REQUESTS = {
    (128, 128): 30000,
    (128, 2048): 3000,
    (128, 4096): 1500,
    (2048, 128): 3000,
    (2048, 2048): 1500,
    (5000, 500): 1500,
    (1000, 1000): 3000,
    (500, 2000): 3000,
    (20000, 2000): 1000,
}
# Engine settings for offline rows: trtllm-bench's runtime limits in that document's example
# (max runtime batch 4096, max runtime tokens 8192) and `--kv_cache_free_gpu_mem_fraction 0.95`.
OFFLINE_MAX_SEQS = 4096
OFFLINE_MAX_TOKENS = 8192
OFFLINE_KV_FREE_FRACTION = 0.95


class MeasurementError(ValueError):
    """A measurement file that cannot be read; the message names the line, row or column."""


# ---- reading ----------------------------------------------------------------------------------------
def read_measurements(path: str | Path) -> pd.DataFrame:
    """A measurement CSV, checked: all columns known, the required ones present, and every row of a
    supported metric has a positive numeric value and the lengths its query needs. Serving-benchmark
    columns (dataset, mean_input_len, mean_output_len, num_prompts, stat, the server's settings of
    `serving.SERVER_COLUMNS`, the latency limits of `serving.LIMIT_COLUMNS` and the engine's split of
    `serving.PARALLEL_COLUMNS`) are optional; their
    rows (`sim.fidelity.serving`) need only a value, and say why when they cannot be simulated."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.ParserError as exc:
        raise MeasurementError(f"{path}: malformed CSV: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise MeasurementError(f"{path}: cannot read: {exc}") from exc
    unknown = [c for c in df.columns if c not in MEASUREMENT_COLUMNS]
    if unknown:
        raise MeasurementError(
            f"{path}: unknown column {unknown[0]!r}; expected columns from {', '.join(MEASUREMENT_COLUMNS)}"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise MeasurementError(f"{path}: missing column {missing[0]!r}")
    df = df.reindex(columns=list(MEASUREMENT_COLUMNS), fill_value="")
    for line, row in enumerate(df.itertuples(index=False), start=2):
        bad = serving.server_settings_error(row)
        if bad:
            raise MeasurementError(f"{path}: line {line} (row_id {row.row_id}): {bad}")
        if serving.is_serving(row):
            needs = ()
        elif row.metric in NEEDS:
            needs = NEEDS[row.metric]
        else:
            continue
        for col in ("value", *needs, "tp", "num_gpus", "batch_size", "pp", "cp"):
            text = getattr(row, col)
            if text == "" and col not in ("value", *needs):
                continue
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            if not number > 0:
                raise MeasurementError(
                    f"{path}: line {line} (row_id {row.row_id}): {col} must be a positive "
                    f"number for metric {row.metric}, got {text!r}"
                )
    return df


def splitwise_measurements(path: str | Path) -> pd.DataFrame:
    """splitwise-sim's `perf_model.csv` (prefill time of a batch and per-token decode time, ms, by
    model, GPU, TP, prompt size, batch and output length) as measurement rows: `ttft` and `tpot` per
    configuration, the median over its repeats. Precision is FP16 (the repository's model configs)."""
    raw = pd.read_csv(path)
    keys = ["model", "hardware", "tensor_parallel", "prompt_size", "batch_size", "token_size"]
    med = raw.groupby(keys, sort=True)[["prompt_time", "token_time"]].median().reset_index()
    rows = []
    for i, r in enumerate(med.itertuples(index=False)):
        base = {
            "source_id": "SPLITWISE-SIM",
            "source_repo": "Mutinifni/splitwise-sim",
            "source_path": "data/perf_model.csv",
            "framework": "splitwise-sim profiling",
            "model": r.model,
            "precision": "FP16",
            "gpu": r.hardware,
            "num_gpus": r.tensor_parallel,
            "tp": r.tensor_parallel,
            "pp": 1,
            "scenario": "static_batch",
            "input_len": r.prompt_size,
            "output_len": r.token_size,
            "batch_size": r.batch_size,
            "unit": "ms",
            "notes": "median of repeats",
        }
        rows.append({**base, "row_id": f"sw{i}-ttft", "metric": "ttft", "value": r.prompt_time})
        rows.append({**base, "row_id": f"sw{i}-tpot", "metric": "tpot", "value": r.token_time})
    return pd.DataFrame(rows).reindex(columns=list(MEASUREMENT_COLUMNS)).fillna("").astype(str)


# ---- resolving names ------------------------------------------------------------------------------------
def dtypes(precision: str) -> tuple[str, str]:
    """(weight dtype, KV-cache dtype) from a published precision such as "FP8", "FP4 weights, FP8 KV",
    "int8 weights+KV" or "KV cache FP8 (weights default)". 16-bit when nothing narrower is named;
    the KV cache follows the weights when not named (TensorRT-LLM's FP8 engines, the v0.9 and v0.17
    rows, use an FP8 KV cache), except under FP4 weights, where the rows that name it use FP8."""
    weight = kv = None
    for part in re.split(r"[,/]", precision.lower()):
        narrow = next((d for d in ("fp4", "fp8", "int8") if d in part), None)
        if "kv" in part:
            kv = narrow or "bf16"
            if "weight" in part and "default" not in part:
                weight = narrow
        elif "attention" not in part and "default" not in part:
            weight = weight or narrow
    weight = weight or "bf16"
    return weight, kv or ("fp8" if weight == "fp4" else weight)


def resolve_model(name: str, precision: str, models_dir: Path | None) -> ModelArch | None:
    """The architecture for a published model name at a published precision, or None if unknown.
    Names resolve through `sim.fidelity.names`; a models folder's `<name>.yaml|.json` wins over a
    preset of the same name."""
    alias = names.model_preset(name)
    if alias is None:
        return None
    arch = None
    if models_dir is not None:
        for suffix in (".yaml", ".json"):
            if (models_dir / f"{alias}{suffix}").exists():
                arch = load_model(models_dir / f"{alias}{suffix}")
    if arch is None:
        try:
            arch = load_model(alias)
        except ValueError:
            return None
    context = names.context_override(name)
    if context is not None:
        arch = arch.model_copy(update={"max_context_tokens": context})
    return arch.with_dtypes(*dtypes(precision))


def gpu_preset(name: str) -> str | None:
    """The hardware preset a published GPU name stands for, or None if there is none."""
    return names.gpu_preset(name)


# Parts that published measurements ran on but that are not sold as catalog presets (e.g. Meta's
# 500 W, 96 GB H100 of the Context Parallelism paper), one `<name>.yaml` each.
VALIDATION_DEVICES = Path(hardware.__file__).parent / "validation"


def load_device(preset: str) -> Accelerator:
    """The accelerator a `gpu_preset` name stands for: a catalog preset, or a part of
    `VALIDATION_DEVICES`."""
    path = VALIDATION_DEVICES / f"{preset}.yaml"
    return load_hardware(path if path.exists() else preset)


def resolve_gpu(name: str, overrides: dict[str, Accelerator]) -> Accelerator | None:
    """The accelerator for a published GPU name; `overrides` (preset name -> accelerator, e.g. a
    calibrated file) replaces presets. None if unknown."""
    preset = gpu_preset(name)
    if preset is None:
        return None
    return overrides.get(preset) or load_device(preset)


def hardware_overrides(paths: list[Path]) -> dict[str, Accelerator]:
    """Hardware files (e.g. calibrated) keyed by the preset name they stand in for (their `name`),
    as `resolve_gpu` and `validate` take them."""
    return {hw.name: hw for hw in (load_hardware(path) for path in paths)}


# ---- predicting -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Prediction:
    value: float
    regime: str
    flags: tuple[str, ...]
    searched_rate: float = math.nan
    """The highest rate within the row's latency limits its run's search found (requests/s)."""


def _static(cost: CostModel, batch: int, isl: int, osl: int) -> tuple[float, float]:
    """(prefill seconds, decode seconds) of a static batch: one prefill step, then osl - 1 steps."""
    prefill = cost.step(np.full(batch, isl), np.zeros(batch, np.int64), batch).total_s
    decode = 0.0
    if osl > 1:
        _, decode = cost.decode_span(np.full(batch, isl, np.int64), 0.0, np.inf, osl - 1, new_acc())
    return prefill, decode


EXTRAPOLATED_SHARE = 0.1  # flag a row when operators read outside a curve's range take this share of a step


def _flags(cost: CostModel, hw: Accelerator, batch: int, isl: int) -> tuple[str, ...]:
    flags = []
    steps = (
        cost.breakdown(np.full(batch, isl), np.zeros(batch, np.int64), batch),
        cost.breakdown(np.ones(batch, np.int64), np.full(batch, isl), batch),
    )
    share = max(float(b.loc[b["extrapolated"], "time_s"].sum() / b["time_s"].sum()) for b in steps)
    if share >= EXTRAPOLATED_SHARE:
        flags.append(f"extrapolated ({share:.0%} of a step outside measured range)")
    cal = hw.efficiency.calibration
    if cal is not None and (
        not math.isclose(cal.peak_bf16_flops_per_s, hw.peak_flops.bf16, rel_tol=1e-6)
        or not math.isclose(cal.bandwidth_bytes_per_s, hw.main_tier.bandwidth_bytes_per_s, rel_tol=1e-6)
    ):
        flags.append(f"transferred from {cal.device}")
    return tuple(flags)


def _offline(model: ModelArch, hw: Accelerator, par: Parallelism, isl: int, osl: int, requests: int) -> float:
    from sim.api import run
    from sim.cost.memory import memory_plan
    from sim.scenario import Scenario

    weights = memory_plan(model, hw, par).weights_bytes_per_device
    cap = hw.main_tier.capacity_bytes
    fraction = min(1.0, (weights + OFFLINE_KV_FREE_FRACTION * (cap - weights)) / cap)
    scenario = Scenario(
        name="offline",
        hardware=hw,
        stack="none",
        model=model,
        parallelism={"tp": par.tp, "pp": par.pp},
        scheduler={
            "max_num_seqs": OFFLINE_MAX_SEQS,
            "max_num_batched_tokens": OFFLINE_MAX_TOKENS,
            "memory_fraction": fraction,
        },
        workload={
            "arrivals": {"kind": "burst"},
            "prompt_tokens": {"kind": "fixed", "tokens": isl},
            "output_tokens": {"kind": "fixed", "tokens": osl},
        },
        stop={"requests": requests},
    )
    return float(run(scenario).summary.output_tokens_per_s)


def row_parallelism(row) -> Parallelism:
    """A row's tensor-, pipeline- and context-parallel degrees, each 1 where the row leaves it empty
    (`cp` is optional: files without the column read as cp 1)."""
    return Parallelism(
        tp=int(float(row.tp or 1)), pp=int(float(row.pp or 1)), cp=int(float(getattr(row, "cp", "") or 1))
    )


def predict_row(row, model: ModelArch, hw: Accelerator, engine: bool) -> Prediction:
    """The prediction for one measurement row, in the row's own unit."""
    par = row_parallelism(row)
    tp = par.tp
    cost = RooflineCost(model, hw, par)
    isl = int(float(row.input_len))
    osl = int(float(row.output_len or 1))
    batch = int(float(row.batch_size or 1))
    scale = UNIT_SCALE.get(row.unit.strip().lower(), 1.0)
    if row.metric in ("ttft", "prefill_time"):
        prefill = cost.step(np.full(batch, isl), np.zeros(batch, np.int64), batch).total_s
        return Prediction(prefill / scale, "prefill", _flags(cost, hw, batch, isl))
    if row.metric == "tpot":
        _, decode = _static(cost, batch, isl, max(osl, 2))
        return Prediction(decode / (max(osl, 2) - 1) / scale, "decode", _flags(cost, hw, batch, isl))
    if row.metric == "output_throughput_per_gpu":
        prefill, decode = _static(cost, batch, isl, osl)
        gpus = float(row.num_gpus or tp)
        regime = "prefill" if prefill > decode else "decode"
        return Prediction(batch * osl / (prefill + decode) / gpus, regime, _flags(cost, hw, batch, isl))
    # offline throughput: regime from a static batch of 64 as a yardstick, the number from the engine
    prefill, decode = _static(cost, 64, isl, osl)
    regime = "prefill" if prefill > decode else "decode"
    value = _offline(model, hw, par, isl, osl, OFFLINE_REQUESTS[(isl, osl)]) if engine else math.nan
    return Prediction(value, regime, _flags(cost, hw, 64, isl))


def unknown_reason(row, model, hw) -> str:
    """Why a row's model or GPU cannot be used, naming the nearest preset (empty if both resolved)."""
    if model is None:
        return f"unknown model {row.model!r} (nearest preset: {names.nearest_model(row.model)})"
    if hw is None:
        return f"unknown GPU {row.gpu!r} (nearest preset: {names.nearest_gpu(row.gpu)})"
    return ""


# Frameworks (as the `framework` column names them) that compute only part of the attention: sparse
# or streaming methods. ctxsim prices dense attention, so their rows are not scored.
APPROXIMATE_ATTENTION = ("streamingllm", "infllm", "minference")


def _not_modelled(row) -> str:
    """Rows whose deployment ctxsim would have to guess, or does not model: several GPUs (or an
    unstated count) without a tensor-parallel degree, approximate attention, and the prefill time of
    one prompt on pipeline stages. ctxsim runs a prompt's chunks one after another through every
    stage (vLLM's and SGLang's schedulers without chunked pipeline parallelism), so it would price
    such a prompt like one stage group; chunked pipeline parallelism (SGLang's, Mooncake's) overlaps
    the chunks across stages and is not modelled."""
    gpus = pd.to_numeric(row.num_gpus, errors="coerce")
    if not row.tp and not gpus <= 1:
        gpus_text = f"{row.num_gpus} GPUs" if row.num_gpus else "GPU count"
        return f"parallelism not stated: {gpus_text} and tp empty"
    method = next((m for m in APPROXIMATE_ATTENTION if m in row.framework.lower()), None)
    if method is not None:
        return f"approximate attention ({row.framework}) not modelled"
    pp = pd.to_numeric(row.pp, errors="coerce")
    if row.metric in ("ttft", "prefill_time") and pp > 1 and row.scenario == "single_request_prefill":
        return f"chunked pipeline-parallel prefill of one prompt (pp {int(pp)}) not modelled"
    return ""


def _context_limit(model: ModelArch, tokens: float) -> str:
    limit = model.context_limit_tokens
    if limit is not None and tokens > limit:
        return f"context_limit: {tokens:,.0f} tokens exceed {model.name}'s context limit of {limit:,}"
    return ""


def skip_reason(row, model, hw, engine: bool) -> str:
    """Why a measurement row cannot be predicted (empty if it can, short of a configuration the cost
    model rejects): unsupported metric, unknown model or GPU, parallelism not stated, approximate
    attention, prompt + output past the model's context, an offline row without the engine."""
    if row.metric not in NEEDS:
        return f"unsupported metric {row.metric!r}"
    reason = unknown_reason(row, model, hw) or _not_modelled(row)
    if reason:
        return reason
    tokens = pd.to_numeric(pd.Series([row.input_len, row.output_len]), errors="coerce").sum()
    reason = _context_limit(model, tokens)
    if reason:
        return reason
    if row.metric == "output_token_throughput":
        if not engine:
            return "needs engine"
        if (int(float(row.input_len)), int(float(row.output_len))) not in OFFLINE_REQUESTS:
            return "request count of this offline benchmark unknown"
    return ""


def predict_serving(row, model, hw, engine: bool, runs: dict) -> Prediction | str:
    """The prediction for a serving-benchmark row (`sim.fidelity.serving`), or why there is none.
    `runs` caches each simulated run (`serving.Simulated`) by `serving.Run`, so the rows of one run, and
    runs of the same configuration under other frameworks, are simulated once."""
    run = planned_run(row, model, hw, engine)
    if isinstance(run, str):
        return run
    if run not in runs:
        runs[run] = simulated_run(run)
    if isinstance(runs[run], str):
        return runs[run]
    simulated = runs[run]
    value = serving.read(simulated, run, row.metric, row.stat)
    flags = []
    if row.metric == "itl":
        chunk = f"{run.stream_interval} x " if run.stream_interval > 1 else ""
        flags.append(f"ITL read as {chunk}TPOT")
    if row.stat == "unstated":
        flags.append("statistic not stated: scored as mean")
    count = len(simulated.requests)
    if pd.to_numeric(row.num_prompts, errors="coerce") > count or not row.num_prompts:
        flags.append(f"{count:,} requests simulated")
    found = math.nan
    if simulated.rate_per_s is not None:
        found = simulated.rate_per_s
        flags.append(f"highest rate within the p99 limits: {found:.3g}/s (submitter: {row.qps}/s)")
    cut = run.truncated or simulated.truncated
    if cut and row.metric in serving.RATE_METRICS and not simulated.steady:
        flags.append("no steady state in the simulated requests")
    return Prediction(value / UNIT_SCALE.get(row.unit.strip().lower(), 1.0), "serving", tuple(flags), found)


def planned_run(row, model, hw, engine: bool) -> serving.Run | str:
    """The run a serving-benchmark row is simulated as (`serving.plan_run`), or why there is none."""
    reason = unknown_reason(row, model, hw) or _not_modelled(row)
    if reason:
        return reason
    if not engine:
        return "needs engine"
    run = serving.plan_run(row, model, hw)
    if isinstance(run, str):
        return run
    return _context_limit(model, run.prompt_tokens + run.output_tokens) or run


def simulated_run(run: serving.Run) -> serving.Simulated | str:
    """`serving.simulate(run)`, or why it cannot run."""
    try:
        return serving.simulate(run)
    except (ConfigError, ValueError) as exc:
        return f"cannot run: {str(exc).splitlines()[0]}"


def prefetch(cases: Iterable[tuple], runs: dict, pool_map: Callable) -> None:
    """Simulate the serving runs of `cases` ((row, model, hardware) triples) not yet in `runs`, through
    `pool_map` (an executor's `map`: the runs are independent and each is a pure function of its
    `Run`, so a pool gives the same cache as simulating them one by one), and add them to `runs`."""
    planned = (planned_run(row, model, hw, True) for row, model, hw in cases if serving.is_serving(row))
    todo = list(dict.fromkeys(r for r in planned if isinstance(r, serving.Run) and r not in runs))
    runs.update(zip(todo, pool_map(simulated_run, todo), strict=True))


def _case(row, precision: str) -> str:
    """A row's configuration in a few words, for tables."""
    if not serving.is_serving(row):
        cp = f" cp{row.cp}" if getattr(row, "cp", "") not in ("", "1") else ""
        return (
            f"{row.model} {precision} {row.gpu} tp{row.tp or 1}{cp} {row.input_len}/{row.output_len}"
            f"{' b' + row.batch_size if row.batch_size else ''}"
        )
    load = {
        "poisson_rate": f"{row.qps} req/s",
        "fixed_concurrency": f"{row.concurrency} users",
        "offline": "offline",
    }[row.scenario]
    lengths = f"{row.input_len}/{row.output_len}" if row.input_len else row.dataset
    system = f"{row.num_gpus or 1}x{row.gpu} tp{row.tp or 1}"
    return f"{row.model} {precision} {system} {load} {lengths} {row.stat}"


def validate(
    df: pd.DataFrame,
    models_dir: Path | None = None,
    hardware: dict[str, Accelerator] | None = None,
    engine: bool = True,
    progress: Callable[[int], None] | None = None,
    pool_map: Callable | None = None,
) -> pd.DataFrame:
    """One row per measurement: row_id, source_id, case, metric, group, regime, measured, predicted,
    error_pct ((predicted - measured) / measured x 100), flags, skipped_reason and, for a serving row
    searched for its highest rate within latency limits, that rate (searched_rate_per_s). `engine=False` skips
    the rows that need a simulation (offline throughput, serving benchmarks); `progress(1)` is
    called as each row is done (a searched serving run takes up to a minute). With `pool_map` (an
    executor's `map`) the serving runs are simulated through it first (`prefetch`)."""
    out = []
    runs: dict = {}
    cases = [(row, *_inputs(row, models_dir, hardware)) for row in df.itertuples(index=False)]
    if pool_map is not None and engine:
        prefetch(cases, runs, pool_map)
    for row, model, hw in cases:
        precision = row.precision or "bf16"
        rec = {
            "row_id": row.row_id,
            "source_id": row.source_id,
            "case": _case(row, precision),
            "metric": row.metric,
            "group": METRIC_GROUP.get(row.metric, ""),
            "regime": "",
            "unit": row.unit,
            "measured": pd.to_numeric(row.value, errors="coerce"),
            "predicted": math.nan,
            "error_pct": math.nan,
            "flags": "",
            "skipped_reason": "",
            "searched_rate_per_s": math.nan,
        }
        if serving.is_serving(row):
            pred = predict_serving(row, model, hw, engine, runs)
        else:
            pred = skip_reason(row, model, hw, engine)
            if not pred:
                try:
                    pred = predict_row(row, model, hw, engine)
                except ConfigError as exc:
                    pred = f"cannot run: {exc}"
        if isinstance(pred, str):
            rec["skipped_reason"] = pred
        else:
            rec.update(
                predicted=pred.value,
                regime=pred.regime,
                flags="; ".join(pred.flags),
                searched_rate_per_s=pred.searched_rate,
                error_pct=(pred.value - rec["measured"]) / rec["measured"] * 100,
            )
        out.append(rec)
        if progress is not None:
            progress(1)
    return pd.DataFrame(out)


def _inputs(row, models_dir: Path | None, hardware: dict[str, Accelerator] | None) -> tuple:
    """A row's model and device, for a row that needs them (None, None otherwise)."""
    if not (row.metric in NEEDS or serving.is_serving(row)):
        return None, None
    return resolve_model(row.model, row.precision or "bf16", models_dir), resolve_gpu(row.gpu, hardware or {})


# The columns of a `summarize` table, in order.
SUMMARY_COLUMNS = (
    "group",
    "regime",
    "count",
    "median_abs_error_pct",
    "p90_abs_error_pct",
    "median_signed_error_pct",
)


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Median and p90 absolute error (%) per metric group and regime, with counts; skipped rows are
    counted, not scored."""
    scored = results[results["skipped_reason"] == ""].assign(abs_err=lambda d: d["error_pct"].abs())
    rows = []
    for (group, regime), part in scored.groupby(["group", "regime"]):
        rows.append(
            {
                "group": group,
                "regime": regime,
                "count": len(part),
                "median_abs_error_pct": float(part["abs_err"].median()),
                "p90_abs_error_pct": float(part["abs_err"].quantile(0.9)),
                "median_signed_error_pct": float(part["error_pct"].median()),
            }
        )
    for group, part in scored.groupby("group"):
        rows.append(
            {
                "group": group,
                "regime": "all",
                "count": len(part),
                "median_abs_error_pct": float(part["abs_err"].median()),
                "p90_abs_error_pct": float(part["abs_err"].quantile(0.9)),
                "median_signed_error_pct": float(part["error_pct"].median()),
            }
        )
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    return table.sort_values(["group", "regime"]).reset_index(drop=True)


def summarize_by_source(results: pd.DataFrame) -> pd.DataFrame:
    """Median absolute and signed error (%) per source and metric group, with counts."""
    scored = results[results["skipped_reason"] == ""].assign(abs_err=lambda d: d["error_pct"].abs())
    table = scored.groupby(["source_id", "group"]).agg(
        count=("error_pct", "size"),
        median_abs_error_pct=("abs_err", "median"),
        median_signed_error_pct=("error_pct", "median"),
    )
    return table.reset_index()


def coverage(results: pd.DataFrame) -> tuple[int, int]:
    """(rows predicted, rows given)."""
    return int((results["skipped_reason"] == "").sum()), len(results)


def skip_reasons(results: pd.DataFrame) -> pd.DataFrame:
    """Each distinct reason a row was skipped, with its count, most frequent first."""
    skipped = results.loc[results["skipped_reason"] != "", "skipped_reason"]
    counts = skipped.value_counts()
    return pd.DataFrame({"reason": counts.index, "rows": counts.to_numpy()})
