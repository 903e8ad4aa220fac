"""Fit a device's efficiencies from measured kernels, and predict kernels with the cost model's roofline.

A measured kernel says how long one call took; the roofline says how much work it did (FLOPs and
bytes, by the same formulas the cost model uses). Their ratio is the fraction of peak the kernel
reached. Gather those fractions per leg and kind of kernel, against the work per call, and you have an
efficiency curve (`hardware.spec.Curve`):

- `gemm` / `gemm_fp8` / `gemm_fp4`: compute-bound GEMMs, efficiency vs FLOPs per call (bf16 / fp8 /
  fp4 peak);
- `memory`: memory-bound GEMMs (weight streaming at small batch) and device copies, vs bytes per call;
- `attention`: compute-bound attention (prefill), vs FLOPs per call: grows with sequence length x batch;
- `attention_memory`: memory-bound attention (decode, KV reads), vs bytes per call;
- `link`: all-reduces, vs bytes each device sends per call (2 (g-1)/g x message).

A kernel counts for the leg that bounds it at the datasheet peak (compute if F/peak >= B/bandwidth).
`op_overhead_s` is the shortest measured kernel: a floor no call goes under. Each curve has one knot
per half decade of work (the median efficiency of the kernels there), its ends at the smallest and
largest work measured, so `Curve.covers` tells a query inside the measured range from an extrapolation.

Transfer: efficiencies are fractions of peak and the curves are keyed by work, not time, so a curve
fitted on one device is used unchanged on a what-if device with other peaks (more bandwidth, more
FLOP/s): the same kernel is assumed to reach the same fraction of the new peak. `Calibration` records
the peaks it was fitted against, so outputs can be flagged as transferred when they differ.

Kernel tables are read by `sim.fidelity.kernels`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from hardware.spec import BYTES_PER_ELEMENT, MAX_CURVE_KNOTS, Accelerator, Calibration, Curve, Curves
from sim.cost.legs import ACT_BYTES, kernel_legs
from sim.fidelity.kernels import STEP_OPS, KernelDataError, load_kernels
from workloads.model import ModelArch

KNOTS_PER_DECADE = 2


# ---- work of each kernel (the cost model's formulas) ---------------------------------------------------
def kernel_work(df: pd.DataFrame) -> pd.DataFrame:
    """Per kernel row: `kind` (gemm | attention | memory | link), FLOPs and bytes of one call, and the
    weight dtype a GEMM runs at. Attention follows the cost model: 4·heads·head_dim FLOPs per
    query-key pair (causal prefill has s(s+1)/2 pairs), KV read once plus written once per new token,
    queries and outputs in bf16. Step rows get kind 'step' and no work (see `predict_steps`)."""
    op = df["op"]
    a = ACT_BYTES
    flops = np.zeros(len(df))
    nbytes = np.zeros(len(df))
    kind = np.full(len(df), "step", dtype=object)
    e = df["dtype"].map(lambda d: BYTES_PER_ELEMENT.get(d, 2.0)).to_numpy()

    g = (op == "gemm").to_numpy()
    m, n, k = (df[c].to_numpy(float) for c in ("m", "n", "k"))
    flops[g] = (2 * m * n * k)[g]
    nbytes[g] = (e * (m * k + n * k) + a * m * n)[g]
    kind[g] = "gemm"

    for name, new, ctx in (
        ("attention_prefill", df["seq_len"], 0.0),
        ("attention_decode", 1.0, df["kv_len"]),
    ):
        sel = (op == name).to_numpy()
        b = df["batch"].to_numpy(float)
        new_t = np.broadcast_to(np.asarray(new, float), len(df))
        ctx_t = np.broadcast_to(np.asarray(ctx, float), len(df))
        heads, kv_heads, hd = (df[c].to_numpy(float) for c in ("heads", "kv_heads", "head_dim"))
        pairs = b * (new_t * ctx_t + new_t * (new_t + 1) / 2)
        kvb = 2 * kv_heads * hd * a
        flops[sel] = (4 * heads * hd * pairs)[sel]
        nbytes[sel] = (b * (kvb * (ctx_t + new_t) + new_t * (kvb + 2 * a * heads * hd)))[sel]
        kind[sel] = "attention"

    sel = (op == "memcpy").to_numpy()
    nbytes[sel] = df["bytes"].to_numpy(float)[sel]
    kind[sel] = "memory"

    sel = (op == "allreduce").to_numpy()
    gpus = df["gpus"].to_numpy(float)
    nbytes[sel] = (2 * (gpus - 1) / np.maximum(gpus, 1) * df["bytes"].to_numpy(float))[sel]
    kind[sel] = "link"
    return pd.DataFrame(
        {"kind": kind, "flops": flops, "bytes": nbytes, "dtype": df["dtype"].to_numpy()}, index=df.index
    )


def _curve_eff(curve: Curve | None, size: np.ndarray) -> np.ndarray:
    if curve is None:
        return np.ones_like(size)
    lx = np.log10(np.maximum(size, 1e-300))
    return np.interp(lx, np.log10(curve.size), curve.efficiency)


def predict_kernels(df: pd.DataFrame, hw: Accelerator) -> np.ndarray:
    """Seconds per call of each kernel row on `hw` by the cost model's per-operator roofline (the same
    legs, curves and overhead `sim.cost.ops.build_ops` gives a model's operators); NaN for step rows."""
    work = kernel_work(df)
    out = np.full(len(df), np.nan)
    link = hw.link()
    for (kind, dtype), idx in work.groupby(["kind", "dtype"]).indices.items():
        if kind == "step":
            continue
        w = work.iloc[idx]
        f, b = w["flops"].to_numpy(), w["bytes"].to_numpy()
        legs = kernel_legs(hw, kind, dtype if kind == "gemm" else "bf16")
        compute = np.divide(f, legs.rate_f * _curve_eff(legs.curve_f, f), out=np.zeros_like(f), where=f > 0)
        memory = b / (legs.rate_b * _curve_eff(legs.curve_b, b))
        overhead = legs.overhead_s
        if kind == "link":
            gpus = df["gpus"].to_numpy(float)[idx]
            overhead = 2 * (gpus - 1) * link.latency_s
        out[idx] = np.maximum(compute, memory) + overhead
    return out


def step_model(model_json: str) -> ModelArch:
    """The (possibly scaled) model a profiled step ran, from the shapes JSON in its `model` column."""
    s = json.loads(model_json)
    arch = {
        "name": s["name"],
        "num_layers": s["layers"],
        "hidden_size": s["hidden"],
        "num_heads": s["heads"],
        "num_kv_heads": s["kv_heads"],
        "head_dim": s["head_dim"],
        "intermediate_size": s["ffn"],
        "vocab_size": s["vocab"],
    }
    return ModelArch.model_validate(arch)


def predict_steps(df: pd.DataFrame, hw: Accelerator) -> np.ndarray:
    """Seconds of each profiled prefill/decode step on `hw` by the full cost model (tp = 1); NaN for
    kernel rows."""
    from sim.cost.roofline import RooflineCost

    out = np.full(len(df), np.nan)
    for i, row in enumerate(df.itertuples(index=False)):
        if row.op not in STEP_OPS:
            continue
        cost = RooflineCost(step_model(row.model), hw)
        b = int(row.batch)
        if row.op == "prefill_step":
            step = cost.step(np.full(b, int(row.seq_len)), np.zeros(b, np.int64), b)
        else:
            step = cost.step(np.ones(b, np.int64), np.full(b, int(row.kv_len)), b)
        out[i] = step.total_s
    return out


# ---- fitting --------------------------------------------------------------------------------------------
def _fit_curve(size: np.ndarray, eff: np.ndarray, source: str) -> Curve | None:
    """Median efficiency per half decade of work; ends pinned to the smallest and largest work."""
    ok = (size > 0) & np.isfinite(eff) & (eff > 0)
    size, eff = size[ok], np.clip(eff[ok], 1e-4, 1.0)
    if len(size) == 0:
        return None
    lx = np.log10(size)
    bins = np.floor(lx * KNOTS_PER_DECADE)
    xs, ys = [], []
    for b in np.unique(bins):
        sel = bins == b
        xs.append(float(np.median(lx[sel])))
        ys.append(float(np.median(eff[sel])))
    while len(xs) > MAX_CURVE_KNOTS:  # merge the closest neighbours until the curve fits the knot budget
        i = int(np.argmin(np.diff(xs)))
        xs[i : i + 2] = [(xs[i] + xs[i + 1]) / 2]
        ys[i : i + 2] = [(ys[i] + ys[i + 1]) / 2]
    xs[0], xs[-1] = float(lx.min()), float(lx.max())
    if len(xs) == 1:
        return Curve(size=(float(10 ** xs[0]),), efficiency=(ys[0],), source=source)
    return Curve(size=tuple(float(10**x) for x in xs), efficiency=tuple(ys), source=source)


def fit(df: pd.DataFrame, hw: Accelerator, sources: tuple[str, ...] = ()) -> Accelerator:
    """`hw` with efficiencies fitted to the kernels in `df` (a kernel table measured on a device of
    the same peaks). Legs without data keep the preset's scalar efficiency; step rows are ignored."""
    kern = df[~df["op"].isin(STEP_OPS)]
    if kern.empty:
        raise KernelDataError("no kernel rows to fit (only whole steps)")
    work = kernel_work(kern)
    t = kern["time_s"].to_numpy(float)
    overhead = float(t.min())
    busy = t - overhead
    informative = t >= 2 * overhead  # shorter kernels are mostly overhead: their efficiency is unidentifiable
    peak_bf16 = hw.peak_flops.bf16
    bw = hw.main_tier.bandwidth_bytes_per_s
    link = hw.link()
    kind, f, b = work["kind"].to_numpy(), work["flops"].to_numpy(), work["bytes"].to_numpy()
    units = work["dtype"].map(hw.peak_flops.unit_for).to_numpy()
    peak = np.array([getattr(hw.peak_flops, u) for u in units], dtype=float)
    compute_bound = f / peak >= b / bw
    fp8, fp4 = ~np.isin(units, ("bf16", "fp4")), units == "fp4"
    label = ", ".join(sources) or "measured kernels"

    def curve(sel, work_size, rate):
        sel = sel & informative
        return _fit_curve(
            work_size[sel],
            work_size[sel] / (rate[sel] if np.ndim(rate) else rate) / busy[sel],
            f"fitted to {int(sel.sum())} kernels ({label})",
        )

    curves = Curves(
        gemm=curve((kind == "gemm") & compute_bound & (units == "bf16"), f, peak),
        gemm_fp8=curve((kind == "gemm") & compute_bound & fp8, f, peak),
        gemm_fp4=curve((kind == "gemm") & compute_bound & fp4, f, peak),
        attention=curve((kind == "attention") & compute_bound, f, peak_bf16),
        memory=curve(((kind == "gemm") & ~compute_bound) | (kind == "memory"), b, bw),
        attention_memory=curve((kind == "attention") & ~compute_bound, b, bw),
        link=None,
    )
    link_sel = kind == "link"
    if link_sel.any() and link is not None:
        gpus = kern["gpus"].to_numpy(float)
        hops_s = 2 * (gpus - 1) * link.latency_s
        link_sel &= t >= 2 * hops_s
        link_busy = t - hops_s
        curves = curves.model_copy(
            update={
                "link": _fit_curve(
                    b[link_sel],
                    b[link_sel] / link.bandwidth_bytes_per_s / link_busy[link_sel],
                    f"fitted to {int(link_sel.sum())} all-reduces ({label})",
                )
            }
        )
    calibration = Calibration(
        device=str(kern["device"].iloc[0]),
        peak_bf16_flops_per_s=peak_bf16,
        bandwidth_bytes_per_s=bw,
        link_bytes_per_s=link.bandwidth_bytes_per_s if link else None,
        data=sources,
    )
    eff = hw.efficiency.model_copy(
        update={
            "op_overhead_s": overhead,
            "curves": curves,
            "calibration": calibration,
            "source": f"calibrated by ctxsim calibrate from {label}; scalars kept from the preset for legs "
            f"without a curve ({hw.efficiency.source})",
        }
    )
    return hw.model_copy(update={"efficiency": eff})


def data_sources(paths: Sequence[Path]) -> tuple[str, ...]:
    """How a calibration names the data it read: a file by its name, a folder by its path."""
    return tuple(p.name if p.is_file() else str(p) for p in paths)


def fit_kernel_files(
    paths: Sequence[Path], hw: Accelerator, holdout: bool
) -> tuple[Accelerator, pd.DataFrame, pd.DataFrame]:
    """`hw` fitted to the kernel tables at `paths`, with the rows the fit read and the rows it never
    read: with `holdout`, every third kernel shape (`split_by_shape`); without, the whole-step rows,
    which the fit ignores and only predictions score."""
    kernels = pd.concat([load_kernels(p) for p in paths], ignore_index=True)
    fit_rows, held = (
        split_by_shape(kernels) if holdout else (kernels, kernels[kernels["op"].isin(STEP_OPS)])
    )
    return fit(fit_rows, hw, data_sources(paths)), fit_rows, held


# ---- held-out split and errors ----------------------------------------------------------------------------
HOLDOUT_KEYS = {
    "gemm": ("n", "k"),
    "attention_prefill": ("heads", "kv_heads", "head_dim", "batch"),
    "attention_decode": ("heads", "kv_heads", "head_dim", "batch"),
    "memcpy": ("bytes",),
    "allreduce": ("gpus", "bytes"),
}


def split_by_shape(df: pd.DataFrame, every: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fit, held out): for each op, the distinct shapes (GEMM weight n x k; attention heads, head
    size and batch; copy and message sizes) in sorted order, every `every`-th one held out whole, so the
    held-out part asks about shapes the fit never saw. Step rows are always held out."""
    held = pd.Series(False, index=df.index)
    for op, keys in HOLDOUT_KEYS.items():
        sel = df["op"] == op
        if not sel.any():
            continue
        shapes = df.loc[sel, list(keys)].astype(float).apply(tuple, axis=1)
        order = {s: i for i, s in enumerate(sorted(set(shapes)))}
        held[sel] = shapes.map(lambda s, order=order: order[s] % every == every - 1)
    held |= df["op"].isin(STEP_OPS)
    return df[~held], df[held]


def kernel_errors(df: pd.DataFrame, hw: Accelerator) -> pd.DataFrame:
    """Each row with `predicted_s` (kernels by the single-operator roofline, steps by the cost model) and
    `error_pct` = (predicted - measured) / measured x 100."""
    pred = predict_kernels(df, hw)
    steps = df["op"].isin(STEP_OPS).to_numpy()
    if steps.any():
        pred[steps] = predict_steps(df, hw)[steps]
    out = df.assign(predicted_s=pred)
    return out.assign(error_pct=(out["predicted_s"] - out["time_s"]) / out["time_s"] * 100)


def error_summary(errors: pd.DataFrame) -> pd.DataFrame:
    """Median and p90 absolute error (%) and count per op."""
    abs_err = errors.assign(abs_err=errors["error_pct"].abs())
    return (
        abs_err.groupby("op")["abs_err"]
        .agg(count="count", median_abs_error_pct="median", p90_abs_error_pct=lambda s: s.quantile(0.9))
        .reset_index()
    )


def to_yaml_dict(hw: Accelerator) -> dict:
    """The accelerator as a plain mapping for a hardware YAML file (SI numbers)."""
    return hw.model_dump(mode="json", exclude_none=True)


def calibrated_yaml(hw: Accelerator, sources: Sequence[str]) -> str:
    """The text of a calibrated hardware file: a header naming its data and how to read its curves,
    then the accelerator."""
    header = (
        f"# {hw.name} calibrated by `ctxsim calibrate` from {', '.join(sources)}.\n"
        "# Efficiencies are fractions of this file's peaks; curves are keyed by work per kernel call\n"
        "# and hold flat outside their measured range (queries there are flagged as extrapolated).\n"
    )
    return header + yaml.safe_dump(to_yaml_dict(hw), sort_keys=False, width=110, allow_unicode=True)
