"""Framework overheads of a serving stack: the time end-to-end runs show and kernel benchmarks cannot.

Kernel calibration (`sim.fidelity.calibrate`) fits how fast each kernel runs when called back to back. A
serving stack (one framework version on one GPU) adds time around its kernels, described by six
knobs, each of which can only make a prediction slower:

- `efficiency.step_overhead_s`: paid once per engine step (scheduling, launch gaps);
- `efficiency.seq_overhead_s`: paid once per sequence an engine step runs (its inputs, sampling,
  detokenising and streaming its token): time that grows with the batch, which a large batch on a
  busy server pays and a kernel benchmark never sees;
- the scale-up link's per-hop `latency_s` with a tree all-reduce (2 ceil(log2 tp) hops per
  all-reduce, two all-reduces a layer): collective latency that grows with log2 tp;
- `efficiency.moe_gemm` (<= 1): the fraction of a dense GEMM's speed that the stack's grouped expert
  GEMMs reach on the same work;
- `efficiency.collective` (<= 1): the fraction of the link's kernel-measured (NCCL benchmark)
  bandwidth that the stack's own all-reduces reach: collective time that grows with the bytes moved,
  so with the tokens of a large prefill, and not with the number of hops;
- `other_vendors` (<= 1, `hardware.stacks.StackProfile.other_vendors`): the fraction of the
  curves' efficiencies the stack's kernels reach on a part of another vendor than NVIDIA
  (`hardware.stacks.derated`), whose kernels no table measured.

`fit_overheads` fits them on measured rows in `sim.fidelity.validate`'s format. Every row's predicted time
is linear in (step overhead, hop latency, 1 / moe_gemm - 1, 1 / collective - 1, sequence overhead):
a step's time is
its operators' times plus the overheads, and an offline run (all requests at t=0, fixed lengths) is
scheduled by token and KV budgets, never by step times, so its makespan is a sum of steps. The slope
of each row in each knob is read off the model itself (one probe prediction per knob the row depends
on), and the knobs solve a non-negative least squares on relative error. The vendor fraction is
linear through 1 / other_vendors - 1, the factor by which it stretches every kernel's time. Latency
rows are fitted as time, throughput rows as time per output token (1 / value).

`fit_stacks` leaves out of a fit any row measured faster than the physical roofline
(`roofline_device`): no model of the hardware can explain it, and on relative error one such row
would hold every add-only knob at zero.

`split_by_workload` chooses which rows a stack is fitted on and which it is scored on, so that no
scored number is ever read by the fit.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hardware.spec import Accelerator, Efficiency
from hardware.stacks import derated, parts_of
from sim.cost.ops import build_ops
from sim.cost.parallelism import ConfigError
from sim.fidelity import serving
from sim.fidelity import validate as val
from sim.fidelity.kernels import KernelDataError
from workloads.model import ModelArch

STEP_METRICS = ("tpot", "ttft")  # one engine step per measured value: per-token decode, batch prefill
THROUGHPUT_METRICS = ("output_throughput_per_gpu", "output_token_throughput")
SERVING_RATES = ("request_throughput", "output_throughput", "total_token_throughput")
WORKLOAD = ("input_len", "output_len", "batch_size")


@dataclass(frozen=True)
class Overheads:
    """One stack's framework knobs: seconds per engine step, seconds per tree all-reduce hop (None
    keeps the link's own latency and algorithm), the grouped expert GEMMs' fraction of dense GEMM
    speed, the stack's collectives' fraction of the link's measured bandwidth, the fraction of its
    kernels' efficiencies it reaches on other vendors' parts than NVIDIA's, and seconds per sequence
    of each engine step."""

    step_overhead_s: float = 0.0
    hop_latency_s: float | None = None
    moe_gemm: float = 1.0
    collective: float = 1.0
    other_vendors: float = 1.0
    seq_overhead_s: float = 0.0


@dataclass(frozen=True)
class StackFit:
    """One stack's fitted knobs, how many rows they were fitted on, and the rows left out because they
    were measured faster than the physical roofline."""

    knobs: Overheads
    rows: int
    faster_than_roofline: tuple[str, ...] = ()


PROBE = Overheads(
    step_overhead_s=1e-3,
    hop_latency_s=1e-5,
    moe_gemm=0.5,
    collective=0.5,
    other_vendors=0.5,
    seq_overhead_s=1e-5,
)


def with_overheads(hw: Accelerator, knobs: Overheads) -> Accelerator:
    """`hw` with `knobs`: the per-step and per-sequence overheads, the grouped-GEMM and collective
    fractions, on a part
    of another vendor than NVIDIA its kernels at `knobs.other_vendors` of their efficiencies, and
    (unless the hop latency is None) tree all-reduces of `knobs.hop_latency_s` per hop on its
    scale-up link."""
    if parts_of(hw.vendor) == "non-nvidia":
        hw = hw.model_copy(update={"efficiency": derated(hw.efficiency, knobs.other_vendors)})
    data = hw.model_dump()
    data["efficiency"]["step_overhead_s"] = knobs.step_overhead_s
    data["efficiency"]["seq_overhead_s"] = knobs.seq_overhead_s
    data["efficiency"]["moe_gemm"] = knobs.moe_gemm
    data["efficiency"]["collective"] = knobs.collective
    if data.get("scale_up") and knobs.hop_latency_s is not None:
        data["scale_up"] = {**data["scale_up"], "latency_s": knobs.hop_latency_s, "algorithm": "tree"}
    return Accelerator.model_validate(data)


def roofline_device(hw: Accelerator) -> Accelerator:
    """The physical roofline of `hw`: datasheet peaks, every efficiency 1, no overheads, links without
    latency. No prediction with fitted knobs may be faster than this device's."""
    data = hw.model_copy(update={"efficiency": Efficiency()}).model_dump()
    for name in ("scale_up", "scale_out"):
        if data.get(name):
            data[name]["latency_s"] = 0.0
    return Accelerator.model_validate(data)


def _as_time(row, value: float) -> float:
    """A row's number as a time: seconds per output token (or request) for throughput, seconds for
    latency."""
    if row.metric in (*THROUGHPUT_METRICS, *SERVING_RATES):
        return 1.0 / value
    return value * val.UNIT_SCALE.get(str(row.unit).strip().lower(), 1.0)


def _uses(row, model: ModelArch, device: Accelerator) -> tuple[bool, ...]:
    """Which knobs' probes a row's time can depend on (the knob order of `_probes` after the first)."""
    tp = int(float(row.tp or 1)) > 1
    return (True, tp, model.moe is not None, tp, parts_of(device.vendor) == "non-nvidia", True)


def _seconds(row, model: ModelArch, hw: Accelerator, engine: bool, runs: dict) -> float:
    """A row's prediction as a time; serving rows share simulated runs through `runs`."""
    if serving.is_serving(row):
        pred = val.predict_serving(row, model, hw, engine, runs)
        if isinstance(pred, str):
            raise ValueError(f"row {row.row_id}: {pred}")
        return _as_time(row, pred.value)
    return _as_time(row, val.predict_row(row, model, hw, engine).value)


def _nnls(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """argmin |a x - b| over x >= 0, by least squares on every subset of the columns that vary (the
    optimum is the unconstrained solution on its own non-zero columns; there are at most six)."""
    best, best_res = np.zeros(a.shape[1]), float(np.sum(b**2))
    live = [j for j in range(a.shape[1]) if np.any(a[:, j])]
    for n in range(1, len(live) + 1):
        for cols in itertools.combinations(live, n):
            x = np.zeros(a.shape[1])
            x[list(cols)] = np.linalg.lstsq(a[:, cols], b, rcond=None)[0]
            res = float(np.sum((a @ x - b) ** 2))
            if (x >= 0).all() and res < best_res:
                best, best_res = x, res
    return best


def _probes(hw: Accelerator) -> tuple[Accelerator, ...]:
    """`hw` with no knobs, then with each knob alone at its `PROBE` value."""
    return (
        with_overheads(hw, Overheads(hop_latency_s=0.0)),
        with_overheads(hw, Overheads(step_overhead_s=PROBE.step_overhead_s, hop_latency_s=0.0)),
        with_overheads(hw, Overheads(hop_latency_s=PROBE.hop_latency_s)),
        with_overheads(hw, Overheads(hop_latency_s=0.0, moe_gemm=PROBE.moe_gemm)),
        with_overheads(hw, Overheads(hop_latency_s=0.0, collective=PROBE.collective)),
        with_overheads(hw, Overheads(hop_latency_s=0.0, other_vendors=PROBE.other_vendors)),
        with_overheads(hw, Overheads(hop_latency_s=0.0, seq_overhead_s=PROBE.seq_overhead_s)),
    )


@dataclass(frozen=True)
class OverheadSystem:
    """`fit_overheads`' least squares, linearised at no knobs: per row, its time's relative slope in
    each knob's linear form (step overhead, hop latency, 1 / moe_gemm - 1, 1 / collective - 1,
    1 / other_vendors - 1, sequence overhead) and its relative gap to the measured time, so that
    knobs x predict relative errors `slopes @ x - gaps`."""

    slopes: np.ndarray
    gaps: np.ndarray

    def errors(self, knobs: Overheads) -> np.ndarray:
        """Each row's linearised relative error (predicted / measured - 1) with `knobs`."""
        return self.slopes @ _linear(knobs) - self.gaps


SEQ = 5
"""Column of the sequence overhead in `OverheadSystem.slopes`."""


def _linear(knobs: Overheads) -> np.ndarray:
    """The knobs in the linear form `OverheadSystem.slopes` is read in."""
    fractions = (1 / knobs.moe_gemm - 1, 1 / knobs.collective - 1, 1 / knobs.other_vendors - 1)
    return np.array([knobs.step_overhead_s, knobs.hop_latency_s or 0.0, *fractions, knobs.seq_overhead_s])


def overhead_system(
    rows: pd.DataFrame,
    models: list[ModelArch],
    hw: Accelerator | Sequence[Accelerator],
    engine: bool = False,
    pool_map: Callable | None = None,
) -> OverheadSystem:
    """The least squares `fit_overheads` solves over `rows` (see there); with `pool_map` (an
    executor's `map`) the serving runs of every row and probe are simulated through it first."""
    known = (*STEP_METRICS, "prefill_time", *THROUGHPUT_METRICS)
    devices = [hw] * len(rows) if isinstance(hw, Accelerator) else list(hw)
    probes = {id(d): _probes(d) for d in devices}
    steps = _linear(PROBE)
    runs: dict = {}
    cases = list(zip(rows.itertuples(index=False), models, devices, strict=True))
    for row, _, _ in cases:  # before anything is simulated
        if row.metric not in known and not serving.is_serving(row):
            raise ValueError(
                f"row {row.row_id}: metric {row.metric!r}; overheads are fitted on {', '.join(known)} "
                "and serving-benchmark rows"
            )
        if row.metric == "output_token_throughput" and not engine:
            raise ValueError(f"row {row.row_id}: offline throughput needs the engine (engine=True)")
    uses = [_uses(row, model, device) for row, model, device in cases]
    if pool_map is not None and engine:
        probed = (
            (row, model, probe)
            for (row, model, device), used in zip(cases, uses, strict=True)
            for probe, use in zip(probes[id(device)], (True, *used), strict=True)
            if use
        )
        val.prefetch(probed, runs, pool_map)
    y, base, slopes = [], [], []
    for (row, model, device), used in zip(cases, uses, strict=True):
        zero, *knobbed = probes[id(device)]
        b = _seconds(row, model, zero, engine, runs)
        slopes.append(
            [
                (_seconds(row, model, probe, engine, runs) - b) / step if use else 0.0
                for probe, step, use in zip(knobbed, steps, used, strict=True)
            ]
        )
        y.append(_as_time(row, float(row.value)))
        base.append(b)
    y, base, slopes = np.array(y), np.array(base), np.array(slopes)
    return OverheadSystem(slopes / y[:, None], (y - base) / y)


def solve(system: OverheadSystem, seq_overhead_s: float | None = None) -> Overheads:
    """The add-only knobs minimising `system`'s squared relative errors; with `seq_overhead_s` given,
    the sequence overhead held at it and the other knobs fitted around it. A knob no row depends on
    stays at its default (for the hop latency, None: the link's own)."""
    slopes, gaps = system.slopes, system.gaps
    if seq_overhead_s is not None:
        gaps = gaps - slopes[:, SEQ] * seq_overhead_s
        slopes = slopes.copy()
        slopes[:, SEQ] = 0.0
    step_s, hop_s, moe_x, coll_x, vendor_x, seq_s = _nnls(slopes, gaps)
    hop = float(hop_s) if system.slopes[:, 1].any() else None
    fraction = (float(1.0 / (1.0 + x)) for x in (moe_x, coll_x, vendor_x))
    seq = float(seq_s) if seq_overhead_s is None else float(seq_overhead_s)
    return Overheads(float(step_s), hop, *fraction, seq)


def fit_overheads(
    rows: pd.DataFrame,
    models: list[ModelArch],
    hw: Accelerator | Sequence[Accelerator],
    engine: bool = False,
) -> Overheads:
    """The knobs, all of which only add time, that minimise squared relative error over measured
    `rows` (the published_measurements columns; `models[i]` is row i's model) on top of `hw`, one
    device for every row or `hw[i]` for row i (one stack's knobs fitted across GPUs).

    Rows may be per-token (`tpot`), prefill (`ttft`, `prefill_time`), throughput or serving-benchmark rows
    (`sim.fidelity.serving`); offline throughput and serving rows run the engine and need
    `engine=True`. A serving row's time under load is not linear in the knobs (queueing), so for
    those rows the fit is a linearisation at the probe values. A knob no row depends on (no TP > 1,
    no MoE model) stays at its default, which for the hop latency is the link's own. The collective
    fraction is linear through 1 / collective - 1, the factor by which it stretches each
    all-reduce's bandwidth time."""
    return solve(overhead_system(rows, models, hw, engine))


def split_by_workload(rows: pd.DataFrame, every: int = 2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fit, held out): within each stack (`source_id`), GPU and metric, the distinct workload shapes
    (input length, output length, batch size) in numeric order, every `every`-th one held out whole.
    Held-out rows ask about workloads the fit never saw, on deployments (model, TP) it did see; every
    group with two or more shapes has rows on both sides. A prefill (`ttft`) does not depend on the
    output length, so its shape leaves it out: rows that differ only there stay on one side."""
    numbers = rows[list(WORKLOAD)].apply(pd.to_numeric, errors="coerce").fillna(0)
    numbers.loc[rows["metric"] == "ttft", "output_len"] = 0
    shape = numbers.apply(tuple, axis=1)
    held = pd.Series(False, index=rows.index)
    for _, idx in rows.groupby(["source_id", "gpu", "metric"], sort=False).groups.items():
        order = {s: i for i, s in enumerate(sorted(set(shape[idx])))}
        held[idx] = shape[idx].map(lambda s, order=order: order[s] % every == every - 1)
    return rows[~held], rows[held]


def _stacks(rows: pd.DataFrame):
    """(source_id, GPU preset or None) and that stack's rows."""
    keyed = rows.assign(preset=rows["gpu"].map(val.gpu_preset))
    for (source, preset), part in keyed.groupby(["source_id", "preset"], sort=True, dropna=False):
        yield (source, preset if isinstance(preset, str) else None), part.drop(columns="preset")


def fit_stacks(
    rows: pd.DataFrame,
    models_dir: Path | None = None,
    hardware: dict[str, Accelerator] | None = None,
    engine: bool = True,
) -> dict[tuple[str, str], StackFit]:
    """Per stack (`source_id`) and GPU preset in `rows`: the knobs fitted on top of that GPU (from
    `hardware`, else its preset). Rows `sim.fidelity.validate` would skip or could not run are left out,
    and so are rows measured faster than the GPU's physical roofline (`roofline_device`); a stack with no
    row left is left out."""
    hardware = hardware or {}
    out = {}
    for (source, preset), part in _stacks(rows):
        if preset is None:
            continue
        device = hardware.get(preset) or val.load_device(preset)
        roofline = roofline_device(device)
        use, models, impossible = [], [], []
        for i, row in enumerate(part.itertuples(index=False)):
            known = row.metric in val.NEEDS
            model = val.resolve_model(row.model, row.precision or "bf16", models_dir) if known else None
            hw = val.resolve_gpu(row.gpu, hardware) if known else None
            if val.skip_reason(row, model, hw, engine):
                continue
            try:
                build_ops(model, hw, val.row_parallelism(row))
            except ConfigError:
                continue
            if _as_time(row, float(row.value)) < _seconds(row, model, roofline, engine, {}):
                impossible.append(row.row_id)
                continue
            use.append(i)
            models.append(model)
        if use:
            knobs = fit_overheads(part.iloc[use], models, device, engine)
            out[(source, preset)] = StackFit(knobs, len(use), tuple(impossible))
    return out


def validate_stacks(
    rows: pd.DataFrame,
    knobs: dict[tuple[str, str], StackFit],
    models_dir: Path | None = None,
    hardware: dict[str, Accelerator] | None = None,
    engine: bool = True,
) -> pd.DataFrame:
    """`sim.fidelity.validate.validate` of `rows`, each stack on its GPU with that stack's fitted knobs
    (a stack without knobs on its GPU as given); the result in the order of `rows`."""
    hardware = hardware or {}
    parts = []
    for stack, part in _stacks(rows):
        devices = dict(hardware)
        if stack in knobs:
            preset = stack[1]
            devices[preset] = with_overheads(
                hardware.get(preset) or val.load_device(preset), knobs[stack].knobs
            )
        parts.append(val.validate(part, models_dir, devices, engine))
    order = {r: i for i, r in enumerate(rows["row_id"])}
    return (
        pd.concat(parts, ignore_index=True)
        .sort_values("row_id", key=lambda s: s.map(order))
        .reset_index(drop=True)
    )


@dataclass(frozen=True)
class StepScore:
    """Median and p90 absolute error (%) of `rows` measured step rows, before and after a fit."""

    label: str
    rows: int
    before: tuple[float, float]
    after: tuple[float, float]


@dataclass(frozen=True)
class StepFit:
    """Knobs fitted on a file of measured steps, the device with them, how many rows the fit read,
    and the error on those rows and on any held out."""

    knobs: Overheads
    hw: Accelerator
    fitted_rows: int
    scores: tuple[StepScore, ...]


def read_step_rows(path: Path, models_dir: Path | None) -> tuple[pd.DataFrame, list[ModelArch]]:
    """The `STEP_METRICS` rows of a measurements file (`sim.fidelity.validate`'s format) and each row's
    model; errors name the file and the row."""
    rows = val.read_measurements(path)
    rows = rows[rows["metric"].isin(STEP_METRICS)].reset_index(drop=True)
    if rows.empty:
        raise KernelDataError(f"{path}: no {' or '.join(STEP_METRICS)} rows to fit overheads on")
    models = []
    for row in rows.itertuples(index=False):
        model = val.resolve_model(row.model, row.precision, models_dir)
        if model is None:
            raise KernelDataError(f"{path}: row {row.row_id}: unknown model {row.model!r} (see --models)")
        models.append(model)
    return rows, models


def _step_errors(rows: pd.DataFrame, models: list[ModelArch], hw: Accelerator) -> tuple[float, float]:
    """Median and p90 of |predicted / measured - 1| x 100 over step rows (no engine)."""
    measured = rows["value"].astype(float).to_numpy()
    pred = np.array(
        [
            val.predict_row(r, m, hw, engine=False).value
            for r, m in zip(rows.itertuples(index=False), models, strict=True)
        ]
    )
    e = np.abs(pred / measured - 1) * 100
    return float(np.median(e)), float(np.percentile(e, 90))


def fit_step_file(hw: Accelerator, path: Path, holdout_tp: int | None, models_dir: Path | None) -> StepFit:
    """Fit the knobs on the measured steps at `path` less those at `holdout_tp`, and score the device
    before and after on the rows fitted on and on the rows held out."""
    rows, models = read_step_rows(path, models_dir)
    tp = rows["tp"].astype(float).astype(int)
    train = (tp != holdout_tp).to_numpy() if holdout_tp else np.ones(len(rows), bool)
    if not train.any():
        raise KernelDataError(f"--holdout-tp {holdout_tp}: every --steps row has that TP; nothing to fit on")
    knobs = fit_overheads(rows[train], [m for m, keep in zip(models, train, strict=True) if keep], hw)
    refit = with_overheads(hw, knobs)
    scores = []
    for label, mask in (("fitted on", train), (f"held out (TP {holdout_tp})", ~train)):
        if mask.any():
            part, part_models = rows[mask], [m for m, keep in zip(models, mask, strict=True) if keep]
            before, after = (_step_errors(part, part_models, device) for device in (hw, refit))
            scores.append(StepScore(label, int(mask.sum()), before, after))
    return StepFit(knobs, refit, int(train.sum()), tuple(scores))
