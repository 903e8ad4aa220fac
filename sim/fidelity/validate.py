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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hardware.catalog import load_hardware
from hardware.spec import Accelerator
from sim.cost.parallelism import ConfigError, Parallelism
from sim.cost.roofline import CostModel, RooflineCost, new_acc
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
)
REQUIRED_COLUMNS = ("row_id", "model", "gpu", "metric", "value")
METRIC_GROUP = {
    "output_throughput_per_gpu": "throughput",
    "output_token_throughput": "throughput",
    "ttft": "ttft",
    "tpot": "tpot",
}
NEEDS = {
    "output_throughput_per_gpu": ("input_len", "output_len", "batch_size"),
    "ttft": ("input_len",),
    "tpot": ("input_len", "output_len"),
    "output_token_throughput": ("input_len", "output_len"),
}
UNIT_SCALE = {"ms": 1e-3, "s": 1.0, "us": 1e-6, "tokens/s": 1.0, "output tokens/s/gpu": 1.0}

# Published names -> ctxsim model names (catalog presets, or files `<name>.yaml|.json` in a models dir).
# "LLaMA 7B/70B" in TensorRT-LLM v0.9 are Llama-2 per that document's methodology.
MODEL_ALIASES = {
    "llamav318b": "llama-3.1-8b",
    "llama318b": "llama-3.1-8b",
    "llama3170b": "llama-3.1-70b",
    "llamav3170b": "llama-3.1-70b",
    "llama31405b": "llama-3.1-405b",
    "llamav31405b": "llama-3.1-405b",
    "mixtral8x7b": "mixtral-8x7b",
    "mixtral8x22b": "mixtral-8x22b",
    "mistral7b": "mistral-7b",
    "llama7b": "llama-2-7b",
    "llama70b": "llama-2-70b",
    "llama270b": "llama-2-70b",
    "gptj6b": "gpt-j-6b",
    "falcon180b": "falcon-180b",
}
GPU_ALIASES = {
    "h10080gbhbm3": "h100-sxm",
    "h100": "h100-sxm",
    "h10080gbsxm5": "h100-sxm",
    "h10080gb": "h100-sxm",
    "h200141gbhbm3": "h200",
    "h200": "h200",
    "a100sxm480gb": "a100-80g-sxm",
    "a100": "a100-80g-sxm",
    "a10080gb": "a100-80g-sxm",
    "l40s": "l40s",
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


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


# ---- reading ----------------------------------------------------------------------------------------
def read_measurements(path: str | Path) -> pd.DataFrame:
    """A measurement CSV, checked: all columns known, the required ones present, and every row of a
    supported metric has a positive numeric value and the lengths its query needs."""
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
        if row.metric not in NEEDS:
            continue
        for col in ("value", *NEEDS[row.metric], "tp", "num_gpus", "batch_size", "pp"):
            text = getattr(row, col)
            if text == "" and col not in ("value", *NEEDS[row.metric]):
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
def resolve_model(name: str, precision: str, models_dir: Path | None) -> ModelArch | None:
    """The architecture for a published model name at a published precision, or None if unknown."""
    alias = MODEL_ALIASES.get(_key(name))
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
    dtype = "fp8" if "fp8" in precision.lower() else "bf16"
    return arch.with_dtypes(dtype, dtype)


def gpu_preset(name: str) -> str | None:
    """The hardware preset a published GPU name stands for, or None if there is none."""
    return GPU_ALIASES.get(_key(name))


def resolve_gpu(name: str, overrides: dict[str, Accelerator]) -> Accelerator | None:
    """The accelerator for a published GPU name; `overrides` (preset name -> accelerator, e.g. a
    calibrated file) replaces presets. None if unknown."""
    preset = gpu_preset(name)
    if preset is None:
        return None
    return overrides.get(preset) or load_hardware(preset)


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


def predict_row(row, model: ModelArch, hw: Accelerator, engine: bool) -> Prediction:
    """The prediction for one measurement row, in the row's own unit."""
    tp = int(float(row.tp or 1))
    par = Parallelism(tp, int(float(row.pp or 1)))
    cost = RooflineCost(model, hw, par)
    isl = int(float(row.input_len))
    osl = int(float(row.output_len or 1))
    batch = int(float(row.batch_size or 1))
    scale = UNIT_SCALE.get(row.unit.strip().lower(), 1.0)
    if row.metric == "ttft":
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


def skip_reason(row, model, hw, engine: bool) -> str:
    """Why a measurement row cannot be predicted (empty if it can, short of a configuration the cost
    model rejects): unsupported metric, unknown model or GPU, prompt + output past the model's context,
    an offline row without the engine."""
    if row.metric not in NEEDS:
        return f"unsupported metric {row.metric!r}"
    if model is None:
        return f"unknown model {row.model!r}"
    if hw is None:
        return f"unknown GPU {row.gpu!r}"
    tokens = pd.to_numeric(pd.Series([row.input_len, row.output_len]), errors="coerce").sum()
    limit = model.context_limit_tokens
    if limit is not None and tokens > limit:
        return f"context_limit: {tokens:,.0f} tokens exceed {model.name}'s context limit of {limit:,}"
    if row.metric == "output_token_throughput":
        if not engine:
            return "needs engine"
        if (int(float(row.input_len)), int(float(row.output_len))) not in OFFLINE_REQUESTS:
            return "request count of this offline benchmark unknown"
    return ""


def validate(
    df: pd.DataFrame,
    models_dir: Path | None = None,
    hardware: dict[str, Accelerator] | None = None,
    engine: bool = True,
) -> pd.DataFrame:
    """One row per measurement: row_id, case, metric, group, regime, measured, predicted, error_pct
    ((predicted - measured) / measured x 100), flags, skipped_reason. `engine=False` skips the rows
    that need a simulation (offline throughput)."""
    out = []
    for row in df.itertuples(index=False):
        precision = row.precision or "bf16"
        model = resolve_model(row.model, precision, models_dir) if row.metric in NEEDS else None
        hw = resolve_gpu(row.gpu, hardware or {}) if row.metric in NEEDS else None
        case = (
            f"{row.model} {precision} {row.gpu} tp{row.tp or 1} {row.input_len}/{row.output_len}"
            f"{' b' + row.batch_size if row.batch_size else ''}"
        )
        rec = {
            "row_id": row.row_id,
            "case": case,
            "metric": row.metric,
            "group": METRIC_GROUP.get(row.metric, ""),
            "regime": "",
            "unit": row.unit,
            "measured": pd.to_numeric(row.value, errors="coerce"),
            "predicted": math.nan,
            "error_pct": math.nan,
            "flags": "",
            "skipped_reason": "",
        }
        reason = skip_reason(row, model, hw, engine)
        if not reason:
            try:
                pred = predict_row(row, model, hw, engine)
            except ConfigError as exc:
                reason = f"cannot run: {exc}"
            else:
                rec.update(
                    predicted=pred.value,
                    regime=pred.regime,
                    flags="; ".join(pred.flags),
                    error_pct=(pred.value - rec["measured"]) / rec["measured"] * 100,
                )
        rec["skipped_reason"] = reason
        out.append(rec)
    return pd.DataFrame(out)


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
