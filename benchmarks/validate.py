"""Reproduce ctxsim's accuracy report: calibrate, validate before and after, write docs/validation.md.

    python benchmarks/validate.py --validation ../shared/validation

1. Calibrate three devices from measured kernels only (never from the end-to-end rows scored below):
   H100 SXM and A100 SXM from aiconfigurator's published kernel measurements (TensorRT-LLM GEMMs,
   attention, NCCL all-reduce), H200 from ctxsim's own profile (benchmarks/data/profile-h200-*.csv).
   Writes benchmarks/data/<preset>-calibrated.yaml.
2. Kernel level, held out: fit on two thirds of the kernel shapes, score the other third; fit on the
   Llama-3.1-8B profile, score the 70B profile (kernels and whole steps); fit on H100 kernels and
   score the H200 profile (a what-if transfer to other peaks).
3. End to end: every published measurement (TensorRT-LLM v0.9 static batch and TTFT, v0.17 offline
   throughput through the engine, splitwise-sim prefill and per-token times) with the catalog presets,
   then with the calibrated files.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hardware import load_hardware  # noqa: E402
from hardware.spec import Accelerator  # noqa: E402
from sim import calibrate as cal  # noqa: E402
from sim import validate as val  # noqa: E402

DATA = ROOT / "benchmarks" / "data"
MODELS = ROOT / "tests" / "data" / "validation" / "models"
PROFILES = (DATA / "profile-h200-llama-3.1-8b.csv", DATA / "profile-h200-llama-3.1-70b.csv")


def md_table(df: pd.DataFrame, floatfmt: str = ".3g") -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        cells = []
        for v in row:
            if isinstance(v, float):
                cells.append("" if pd.isna(v) else format(v, floatfmt))
            else:
                cells.append(str(v).replace("|", "/"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_calibrated(hw: Accelerator, sources: str) -> Path:
    path = DATA / f"{hw.name}-calibrated.yaml"
    header = (
        f"# {hw.name} calibrated by benchmarks/validate.py from {sources}.\n"
        "# Efficiencies are fractions of this file's peaks; curves are keyed by work per kernel call.\n"
    )
    path.write_text(
        header + yaml.safe_dump(cal.to_yaml_dict(hw), sort_keys=False, width=110, allow_unicode=True)
    )
    return path


def kernel_report(
    name: str, fit_rows: pd.DataFrame, scored: pd.DataFrame, fitted: Accelerator
) -> pd.DataFrame:
    fit_err = cal.error_summary(cal.kernel_errors(fit_rows, fitted)).assign(part="fitted (in-sample)")
    held_err = cal.error_summary(cal.kernel_errors(scored, fitted)).assign(part="held out")
    return pd.concat([fit_err, held_err]).assign(study=name)[
        ["study", "part", "op", "count", "median_abs_error_pct", "p90_abs_error_pct"]
    ]


def calibrate_all(validation: Path) -> tuple[dict[str, Accelerator], pd.DataFrame, pd.DataFrame]:
    """(calibrated accelerators by preset name, kernel-level held-out report, H200 profile rows)."""
    aic = validation / "aiconfigurator" / "data"
    studies, calibrated = [], {}
    for preset, system in (("h100-sxm", "h100_sxm"), ("a100-80g-sxm", "a100_sxm")):
        table = cal.aiconfigurator_kernels(aic / system)
        hw = load_hardware(preset)
        fit_rows, held = cal.split_by_shape(table)
        studies.append(
            kernel_report(
                f"{preset}: aiconfigurator kernels, 2/3 of shapes -> 1/3",
                fit_rows,
                held,
                cal.fit(fit_rows, hw, (f"aiconfigurator {system}",)),
            )
        )
        calibrated[preset] = cal.fit(table, hw, (f"aiconfigurator {system} (TensorRT-LLM kernels, NCCL)",))
    small, large = (cal.read_kernels(p) for p in PROFILES)
    h200 = load_hardware("h200")
    studies.append(
        kernel_report(
            "h200: Llama-3.1-8B profile -> 70B profile",
            small,
            large,
            cal.fit(small, h200, (PROFILES[0].name,)),
        )
    )
    transferred = h200.model_copy(update={"efficiency": calibrated["h100-sxm"].efficiency})
    both = pd.concat([small, large], ignore_index=True)
    studies.append(
        kernel_report(
            "h100 curves on h200 peaks (transfer) -> h200 profile", both.iloc[:0], both, transferred
        )
    )
    kernels = both[~both["op"].isin(cal.STEP_OPS)]
    calibrated["h200"] = cal.fit(kernels, h200, tuple(p.name for p in PROFILES))
    profile_rows = cal.kernel_errors(both, calibrated["h200"]).assign(
        predicted_uncalibrated_s=cal.kernel_errors(both, h200)["predicted_s"]
    )
    return calibrated, pd.concat(studies, ignore_index=True), profile_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--validation", type=Path, default=ROOT.parent / "shared" / "validation")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "validation.md")
    ap.add_argument("--no-engine", action="store_true", help="skip the offline rows (they run the engine)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    calibrated, kernel_study, profile_rows = calibrate_all(args.validation)
    paths = {
        name: write_calibrated(hw, ", ".join(hw.efficiency.calibration.data))
        for name, hw in calibrated.items()
    }
    print(
        f"calibrated {', '.join(map(str, paths.values()))} in {time.perf_counter() - t0:.0f} s",
        file=sys.stderr,
    )

    rows = pd.concat(
        [
            val.read_measurements(args.validation / "published_measurements.csv"),
            val.splitwise_measurements(args.validation / "splitwise-sim" / "perf_model.csv"),
        ],
        ignore_index=True,
    )
    engine = not args.no_engine
    before = val.validate(rows, MODELS, {}, engine)
    print(f"validated before calibration in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    after = val.validate(rows, MODELS, calibrated, engine)
    print(f"validated after calibration in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    h200_rows = rows[rows["gpu"].map(val.gpu_preset) == "h200"]
    h200 = load_hardware("h200")
    transfer = val.validate(
        h200_rows,
        MODELS,
        {"h200": h200.model_copy(update={"efficiency": calibrated["h100-sxm"].efficiency})},
        engine,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(before, after, transfer, kernel_study, profile_rows, rows))
    print(f"wrote {args.out}", file=sys.stderr)


def _summary(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    b, a = val.summarize(before), val.summarize(after)
    merged = b.merge(a, on=["group", "regime"], suffixes=(" before", " after"))
    return merged[
        [
            "group",
            "regime",
            "count before",
            "median_abs_error_pct before",
            "p90_abs_error_pct before",
            "median_abs_error_pct after",
            "p90_abs_error_pct after",
            "median_signed_error_pct after",
        ]
    ]


def _by(results: pd.DataFrame, rows: pd.DataFrame, key: str) -> pd.DataFrame:
    scored = results[results["skipped_reason"] == ""].merge(rows[["row_id", key]], on="row_id")
    scored = scored.assign(abs_err=scored["error_pct"].abs())
    return (
        scored.groupby([key, "group"])["abs_err"]
        .agg(count="count", median_abs_error_pct="median", p90_abs_error_pct=lambda s: s.quantile(0.9))
        .reset_index()
    )


def render(before, after, transfer, kernel_study, profile_rows, rows) -> str:
    per_row = before[
        ["row_id", "case", "metric", "regime", "unit", "measured", "predicted", "error_pct"]
    ].rename(columns={"predicted": "predicted before", "error_pct": "error % before"})
    per_row = per_row.assign(
        **{
            "predicted after": after["predicted"],
            "error % after": after["error_pct"],
            "flags after": after["flags"],
            "skipped": after["skipped_reason"],
        }
    )
    scored_rows = per_row[per_row["skipped"] == ""].drop(columns="skipped")
    skipped = after[after["skipped_reason"] != ""].groupby("skipped_reason").size().reset_index(name="rows")
    source_after = _by(after, rows, "source_id")
    gpu_after = _by(after, rows, "gpu")
    model_after = _by(after, rows, "model")
    model_after = model_after[model_after["group"] == "throughput"]
    prof = profile_rows.assign(
        model=profile_rows["model"].where(profile_rows["model"] == "", "(see shapes)"),
        shape=profile_rows.apply(_shape, axis=1),
    )
    prof = prof[
        ["op", "dtype", "shape", "time_s", "predicted_uncalibrated_s", "predicted_s", "error_pct"]
    ].rename(
        columns={
            "time_s": "measured s",
            "predicted_uncalibrated_s": "predicted s (preset)",
            "predicted_s": "predicted s (calibrated)",
            "error_pct": "error % (calibrated)",
        }
    )
    h200_ids = set(transfer["row_id"])
    h200_variants = pd.concat(
        [
            val.summarize(before[before["row_id"].isin(h200_ids)]).assign(calibration="none (preset)"),
            val.summarize(after[after["row_id"].isin(h200_ids)]).assign(
                calibration="H200 profile (PyTorch kernels)"
            ),
            val.summarize(transfer).assign(calibration="H100 TensorRT-LLM kernels, transferred"),
        ]
    )[
        [
            "calibration",
            "group",
            "regime",
            "count",
            "median_abs_error_pct",
            "p90_abs_error_pct",
            "median_signed_error_pct",
        ]
    ]
    return TEMPLATE.format(
        summary=md_table(_summary(before, after)),
        h200=md_table(h200_variants),
        by_source=md_table(source_after),
        by_gpu=md_table(gpu_after),
        by_model=md_table(model_after),
        kernels=md_table(kernel_study),
        profile=md_table(prof),
        skipped=md_table(skipped),
        rows=md_table(scored_rows),
        scored=len(scored_rows),
        total=len(per_row),
    )


def _shape(r) -> str:
    if r["op"] == "gemm":
        return f"m={r['m']:.0f} n={r['n']:.0f} k={r['k']:.0f}"
    if r["op"] == "memcpy":
        return f"{r['bytes']:.3g} B"
    model = (
        cal.step_model(r["model"]).name
        if r["op"] in cal.STEP_OPS
        else f"h={r['heads']:.0f}/{r['kv_heads']:.0f}"
    )
    length = f"s={r['seq_len']:.0f}" if pd.notna(r["seq_len"]) else f"kv={r['kv_len']:.0f}"
    return f"{model} b={r['batch']:.0f} {length}"


TEMPLATE = """# How accurate is ctxsim?

Every number below is regenerated by `python benchmarks/validate.py --validation <shared>/validation`
(it also writes the calibrated hardware files `benchmarks/data/*-calibrated.yaml`). Errors are
(predicted - measured) / measured; "abs" is its absolute value. A positive throughput error or a
negative latency error means ctxsim is optimistic.

## What is compared

- TensorRT-LLM v0.9 static batching (`output_throughput_per_gpu`, explicit batch) and batch-1 TTFT:
  one prefill step plus a decode span from the cost model.
- TensorRT-LLM v0.17 offline throughput (`output_token_throughput`): the engine (`sim.api.run`) serves the
  benchmark's request count (30000 for 128/128 ... 1000 for 20000/2000), all at t=0, with fixed lengths,
  max 4096 sequences and 8192 tokens per step, KV pool = 95% of the memory left after the weights.
- splitwise-sim's measured prefill time of a batch (`ttft`) and per-token decode time (`tpot`) for
  Llama-2-70B on A100 and H100 at TP 2/4/8.
- Rows of unknown models (BLOOM-176B), unknown GPUs (GH200, a power-capped H100), TP on L40S (its
  preset has no scale-up link) and non-performance facts are listed as skipped, not scored.
- FP8 rows use FP8 weights and FP8 KV cache, at the device's FP8 peak.

A row is **prefill-bound** when its predicted prefill time exceeds its decode time (for offline rows:
in a static batch of 64 as a yardstick), otherwise **decode-bound**.

## Calibrate your own GPU

```
pip install 'ctxsim[profile]'                                     # PyTorch, on the GPU machine
ctxsim profile --model llama-3.1-8b -o profile.csv                # ~20 s on an H200
ctxsim calibrate profile.csv --hardware h200 -o h200-calibrated.yaml --holdout
ctxsim validate measurements.csv --hardware h200-calibrated.yaml
```

A scenario uses the file as `hardware: h200-calibrated.yaml`.

`--holdout` fits on two thirds of the kernel shapes and prints the error on the third it never read;
without it the file is fitted on everything and only the in-sample error is printed. Whole-step rows
in the profile are never fitted: they are always scored. `ctxsim calibrate` also reads aiconfigurator's
kernel folders (`.../aiconfigurator/data/h100_sxm`) directly.

## Calibration, and why it is honest

`ctxsim calibrate` only reads measured kernels: aiconfigurator's published TensorRT-LLM GEMM, attention
and NCCL measurements for H100 SXM and A100 SXM, and ctxsim's own PyTorch profile of an H200 (below).
It never reads the end-to-end rows it is scored on. Efficiencies are fractions of peak against the work
per kernel call (`hardware.spec.Curve`), so they transfer to a what-if device with other peaks; queries
outside a curve's measured range are flagged `extrapolated`, and a curve used on a device with other
peaks is flagged `transferred`. L40S has no kernel data: its "after" numbers are the preset's.

## End-to-end summary (before = catalog presets, after = calibrated H100/A100/H200)

{summary}

H200 rows under each calibration (the "after" above uses the H200 profile):

{h200}

By source, after calibration:

{by_source}

By GPU, after calibration:

{by_gpu}

Throughput by model, after calibration:

{by_model}

### Findings

Targets were a median of 10% on decode-bound throughput and per-token latency and 15% on prefill-bound
cases after calibration. The tables show where they are met and where they are not; where they are not,
that is a finding about the model, not a number to tune away.

- Calibration from kernels roughly halves the error everywhere it has data, and the H100 TensorRT-LLM
  kernel curves carried over to H200 peaks predict the H200 rows better than curves fitted on the
  H200's own PyTorch kernels: efficiencies belong to the kernels a framework runs, so calibrate with
  the serving framework's kernels where they exist.
- Dense models in the offline (engine) rows land close; mixture-of-experts rows (Mixtral) are the most
  optimistic. The cost model reads each touched expert's weights once per step and runs expert GEMMs
  at the curve of an equally large dense GEMM; real grouped expert GEMMs with few tokens per expert, and
  routing, are slower.
- Latency rows are pessimistic for ctxsim in the other direction: 128-token TTFT in the v0.9 session
  benchmark and splitwise-sim's per-token times are 25-60% slower than their kernels add up to. Kernel
  benchmarks run calls back to back and cannot see per-step framework time (scheduling, sampling,
  launch gaps, no CUDA graphs).
- TensorRT-LLM v0.9 measured Mistral 7B (GQA, 8 KV heads) no faster than Llama-2-7B (32 KV heads) in
  large static batches, where the roofline expects GQA's 4x smaller KV reads to help; those rows are
  among the largest errors.
- Kernel-level curves have a limit too: one curve per leg against work per call cannot tell decode
  attention with 1 KV head per 96 query heads from 8 per 32 at the same bytes (30-45% median error on
  aiconfigurator's decode attention, held out or not).

## Kernel level: fitted on one part, scored on another

{kernels}

## Measured on an H200 with `ctxsim profile`

An NVIDIA H200 (141 GB HBM3e, 700 W, PyTorch 2.11, CUDA 13.0) ran `python sim/profile.py` for
Llama-3.1-8B and Llama-3.1-70B shapes (bf16 and fp8 GEMMs at 1..16384 tokens, SDPA prefill up to 65536
tokens and decode up to 131072 cached tokens, device copies up to 4 GiB, and whole prefill/decode steps of
an 8-layer decoder with random weights), kernels timed as CUDA-graph replays
(`benchmarks/data/profile-h200-*.csv`). Large copies captured in a graph ran as copy-engine transfers at
about 2.7 TB/s; the eager run of the same copies (`profile-h200-llama-3.1-8b-eager.csv`) reached 4.3 TB/s.
The steps are PyTorch eager-style decoders (unfused RMSNorm, SwiGLU, KV writes), not a serving engine.
The calibrated column uses `benchmarks/data/h200-calibrated.yaml`, fitted on these kernels (so kernel
rows are in-sample); whole steps are never fitted. The held-out view is the 8B -> 70B study above.

{profile}

## Skipped rows

{skipped}

## Every scored row ({scored} of {total})

{rows}
"""


if __name__ == "__main__":
    main()
