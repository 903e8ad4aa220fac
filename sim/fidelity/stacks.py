"""Fit serving-stack profiles (`hardware.stacks`) on public measurements and score them on rows no fit read.

A profile is fitted in two stages, as the kernel and stack calibrations are (`sim.fidelity.calibrate`,
`sim.fidelity.overheads`): its efficiency curves come from a stack's published kernel timings (read by
`sim.fidelity.kernels`), then its framework knobs (per-step overhead, all-reduce hop latency and
bandwidth fraction, grouped expert GEMMs) are fitted by `overheads`' least squares on the stack's
end-to-end rows, pooled over every GPU they were measured on, each on its catalog preset carrying
the curves, with the time per sequence chosen against the searched rates too (`fit_knobs`). One
set of knobs per stack, not per GPU, is what lets a profile serve a GPU it was never measured on.

Which rows a stack owns: its `framework` column names it (`stack_of`); `typical` owns every row.

The split (`held_out`) is fixed here, before anything is scored, and depends on nothing but the rows'
configuration: within each source and GPU, the distinct runs (a serving benchmark's load and
workload; for a static or offline row its workload shape, as `overheads.split_by_workload` takes it)
in sorted order alternate between the halves, the first to the fit. `fold` 1 fits on that half and
scores the other; `fold` 2 swaps them. A profile ships with fold 1's knobs, so its reported error is
measured on rows its own fit never read, and with the 80% bands (`hardware.stacks.Band`) read off
the same held-out rows: the errors of the very knobs it ships, on rows they never read (split
conformal prediction). Fold 2's knobs are another model, whose errors centre elsewhere (its step
overhead may be three times fold 1's), so its rows would describe a band for a profile nobody
ships. The band's coverage is measured run by run (`covered_leaving_out_runs`): each run's rows
against the band read from every other run's, so no row is scored by a band that read it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hardware.spec import Efficiency
from hardware.stacks import Band, DeviceCurves, StackProfile, apply_stack, load_stack, parts_of
from sim.fidelity import overheads as ovh
from sim.fidelity import serving
from sim.fidelity import validate as val

log = logging.getLogger(__name__)

STACKS = ("vllm", "sglang", "trtllm")
TYPICAL = "typical"
# A run's identity in a serving benchmark: rows that share these were measured in one run.
RUN_COLUMNS = (
    "framework",
    "model",
    "precision",
    "tp",
    "num_gpus",
    "scenario",
    "input_len",
    "output_len",
    "batch_size",
    "qps",
    "concurrency",
    "dataset",
)
LOWER_Q, UPPER_Q = 0.10, 0.90
"""The band's nominal tails: 10% of new rows below it, 10% above (`prediction_interval`)."""
MIN_BAND_ROWS = 8
"""Fewest held-out rows a band is read from; a regime with fewer takes its metric's band over all
regimes, and a metric with fewer in all gets no band (its predictions no interval)."""


def stack_of(framework: str) -> str | None:
    """The shipped stack a `framework` column names, or None (another or no serving framework)."""
    text = str(framework).lower()
    if "tensorrt" in text or "trt-llm" in text:
        return "trtllm"
    if "sglang" in text:
        return "sglang"
    if "vllm" in text:
        return "vllm"
    return None


def rows_of(rows: pd.DataFrame, stack: str) -> pd.DataFrame:
    """The rows a stack's profile is fitted and scored on: its own, or every row for `typical`."""
    if stack == TYPICAL:
        return rows
    return rows[rows["framework"].map(stack_of) == stack]


def held_out(rows: pd.DataFrame) -> pd.Series:
    """True for the rows fold 1 holds out (see the module docstring); a pure function of the rows'
    configuration columns, in the order of `rows`."""
    is_serving = pd.Series([serving.is_serving(r) for r in rows.itertuples(index=False)], index=rows.index)
    held = pd.Series(False, index=rows.index)
    static = rows[~is_serving]
    if len(static):
        _, odd = ovh.split_by_workload(static)
        held[odd.index] = True
    runs = rows[is_serving]
    key = runs[list(RUN_COLUMNS)].astype(str).apply(tuple, axis=1)
    for _, idx in runs.groupby(["source_id", "gpu"], sort=False).groups.items():
        order = {k: i for i, k in enumerate(sorted(set(key[idx])))}
        held[idx] = key[idx].map(lambda k, order=order: order[k] % 2 == 1)
    return held


def fold(rows: pd.DataFrame, number: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fit rows, scored rows) of fold 1 or 2."""
    held = held_out(rows)
    if number == 1:
        return rows[~held], rows[held]
    if number == 2:
        return rows[held], rows[~held]
    raise ValueError(f"fold must be 1 or 2, got {number}")


def with_curves(
    efficiency: Efficiency, name: str, devices: dict[str, Efficiency] | None = None
) -> StackProfile:
    """A profile of `name` carrying `efficiency`'s curves, scalars and op overhead, and those of
    `devices` (kernel calibrations on other devices, by hardware name) as its `device_curves`, and
    no knobs yet: what the knobs are fitted on top of."""
    eff = efficiency.model_copy(update={"calibration": None, "step_overhead_s": 0.0, "seq_overhead_s": 0.0})
    measured = {
        device: DeviceCurves(
            compute=e.compute,
            memory=e.memory,
            link=e.link,
            op_overhead_s=e.op_overhead_s,
            curves=e.curves,
            source=", ".join(e.calibration.data) if e.calibration else "",
        )
        for device, e in (devices or {}).items()
    }
    return StackProfile(
        name=f"{name}-curves",
        description="",
        efficiency=eff,
        device_curves=measured,
        scale_up_latency_s=0.0,
        scale_up_algorithm="ring",
    )


@dataclass(frozen=True)
class Fit:
    """A stack's knobs fitted on one fold: the knobs, the row ids they were fitted on, the fit rows
    left out because they were measured faster than their GPU's roofline (which no added time can
    explain, and which on relative error would hold every knob at zero), and the sequence overheads
    tried against the searched rates with each one's loss (`best_sequence_overhead`)."""

    knobs: ovh.Overheads
    fitted_ids: tuple[str, ...]
    faster_than_roofline: tuple[str, ...]
    tried: tuple[tuple[float, float], ...] = ()


def predict(
    rows: pd.DataFrame,
    profile: StackProfile | None,
    models_dir: Path | None,
    engine: bool = True,
    pool_map: Callable | None = None,
) -> pd.DataFrame:
    """`validate.validate` of `rows`, each on its GPU's catalog preset served by `profile` (its
    serving runs simulated through `pool_map`, an executor's `map`, when given)."""
    presets = {p for p in rows["gpu"].map(val.gpu_preset) if isinstance(p, str)}
    devices = {p: apply_stack(val.load_device(p), profile) for p in presets}
    return val.validate(rows, models_dir, devices, engine, pool_map=pool_map)


def is_rate(metric: str) -> bool:
    """Whether a metric's number is a rate (higher is faster)."""
    return metric in (*ovh.THROUGHPUT_METRICS, *ovh.SERVING_RATES)


def roofline_comparable(rows: pd.DataFrame) -> np.ndarray:
    """Per row, whether "faster than the roofline" means anything for it: every row but a latency of
    a run searched for its highest rate within latency limits (`serving.LIMIT_COLUMNS`). Each
    system, the roofline too, is read at its own edge, where its latencies sit near the same limits;
    there a faster system shows as a higher rate, not as lower latencies."""
    return (rows["metric"].map(is_rate) | ~serving.has_limits(rows)).to_numpy(bool)


SEQ_GRID_S = (0.0, 2.5e-6, 5e-6, 1e-5, 2e-5, 4e-5)
"""Sequence overheads (`efficiency.seq_overhead_s`) `fit_knobs` tries against the searched rates of
its fit rows, each with the other knobs refitted around it; a factor of 2 apart, from none to
40 us (the per-GPU fits on splitwise-sim's rows take 60-150 us, docs/validation.md)."""


def fit_knobs(
    rows: pd.DataFrame, curves: StackProfile, models_dir: Path | None, pool_map: Callable | None = None
) -> Fit:
    """The knobs of one stack over `rows`, every GPU pooled, each row on its GPU's preset served by
    `curves` (a profile with curves and no knobs). Rows `validate` cannot predict are left out, and
    so are offline-throughput rows (each probe of one is a simulation of up to 30,000 requests).

    A run searched for its highest rate within latency limits (MLPerf Server) enters twice. Its TPOT
    rows join the least squares, simulated at the rate its submitter found for the benchmark's
    600 s (`serving.at_submitted_rate`; a search per probe would be a dozen such runs): its TTFT near
    the limits is queueing, no straight line in the knobs. And its rates choose the sequence
    overhead (`best_sequence_overhead`): the time a step spends per sequence is what sets where a
    busy server saturates, which only the searched rate shows, and at one rate a per-step overhead
    matches one step's time just as well. A row measured faster than its GPU's roofline, which no
    added time can reach, is left out. `pool_map` (an executor's `map`) simulates the serving runs
    in parallel; the fit is the same without it."""
    limited = serving.has_limits(rows)
    searched = rows[limited & rows["metric"].map(is_rate)]
    rows = rows[(rows["metric"] != "output_token_throughput") & (~limited | (rows["metric"] == "tpot"))]
    rows = serving.at_submitted_rate(rows)
    at_curves = predict(rows, curves, models_dir, pool_map=pool_map)
    at_roofline = predict(rows, load_stack("roofline"), models_dir, pool_map=pool_map)
    ok = (at_curves["skipped_reason"] == "").to_numpy() & at_roofline["predicted"].notna().to_numpy()
    measured, floor = at_curves["measured"].to_numpy(float), at_roofline["predicted"].to_numpy(float)
    rate = rows["metric"].map(is_rate).to_numpy(bool)
    faster = ok & np.where(rate, measured > floor, measured < floor)
    use = ok & ~faster
    part = rows[use]
    if part.empty:
        raise ValueError(f"{curves.name}: no row left to fit on")
    models = [val.resolve_model(r.model, r.precision or "bf16", models_dir) for r in part.itertuples()]
    devices = {p: apply_stack(val.load_device(p), curves) for p in set(part["gpu"].map(val.gpu_preset))}
    system = ovh.overhead_system(
        part, models, [devices[val.gpu_preset(g)] for g in part["gpu"]], engine=True, pool_map=pool_map
    )
    knobs, tried = best_sequence_overhead(system, searched, curves, models_dir, pool_map)
    ids, faster_ids = tuple(part["row_id"].astype(str)), tuple(rows.loc[faster, "row_id"].astype(str))
    return Fit(knobs, ids, faster_ids, tried)


def searched_errors(
    searched: pd.DataFrame, profile: StackProfile, models_dir: Path | None, pool_map: Callable | None = None
) -> tuple[np.ndarray, pd.Series]:
    """Relative error of each searched rate in `searched` (predicted / measured - 1) served by
    `profile`, -1 for a run no rate of which meets its limits (a rate of 0), and nothing for a row
    `validate` cannot predict for another reason; and the rate each row's search found (by the
    index of `searched`, nan where none)."""
    res = predict(searched, profile, models_dir, pool_map=pool_map)
    none = res["skipped_reason"].str.contains(serving.NO_RATE)
    ok = res[res["skipped_reason"] == ""]
    found = ok["predicted"].to_numpy(float) / ok["measured"].to_numpy(float) - 1
    rates = pd.Series(res["searched_rate_per_s"].to_numpy(float), index=searched.index)
    return np.concatenate([found, -np.ones(int(none.sum()))]), rates


def best_sequence_overhead(
    system: ovh.OverheadSystem,
    searched: pd.DataFrame,
    curves: StackProfile,
    models_dir: Path | None,
    pool_map: Callable | None = None,
) -> tuple[ovh.Overheads, tuple[tuple[float, float], ...]]:
    """Of the free least-squares knobs of `system` and those refitted around each sequence overhead in
    `SEQ_GRID_S`, the knobs with the least sum of squared relative errors over the rows of `system`
    (linearised) and the searched rates of `searched` (simulated, each its benchmark's search), every
    row weighing the same, and each candidate's (sequence overhead, loss); the free fit, and nothing
    tried, when there is no searched rate.

    The free fit is tried first, then the grid upwards, stopping once the loss has risen twice in a
    row (`tried_in_order`): in every refit the loss has fallen to one least and risen from it. Each
    candidate after the first searches from the rates the one before found (`serving.search_from`),
    about half the runs of a search from the submitter's rate."""
    free = ovh.solve(system)
    if searched.empty:
        return free, ()
    candidates = (free, *(ovh.solve(system, s) for s in SEQ_GRID_S))
    found = pd.Series(np.nan, index=searched.index)

    def loss(i: int) -> float:
        nonlocal found
        knobs, t0 = candidates[i], time.perf_counter()
        start = serving.search_from(searched, found)
        rates, found = searched_errors(start, with_knobs(curves, knobs), models_dir, pool_map)
        value = float(np.sum(system.errors(knobs) ** 2) + np.sum(rates**2))
        log.info(
            "%s: time per sequence %d of %d (%.1f us): loss %.2f, %d searched rates in %.0f s",
            curves.name, i + 1, len(candidates), knobs.seq_overhead_s * 1e6, value, len(rates),
            time.perf_counter() - t0,
        )
        return value

    losses = tried_in_order(len(candidates), loss)
    best = min(losses, key=losses.get)
    tried = tuple((candidates[i].seq_overhead_s, value) for i, value in losses.items())
    return candidates[best], tried


def tried_in_order(count: int, loss: Callable[[int], float]) -> dict[int, float]:
    """`loss(i)` of candidates 0 (the free fit) and 1, 2, ... (the grid, upwards), in that order, until
    the grid's loss has risen twice in a row: candidate index -> loss."""
    losses = {0: loss(0)}
    rises = 0
    for i in range(1, count):
        losses[i] = loss(i)
        rises = rises + 1 if i > 1 and losses[i] > losses[i - 1] else 0
        if rises == 2:
            break
    return losses


def with_knobs(curves: StackProfile, knobs: ovh.Overheads, **fields) -> StackProfile:
    """`curves` carrying fitted `knobs` (a hop latency of None, when no fit row had TP > 1, keeps a
    ring all-reduce at the hop latency the catalog presets assume, 2 us) and the other profile
    `fields` given."""
    eff = curves.efficiency.model_copy(
        update={
            "step_overhead_s": knobs.step_overhead_s,
            "seq_overhead_s": knobs.seq_overhead_s,
            "moe_gemm": knobs.moe_gemm,
            "collective": knobs.collective,
        }
    )
    tree = knobs.hop_latency_s is not None
    return curves.model_copy(
        update={
            "efficiency": eff,
            "other_vendors": knobs.other_vendors,
            "scale_up_latency_s": knobs.hop_latency_s if tree else 2e-6,
            "scale_up_algorithm": "tree" if tree else "ring",
            **fields,
        }
    )


def ratios(results: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Scored rows of `results` with `ratio`: measured / predicted, for a duration predicted /
    measured (so that for every rate, a ratio below 1 means the prediction was too fast, and for
    every latency, above 1), with the row's framework and metric."""
    scored = results[results["skipped_reason"] == ""].merge(
        rows[["row_id", "framework", "gpu", "input_len"]], on="row_id"
    )
    ratio = scored["measured"] / scored["predicted"]
    duration = scored["metric"] == "benchmark_duration"
    return scored.assign(ratio=ratio.where(~duration, 1 / ratio))


def prediction_interval(ratios: np.ndarray) -> tuple[float, float]:
    """An 80% prediction interval for the next ratio from n held-out ones: the j-th and k-th
    smallest, j = floor(0.1 (n + 1)) and k = ceil(0.9 (n + 1)), clipped to 1..n. A new ratio from
    the same distribution falls between the j-th and k-th of n with probability (k - j) / (n + 1)
    (order statistics; distribution-free), so the band holds at least 80% of new rows for n >= 9.
    The 10th and 90th sample percentiles instead hold 8 of 12 for n = 11: too narrow when the
    rows are few."""
    x = np.sort(np.asarray(ratios, dtype=float))
    n = len(x)
    j = min(max(math.floor(LOWER_Q * (n + 1)), 1), n)
    k = max(min(math.ceil(UPPER_Q * (n + 1)), n), 1)
    return float(x[j - 1]), float(x[k - 1])


def vendors(gpus: pd.Series) -> pd.Series:
    """The vendor of each measurement row's GPU (its catalog preset's), "" when it has no preset."""
    names = {g: val.gpu_preset(g) for g in gpus.unique()}
    vendor = {g: val.load_device(p).vendor if isinstance(p, str) else "" for g, p in names.items()}
    return gpus.map(vendor)


def bands(held: pd.DataFrame, pool: pd.DataFrame | None = None) -> tuple[Band, ...]:
    """`own_bands(held)`, and for each metric group `held` gives no band of (too few rows), the bands
    `pool` gives it: the same profile's ratios on every stack's held-out rows, marked
    `rows_of="every stack"`. A profile fitted on few rows of its own (SGLang's) so still gives every
    prediction an interval, read from rows its fit never read."""
    own = own_bands(held)
    if pool is None:
        return own
    have = {b.metric for b in own}
    borrowed = [b for b in own_bands(pool) if b.metric not in have]
    return (*own, *(b.model_copy(update={"rows_of": "every stack"}) for b in borrowed))


def own_bands(held: pd.DataFrame) -> tuple[Band, ...]:
    """The 80% band of measured / predicted (`ratios`) per metric group, over all regimes and per
    regime, each read from at least `MIN_BAND_ROWS` rows: from every row (`parts` "any"), and again
    from the rows on other vendors' parts than NVIDIA's (`hardware.stacks.parts_of`), which a device
    of such a vendor reads first."""
    out = []
    families = held.assign(parts=vendors(held["gpu"]).map(parts_of))
    for parts, rows in (("any", families), ("non-nvidia", families[families["parts"] == "non-nvidia"])):
        for group, part in rows.groupby("group", sort=True):
            cells = [("all", part), *part.groupby("regime", sort=True)]
            cells = [(r, p) for r, p in cells if len(p) >= MIN_BAND_ROWS]
            for regime, p in cells:
                r = p["ratio"].to_numpy(float)
                lo, hi = prediction_interval(r)
                out.append(
                    Band(
                        metric=group,
                        regime=regime,
                        parts=parts,
                        lo=lo,
                        hi=hi,
                        rows=len(r),
                        median_abs_error_pct=float(np.median(np.abs(p["error_pct"]))),
                    )
                )
    return tuple(out)


def runs(rows: pd.DataFrame) -> pd.Series:
    """Per row, the run it was measured in: its source, GPU and `RUN_COLUMNS` (a serving benchmark's
    load and workload; a static row's workload shape), as one string."""
    return rows[["source_id", "gpu", *RUN_COLUMNS]].astype(str).agg("|".join, axis=1)


def covered_leaving_out_runs(
    held: pd.DataFrame, rows: pd.DataFrame, profile: StackProfile, pool: pd.DataFrame | None = None
) -> pd.Series:
    """Per scored row of `held` (`ratios`; `rows` the measurement rows they came from): whether its
    ratio lies in the band `bands` reads from the rows of every other run of `held` (and of `pool`),
    NaN where those give none. This is the coverage a new run sees of the band `bands(held, pool)`
    ships; rows of one run (mean, median, p99 of one benchmark) share its errors, so they leave
    together."""
    run = held["row_id"].map(dict(zip(rows["row_id"], runs(rows), strict=True)))
    inside = pd.Series(np.nan, index=held.index, dtype=float)
    for idx in held.groupby(run, sort=True).groups.values():
        rest = None if pool is None else pool[~pool["row_id"].isin(held.loc[idx, "row_id"])]
        others = profile.model_copy(update={"uncertainty": bands(held.drop(index=idx), rest)})
        inside[idx] = covered(held.loc[idx], others)
    return inside


def covered(held: pd.DataFrame, profile: StackProfile) -> pd.Series:
    """Per scored row of `held` (`ratios`): whether its ratio lies in `profile`'s band for its metric
    group, regime and GPU vendor (NaN where the profile has no band)."""
    inside = []
    for r, vendor in zip(held.itertuples(index=False), vendors(held["gpu"]), strict=True):
        b = profile.band(r.group, r.regime, vendor)
        inside.append(np.nan if b is None else float(b.lo <= r.ratio <= b.hi))
    return pd.Series(inside, index=held.index, dtype=float)
