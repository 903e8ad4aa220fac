"""Fit the shipped serving-stack profiles on public data, score them on rows no fit read, write them.

    python benchmarks/stacks.py --validation ../shared/validation [--jobs 2]

1. Curves per stack from published kernel timings on an H100 SXM (aiconfigurator's TensorRT-LLM and
   vLLM kernel tables, NCCL all-reduce): trtllm from TensorRT-LLM's; vllm, sglang and typical from
   vLLM's (SGLang publishes no kernel table; it runs the same cuBLAS GEMMs and FlashInfer-class
   attention kernels). The same for the B200 and GB200 on their own tables (`device_curves`).
2. Knobs per stack, every GPU pooled (`sim.fidelity.stacks`), on two folds of the end-to-end rows it
   owns: the TensorRT-LLM v0.9/v0.17 tables, splitwise-sim and the public serving benchmarks
   (benchmarks/data/public/serving_measurements.csv). Fold 1's knobs ship; its held-out rows
   measure error and give the 80% bands, whose coverage is measured run by run (each run against
   the band read from the others).
3. Writes hardware/stacks/<stack>.yaml (fitted fields only; the hand-written ones are kept) and
   docs/stacks.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import get_args

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from validation_report import md_table  # noqa: E402

from hardware import load_hardware  # noqa: E402
from hardware.stacks import STACK_DIR, Band, FittedOn, Metric, StackProfile, load_stack, parts_of  # noqa: E402
from sim.fidelity import calibrate as cal  # noqa: E402
from sim.fidelity import kernels as kernel_tables  # noqa: E402
from sim.fidelity import stacks as st  # noqa: E402
from sim.fidelity import validate as val  # noqa: E402

MODELS = ROOT / "tests" / "data" / "validation" / "models"
SERVING = ROOT / "benchmarks" / "data" / "public" / "serving_measurements.csv"
KERNELS = {"trtllm": "trtllm", "vllm": "vllm", "sglang": "vllm", "typical": "vllm"}
# Presets with kernel tables of their own (benchmarks/data/public/aiconfigurator/SOURCE.md), by the
# aiconfigurator system folder that holds them.
DEVICE_KERNELS = ROOT / "benchmarks" / "data" / "public" / "aiconfigurator"
DEVICE_SYSTEMS = {"b200": "b200_sxm", "gb200": "gb200"}
PROFILES = ("typical", "vllm", "sglang", "trtllm")
# Sources write "128K" for 128,000 tokens (MInference, TriangleMix, the Context Parallelism paper's
# Table 4) and "1M" for 1,000,000, so the long-context tally starts at 128,000.
LONG_CONTEXT_TOKENS = 128_000
# Targets of the issue this report answers: median absolute error (%) on held-out serving rows.
TARGETS = {"typical": {"tpot": 15.0, "throughput": 15.0, "ttft": 25.0}}
TARGETS.update({s: {"tpot": 10.0, "throughput": 10.0, "ttft": 15.0} for s in st.STACKS})


def read_rows(validation: Path) -> pd.DataFrame:
    """Every end-to-end row; the serving file's row ids get an `s` so they stay apart from the
    published table's."""
    serving_rows = val.read_measurements(SERVING)
    return pd.concat(
        [
            val.read_measurements(validation / "published_measurements.csv"),
            val.splitwise_measurements(validation / "splitwise-sim" / "perf_model.csv"),
            serving_rows.assign(row_id="s" + serving_rows["row_id"]),
        ],
        ignore_index=True,
    )


def _calibrated(system_dir: Path, preset: str, framework: str):
    table = kernel_tables.aiconfigurator_kernels(system_dir, framework)
    source = (f"aiconfigurator {system_dir.name} {framework}",)
    return cal.fit(table, load_hardware(preset), source).efficiency


def curves(validation: Path) -> dict[str, StackProfile]:
    """Each stack's curves: a kernel calibration of the H100 SXM preset on its kernel table, and of
    each preset in `DEVICE_KERNELS` on its own (the profile's `device_curves`)."""
    fitted, devices = {}, {}
    for framework in sorted(set(KERNELS.values())):
        h100 = validation / "aiconfigurator" / "data" / "h100_sxm"
        fitted[framework] = _calibrated(h100, "h100-sxm", framework)
        devices[framework] = {
            preset: _calibrated(DEVICE_KERNELS / system, preset, framework)
            for preset, system in DEVICE_SYSTEMS.items()
        }
    return {s: st.with_curves(fitted[k], s, devices[k]) for s, k in KERNELS.items()}


def run_stack(stack: str, rows: pd.DataFrame, base: StackProfile, offline: bool, pool_map=map) -> dict:
    """Both folds of one stack: knobs, held-out results (as `st.ratios`), the shipped profile; its
    serving runs simulated through `pool_map` (an executor's `map`)."""
    own = st.rows_of(rows, stack)
    if not offline:
        own = own[own["metric"] != "output_token_throughput"]
    out = {}
    for number in (1, 2):
        fit_rows, held_rows = st.fold(own, number)
        print(f"{stack} fold {number}: fitting, {len(fit_rows)} rows in its half", file=sys.stderr)
        fit = st.fit_knobs(fit_rows, base, MODELS, pool_map)
        profile = st.with_knobs(base, fit.knobs)
        held = st.ratios(st.predict(held_rows, profile, MODELS, pool_map=pool_map), rows)
        out[number] = {"fit": fit, "profile": profile, "held": held}
        out[number].update(held_rows=held_rows, fit_rows=fit_rows)
        print(f"{stack} fold {number}: {len(fit.fitted_ids)} fit rows, {len(held)} scored", file=sys.stderr)
    one = out[1]
    presets = st.ratios(st.predict(one["held_rows"], None, MODELS, pool_map=pool_map), rows)
    roofline = st.predict(one["held_rows"], load_stack("roofline"), MODELS, pool_map=pool_map)
    held = out[1]["held"]
    pool = None
    if {b.metric for b in st.own_bands(held)} != set(get_args(Metric)):
        # too few held-out rows of its own for some metric: its bands there come from every stack's,
        # less those its own fit read (a source's runs alternate between halves over all its rows)
        everyone = rows if offline else rows[rows["metric"] != "output_token_throughput"]
        pooled = st.fold(everyone, 1)[1]
        pooled = pooled[~pooled["row_id"].isin(one["fit_rows"]["row_id"])]
        pool = st.ratios(st.predict(pooled, one["profile"], MODELS, pool_map=pool_map), rows)
    covered = st.covered_leaving_out_runs(held, rows, one["profile"], pool)
    bands = st.bands(held, pool)
    return {**out, "presets": presets, "roofline": roofline, "bands": bands, "covered": covered}


def write_profile(stack: str, result: dict, sources: tuple[str, ...]) -> StackProfile:
    """hardware/stacks/<stack>.yaml with fold 1's knobs and bands and where they came from; the
    hand-written fields of the file are kept."""
    path = STACK_DIR / f"{stack}.yaml"
    data = yaml.safe_load(path.read_text())
    one = result[1]
    fitted = st.with_knobs(
        one["profile"],
        one["fit"].knobs,
        uncertainty=result["bands"],
        fitted_on=FittedOn(
            sources=sources,
            fit_rows=len(one["fit"].fitted_ids),
            scored_rows=len(one["held"]),
            split="sim.fidelity.stacks.held_out: fold 1 fits, the other half is scored; "
            "bands from the same held-out rows",
        ),
    )
    dumped = fitted.model_dump(mode="json", exclude_defaults=False)
    fields = ("efficiency", "device_curves", "other_vendors", "scale_up_latency_s", "scale_up_algorithm")
    fields = (*fields, "uncertainty")
    for key in (*fields, "fitted_on"):
        data[key] = dumped[key]
    data["efficiency"]["source"] = (
        f"curves: {KERNELS[stack]} kernels, aiconfigurator h100_sxm; knobs fitted by benchmarks/stacks.py"
    )
    header = (
        f"# Serving-stack profile '{stack}', written by benchmarks/stacks.py (fitted fields) over the\n"
        "# hand-written ones (description, kinds, supports, transfer, sources). See docs/stacks.md.\n"
    )
    path.write_text(header + yaml.safe_dump(data, sort_keys=False, width=110, allow_unicode=True))
    return StackProfile.model_validate(data)


def _cell(part: pd.DataFrame) -> str:
    if part.empty:
        return ""
    e = part["error_pct"].abs()
    return f"{e.median():.1f} / {e.quantile(0.9):.1f} ({len(part)})"


def _coverage(part: pd.DataFrame, covered: pd.Series) -> str:
    """The share of `part` (held-out rows) inside the band read without their run (`covered`)."""
    inside = covered.loc[part.index].dropna()
    return "" if inside.empty else f"{inside.mean():.0%} of {len(inside)}"


def headline(results: dict, profiles: dict, rows: pd.DataFrame) -> pd.DataFrame:
    """Held-out error per profile, metric group and regime (fold 1's held-out rows of the stack),
    next to the presets on the same rows, with the band's coverage."""
    out = []
    for stack in PROFILES:
        r = results[stack]
        held, presets = r[1]["held"], r["presets"].set_index("row_id")
        for (group, regime), part in held.groupby(["group", "regime"]):
            pre = presets.loc[presets.index.intersection(part["row_id"])].reset_index()
            out.append(
                {
                    "profile": stack,
                    "group": group,
                    "regime": regime,
                    "presets (stack: none)": _cell(pre),
                    "profile, held out": _cell(part),
                    "median signed %": f"{part['error_pct'].median():+.1f}",
                    "80% band": _band(profiles[stack], group, regime),
                    "band coverage": _coverage(part, r["covered"]),
                }
            )
    return pd.DataFrame(out)


def _band(profile: StackProfile, group: str, regime: str) -> str:
    b = profile.band(group, regime)
    return "" if b is None else _band_text(b, b.regime)


def _band_text(b: Band, *where: str) -> str:
    """A band's edges and what it was read from: "1.10-2.19 x (serving, 40 rows)", with "of every
    stack" for a band read from every stack's rows (`Band.rows_of`)."""
    whose = " of every stack" if b.rows_of == "every stack" else ""
    return f"{b.lo:.2f}-{b.hi:.2f} x ({', '.join((*where, f'{b.rows} rows{whose}'))})"


def serving_scores(results: dict) -> pd.DataFrame:
    """Held-out serving-benchmark rows only: the issue's targets, per profile and metric group."""
    out = []
    for stack in PROFILES:
        held = results[stack][1]["held"]
        held = held[held["regime"] == "serving"]
        for group, part in held.groupby("group"):
            target = TARGETS[stack].get(group)
            median = part["error_pct"].abs().median()
            out.append(
                {
                    "profile": stack,
                    "group": group,
                    "held-out rows": len(part),
                    "median / p90 abs error %": _cell(part),
                    "target (median)": f"<= {target:.0f}%" if target else "",
                    "met": ("met" if median <= target else "**missed**") if target else "",
                    "band coverage": _coverage(part, results[stack]["covered"]),
                }
            )
    return pd.DataFrame(out)


def serving_by_source(results: dict) -> pd.DataFrame:
    """The typical profile's held-out serving rows (fold 1) per source and metric group."""
    held = results["typical"][1]["held"]
    held = held[held["regime"] == "serving"]
    cells = held.groupby(["source_id", "group"])["error_pct"]
    return cells.apply(
        lambda e: f"{e.abs().median():.1f} / {e.median():+.1f} ({len(e)})"
    ).unstack("group", fill_value="").reset_index()


def both_folds(result: dict) -> pd.DataFrame:
    """Every row of a stack scored by the fold that did not fit on it."""
    return pd.concat([result[1]["held"], result[2]["held"]], ignore_index=True)


def prompt_tokens(rows: pd.DataFrame) -> pd.Series:
    """Each row's prompt length by row_id: `input_len`, or the dataset's `mean_input_len` where a
    serving row gives only that (LongBench V2's mean of 130,000 tokens)."""
    fixed = pd.to_numeric(rows["input_len"], errors="coerce")
    mean = pd.to_numeric(rows["mean_input_len"], errors="coerce")
    return pd.Series(fixed.fillna(mean).to_numpy(), index=rows["row_id"].to_numpy())


def regime_rows(results: dict, rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The typical profile's predictions (both folds, each row by the fit that never read it) of
    rows at 128K tokens or more, and of rows on non-NVIDIA parts."""
    pooled = both_folds(results["typical"])
    tokens = pooled["row_id"].map(prompt_tokens(rows).to_dict())
    long = pooled[tokens >= LONG_CONTEXT_TOKENS]
    other = pooled[st.vendors(pooled["gpu"]).map(parts_of) == "non-nvidia"]
    cols = ["row_id", "source_id", "case", "metric", "measured", "predicted", "error_pct"]
    return long[cols], other[cols]


def _us(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1e6:.1f}"


def knob_table(results: dict) -> pd.DataFrame:
    out = []
    for stack in PROFILES:
        for number in (1, 2):
            fit = results[stack][number]["fit"]
            k = fit.knobs
            out.append(
                {
                    "profile": stack,
                    "fold": number,
                    "fit rows": len(fit.fitted_ids),
                    "step overhead ms": f"{k.step_overhead_s * 1e3:.2f}",
                    "per sequence us": f"{k.seq_overhead_s * 1e6:.1f}",
                    "tree all-reduce hop us": ""
                    if k.hop_latency_s is None
                    else f"{k.hop_latency_s * 1e6:.1f}",
                    "grouped expert GEMMs (x dense)": f"{k.moe_gemm:.2f}",
                    "all-reduce (x link bandwidth)": f"{k.collective:.2f}",
                    "other vendors' parts (x curves)": f"{k.other_vendors:.2f}",
                    "left out (faster than roofline)": len(
                        results[stack][number]["fit"].faster_than_roofline
                    ),
                    "loss by per-sequence us tried": "; ".join(
                        f"{seq * 1e6:.1f}: {loss:.2f}" for seq, loss in fit.tried
                    ),
                }
            )
    return pd.DataFrame(out)


def non_nvidia_bands(results: dict, profiles: dict) -> pd.DataFrame:
    """Per profile, the bands read from held-out rows on other vendors' parts, and the share of those
    rows inside the band read without their run."""
    out = []
    for stack in PROFILES:
        profile, held = profiles[stack], results[stack][1]["held"]
        vendor = st.vendors(held["gpu"])
        applies = [profile.band(r.group, r.regime, v) for r, v in zip(held.itertuples(), vendor, strict=True)]
        for b in profile.uncertainty:
            if b.parts != "non-nvidia":
                continue
            share = _coverage(held[[a == b for a in applies]], results[stack]["covered"])
            out.append(
                {
                    "profile": stack,
                    "group": b.metric,
                    "regime": b.regime,
                    "80% band": _band_text(b),
                    "median abs error % (band rows)": f"{b.median_abs_error_pct:.1f}",
                    "coverage (run left out)": share,
                }
            )
    return pd.DataFrame(out)


def coverage_line(results: dict) -> str:
    """Per profile: the share of all its held-out rows (fold 1) inside the 80% band read without
    their run."""
    parts = []
    for stack in PROFILES:
        inside = results[stack]["covered"].dropna()
        parts.append(f"{stack} {inside.mean():.0%} of {len(inside)}" if len(inside) else f"{stack} no band")
    return "; ".join(parts)


def faster_than_roofline(results: dict, rows: pd.DataFrame) -> str:
    parts = []
    for stack in PROFILES:
        held = results[stack][1]["held"].set_index("row_id")
        roof = results[stack]["roofline"].set_index("row_id")["predicted"]
        both = held.join(roof.rename("roofline"), how="inner").dropna(subset=["roofline"])
        both = both[st.roofline_comparable(rows.set_index("row_id").loc[both.index])]
        rate = both["metric"].map(st.is_rate)
        faster = np.where(
            rate,
            both["predicted"] > both["roofline"] * (1 + 1e-9),
            both["predicted"] < both["roofline"] * (1 - 1e-9),
        )
        parts.append(f"{stack} {int(faster.sum())} of {len(both)}")
    return "; ".join(parts)


def render(results: dict, profiles: dict, rows: pd.DataFrame, seconds: float) -> str:
    long, other = regime_rows(results, rows)
    template = (ROOT / "benchmarks" / "stacks_template.md").read_text(encoding="utf-8")
    return template.format(
        serving=md_table(serving_scores(results)),
        by_source=md_table(serving_by_source(results)),
        headline=md_table(headline(results, profiles, rows)),
        knobs=md_table(knob_table(results)),
        roofline=faster_than_roofline(results, rows),
        coverage=coverage_line(results),
        long_count=len(long),
        long=md_table(long) if len(long) else "(none predicted)",
        other_count=len(other),
        other=md_table(other) if len(other) else "(none predicted)",
        other_bands=md_table(bands) if len(bands := non_nvidia_bands(results, profiles)) else "(no band)",
        long_median=f"{long['error_pct'].abs().median():.1f}" if len(long) else "n/a",
        other_median=f"{other['error_pct'].abs().median():.1f}" if len(other) else "n/a",
        minutes=f"{seconds / 60:.0f}",
    )


def show_progress() -> None:
    """Print the fit's progress (each time per sequence tried, `sim.fidelity.stacks`) on stderr:
    without it a refit says nothing for two hours."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--validation", type=Path, default=ROOT.parent / "shared" / "validation")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "stacks.md")
    ap.add_argument(
        "--no-offline", action="store_true", help="leave out TensorRT-LLM v0.17's offline rows (engine runs)"
    )
    ap.add_argument("--jobs", type=int, default=1, help="processes simulating the profiles' serving runs")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = read_rows(args.validation)
    base = curves(args.validation)
    print(f"curves fitted in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    show_progress()
    # every profile at once, in threads of this process (their own work is light next to the runs),
    # all handing their serving runs to one pool: no profile waits on another's, and no core idles
    # while one profile has runs left
    offline = not args.no_offline
    with ProcessPoolExecutor(max(args.jobs, 1)) as pool, ThreadPoolExecutor(len(PROFILES)) as fits:
        futures = {s: fits.submit(run_stack, s, rows, base[s], offline, pool.map) for s in PROFILES}
        results, profiles = {}, {}
        for stack in PROFILES:
            results[stack] = futures[stack].result()
            sources = tuple(sorted(set(st.rows_of(rows, stack)["source_id"])))
            profiles[stack] = write_profile(stack, results[stack], sources)
            print(f"{stack} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    args.out.write_text(render(results, profiles, rows, time.perf_counter() - t0))
    print(f"wrote {args.out} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
