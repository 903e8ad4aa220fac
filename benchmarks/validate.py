"""Reproduce ctxsim's accuracy report: calibrate, validate before and after, write docs/validation.md.

    python benchmarks/validate.py --validation ../shared/validation [--jobs 2]

1. Calibrate three devices from measured kernels only (never from the end-to-end rows scored below):
   H100 SXM and A100 SXM from aiconfigurator's published kernel measurements (TensorRT-LLM GEMMs,
   attention, NCCL all-reduce), H200 from ctxsim's own profile (benchmarks/data/profile-h200-*.csv)
   and apex_plus's NCCL all-reduce measurements on 2, 4 and 8 H200s.
   Writes benchmarks/data/<preset>-calibrated.yaml.
2. Kernel level, held out: fit on two thirds of the kernel shapes, score the other third; fit on the
   Llama-3.1-8B profile, score the 70B profile (kernels and whole steps), on the H200 and on an
   H100; fit on H100 kernels and score the H200 profile (a what-if transfer to other peaks) and the
   H100 profile (the same GPU under another framework).
3. End to end: every published measurement (TensorRT-LLM v0.9 static batch and TTFT, v0.17 offline
   throughput through the engine, splitwise-sim prefill and per-token times) with the catalog presets,
   then with the calibrated files.
4. Stack calibration, held out: per software stack (source_id) and GPU, fit the framework knobs
   (sim.overheads: step overhead, tree all-reduce hop latency, grouped expert GEMM fraction, achieved
   all-reduce bandwidth fraction) on half of the workload shapes and score only the other half, then
   swap the halves (two-fold cross-validation), against the datasheet roofline too.
5. Serving under load: the public serving measurements (benchmarks/data/public) simulated as each
   benchmark ran, with the catalog presets.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from validation_report import render  # noqa: E402

from hardware import load_hardware  # noqa: E402
from hardware.spec import Accelerator  # noqa: E402
from sim.cost.parallelism import Parallelism  # noqa: E402
from sim.cost.roofline import RooflineCost  # noqa: E402
from sim.fidelity import calibrate as cal  # noqa: E402
from sim.fidelity import kernels as kernel_tables  # noqa: E402
from sim.fidelity import overheads as ovh  # noqa: E402
from sim.fidelity import validate as val  # noqa: E402

DATA = ROOT / "benchmarks" / "data"
MODELS = ROOT / "tests" / "data" / "validation" / "models"
PROFILES = (DATA / "profile-h200-llama-3.1-8b.csv", DATA / "profile-h200-llama-3.1-70b.csv")
H200_NCCL = Path("apex_plus-comm/profile/comm/H200-SXM-141GB/all_reduce.csv")
H100_NCCL = Path("apex_plus-comm/profile/comm/H100-SXM-80GB/all_reduce.csv")
SERVING = DATA / "public" / "serving_measurements.csv"
H100_PROFILES = (DATA / "profile-h100-llama-3.1-8b.csv", DATA / "profile-h100-llama-3.1-70b.csv")


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


def aiconfigurator_studies(aic: Path) -> tuple[list[pd.DataFrame], dict[str, Accelerator]]:
    """H100 and A100 fitted on aiconfigurator's kernels: the held-out-shape study of each, and each
    preset calibrated on all of them."""
    studies, calibrated = [], {}
    for preset, system in (("h100-sxm", "h100_sxm"), ("a100-80g-sxm", "a100_sxm")):
        table = kernel_tables.aiconfigurator_kernels(aic / system)
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
    return studies, calibrated


def h200_studies(
    validation: Path, h100: Accelerator
) -> tuple[list[pd.DataFrame], Accelerator, pd.DataFrame]:
    """The H200 studies (8B profile -> 70B, `h100`'s curves transferred, NCCL sizes held out, and the
    aiconfigurator H100 link curve against apex_plus's H100 all-reduces), the H200 calibrated on its
    profiles and NCCL table, and its profile rows."""
    small, large = (kernel_tables.read_kernels(p) for p in PROFILES)
    h200 = load_hardware("h200")
    studies = [
        kernel_report(
            "h200: Llama-3.1-8B profile -> 70B profile",
            small,
            large,
            cal.fit(small, h200, (PROFILES[0].name,)),
        )
    ]
    transferred = h200.model_copy(update={"efficiency": h100.efficiency})
    both = pd.concat([small, large], ignore_index=True)
    studies.append(
        kernel_report(
            "h100 curves on h200 peaks (transfer) -> h200 profile", both.iloc[:0], both, transferred
        )
    )
    kernels = both[~both["op"].isin(kernel_tables.STEP_OPS)]
    nccl = kernel_tables.nccl_allreduce_kernels(validation / H200_NCCL)
    nccl_fit, nccl_held = cal.split_by_shape(nccl)
    studies.append(
        kernel_report(
            "h200: apex_plus NCCL all-reduce, 2/3 of sizes -> 1/3",
            nccl_fit,
            nccl_held,
            cal.fit(nccl_fit, h200, (H200_NCCL.name,)),
        )
    )
    studies.append(
        kernel_report(
            "h100-sxm: aiconfigurator NCCL curve -> apex_plus H100 all-reduce (same GPU, other benchmark)",
            nccl.iloc[:0],
            kernel_tables.nccl_allreduce_kernels(validation / H100_NCCL),
            h100,
        )
    )
    calibrated = cal.fit(
        pd.concat([kernels, nccl], ignore_index=True),
        h200,
        (*(p.name for p in PROFILES), f"apex_plus {H200_NCCL.parent.name} NCCL all-reduce"),
    )
    return studies, calibrated, both


def h100_profile_studies(h100: Accelerator) -> list[pd.DataFrame]:
    """The H100 PyTorch profiles: 8B -> 70B, and `h100`'s aiconfigurator curves scored on them."""
    h100_small, h100_large = (kernel_tables.read_kernels(p) for p in H100_PROFILES)
    h100_both = pd.concat([h100_small, h100_large], ignore_index=True)
    return [
        kernel_report(
            "h100-sxm: Llama-3.1-8B profile -> 70B profile",
            h100_small,
            h100_large,
            cal.fit(h100_small, load_hardware("h100-sxm"), (H100_PROFILES[0].name,)),
        ),
        kernel_report(
            "h100-sxm: aiconfigurator kernels -> H100 PyTorch profile (same GPU, other framework)",
            h100_both.iloc[:0],
            h100_both,
            h100,
        ),
    ]


def calibrate_all(validation: Path) -> tuple[dict[str, Accelerator], pd.DataFrame, pd.DataFrame]:
    """(calibrated accelerators by preset name, kernel-level held-out report, H200 profile rows)."""
    studies, calibrated = aiconfigurator_studies(validation / "aiconfigurator" / "data")
    h200, calibrated["h200"], both = h200_studies(validation, calibrated["h100-sxm"])
    studies += h200 + h100_profile_studies(calibrated["h100-sxm"])
    profile_rows = cal.kernel_errors(both, calibrated["h200"]).assign(
        predicted_uncalibrated_s=cal.kernel_errors(both, load_hardware("h200"))["predicted_s"]
    )
    return calibrated, pd.concat(studies, ignore_index=True), profile_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--validation", type=Path, default=ROOT.parent / "shared" / "validation")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "validation.md")
    ap.add_argument("--no-engine", action="store_true", help="skip the offline rows (they run the engine)")
    ap.add_argument("--jobs", type=int, default=1, help="processes simulating the serving benchmarks' runs")
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
    stack = calibrate_stacks(rows, calibrated, engine)
    print(f"stack-calibrated and scored held-out rows in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    with ProcessPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
        load = serving_under_load(engine, pool.map)
    print(f"scored serving benchmarks in {load['seconds']:.0f} s", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(before, after, transfer, kernel_study, profile_rows, rows, stack, load))
    print(f"wrote {args.out} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


def serving_under_load(engine: bool, pool_map=map) -> dict:
    """The public serving measurements (MLPerf Server, SGLang / vLLM online runs, long-context
    prefills, TPU and AMD rows) predicted with the catalog presets, nothing fitted: the table, its
    results and the seconds that took (its runs simulated through `pool_map`, an executor's `map`)."""
    start = time.perf_counter()
    table = val.read_measurements(SERVING)
    results = val.validate(table, MODELS, {}, engine, pool_map=pool_map)
    return {"rows": table, "results": results, "seconds": time.perf_counter() - start}


def calibrate_stacks(rows: pd.DataFrame, calibrated: dict[str, Accelerator], engine: bool) -> dict:
    """Two-fold stack calibration on top of the kernel-calibrated GPUs. Fold 1 fits each stack's knobs
    on the even-numbered workload shapes and scores the odd ones (`ovh.split_by_workload`); fold 2
    swaps the halves. Every row is scored once, by the fold that did not read it, and the scored half
    of each fold also at the datasheet roofline."""
    even, odd = ovh.split_by_workload(rows)
    presets = sorted({p for p in rows["gpu"].map(val.gpu_preset) if isinstance(p, str)})
    roofline = {p: ovh.roofline_device(val.load_device(p)) for p in presets}
    knobs = ovh.fit_stacks(even, MODELS, calibrated, engine)
    swapped = ovh.fit_stacks(odd, MODELS, calibrated, engine)
    return {
        "knobs": knobs,
        "prefill_residuals": prefill_residuals(even, knobs, calibrated),
        "fit": ovh.validate_stacks(even, knobs, MODELS, calibrated, engine),
        "held": ovh.validate_stacks(odd, knobs, MODELS, calibrated, engine),
        "roofline": val.validate(odd, MODELS, roofline, engine),
        "swapped_knobs": swapped,
        "swapped_held": ovh.validate_stacks(even, swapped, MODELS, calibrated, engine),
        "swapped_roofline": val.validate(even, MODELS, roofline, engine),
    }


def prefill_residuals(
    fit_rows: pd.DataFrame, knobs: dict, calibrated: dict[str, Accelerator], min_tokens: int = 8192
) -> pd.DataFrame:
    """What a stack knob for large prefills has to explain, read off fit rows only: for splitwise-sim's
    TTFT fit rows of at least `min_tokens` tokens (not left out of its fit), by GPU and TP, the
    measured time per prompt token left over after the kernel-calibrated prediction, next to the
    predicted compute-bound and all-reduce bandwidth time per token. A prefill compute efficiency
    would leave a residual in proportion to the compute column, an all-reduce bandwidth fraction in
    proportion to the bandwidth column."""
    out = []
    for r in fit_rows[(fit_rows["source_id"] == "SPLITWISE-SIM") & (fit_rows["metric"] == "ttft")].itertuples(
        index=False
    ):
        preset = val.gpu_preset(r.gpu)
        fit = knobs.get(("SPLITWISE-SIM", preset))
        tokens = int(float(r.batch_size or 1)) * int(float(r.input_len))
        if (
            preset not in calibrated
            or fit is None
            or r.row_id in fit.faster_than_roofline
            or tokens < min_tokens
        ):
            continue
        model = val.resolve_model(r.model, r.precision or "bf16", MODELS)
        if model is None:
            continue
        batch, isl, tp = int(float(r.batch_size or 1)), int(float(r.input_len)), int(float(r.tp))
        device = ovh.with_overheads(calibrated[preset], ovh.Overheads(hop_latency_s=0.0))
        step = RooflineCost(model, device, Parallelism(tp)).step(
            np.full(batch, isl), np.zeros(batch, np.int64), batch
        )
        measured_s = float(r.value) * val.UNIT_SCALE[str(r.unit).strip().lower()]
        out.append(
            {
                "GPU": preset,
                "TP": tp,
                "residual": (measured_s - step.total_s) / tokens * 1e6,
                "compute": step.compute_bound_s / tokens * 1e6,
                "bandwidth": step.link_s / tokens * 1e6,
            }
        )
    table = pd.DataFrame(out).groupby(["GPU", "TP"])
    return (
        table.median()
        .join(table.size().rename("fit rows"))
        .reset_index()[["GPU", "TP", "fit rows", "residual", "compute", "bandwidth"]]
        .rename(
            columns={
                "residual": "measured - predicted us/token",
                "compute": "predicted compute us/token",
                "bandwidth": "predicted all-reduce bandwidth us/token",
            }
        )
    )


if __name__ == "__main__":
    main()
