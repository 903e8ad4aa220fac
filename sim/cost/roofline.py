"""Step cost of one forward pass of a batch on one replica: a per-operator roofline.

For each operator the model contributes FLOPs and bytes as linear functions of a few batch features
(see sim/cost/_kernels.py, and sim/cost/ops.py for the operators); the device contributes rates (peak
x efficiency, sim/cost/legs.py) and a fixed overhead. An operator's time is max(FLOPs / rate, bytes /
bandwidth) + overhead, summed over operators (per operator max, not max of sums), plus tensor-parallel
all-reduces over the scale-up link. Prefill, chunked prefill and decode are the same function with
different (new tokens, prior context) pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

from hardware.spec import Accelerator
from sim.cost import _kernels as K
from sim.cost.legs import overhead_only
from sim.cost.memory import MemoryPlan
from sim.cost.ops import build_ops
from sim.cost.optable import OpBuilder, OpTable
from sim.cost.parallelism import Parallelism
from workloads.model import ModelArch


@dataclass(frozen=True)
class StepTime:
    """A step's seconds: in all, in compute-bound, memory-bound and link operators, and active
    seconds (each operator's time weighted by the share of the device's dynamic power it draws; see
    `sim.cost.pricing.power_w`)."""

    total_s: float
    compute_bound_s: float
    memory_bound_s: float
    link_s: float
    active_s: float = 0.0

    @property
    def bound(self) -> Literal["compute", "memory"]:
        return "compute" if self.compute_bound_s >= self.memory_bound_s else "memory"


class CostModel:
    """Step times for one replica. `RooflineCost(model, hw, par)` in production; `FixedCost(step_s)`
    in tests (every step takes the same time)."""

    source: Literal["roofline", "fixed"] = "roofline"

    def __init__(self, table: OpTable, micro_batches: int = 1):
        self.table = table
        self._tables: list[OpTable | None] = [table] + [None] * (micro_batches - 1)
        self._by_m: list[tuple | None] = [table.kernel_args] + [None] * (micro_batches - 1)
        self._single = table.kernel_args if micro_batches == 1 else None  # the hot paths' shortcut

    def _table(self, n: int) -> OpTable:
        """The table for a batch of n sequences: split into min(n, micro_batches) micro-batches that
        follow each other through the pipeline (`micro_batch`), built the first time it is asked for
        (a deep pipeline has one per micro-batch count, and most uses need one or two)."""
        m = min(max(n, 1), len(self._tables))
        table = self._tables[m - 1]
        if table is None:
            table = self._tables[m - 1] = micro_batch(self.table, m)
            self._by_m[m - 1] = table.kernel_args
        return table

    def _for(self, n: int) -> tuple:
        """The kernel arguments for a batch of n sequences (`_table`)."""
        args = self._by_m[min(max(n, 1), len(self._by_m)) - 1]
        return self._table(n).kernel_args if args is None else args

    def step(self, new: np.ndarray, ctx: np.ndarray, sampled: int) -> StepTime:
        """One step where sequence i processes new[i] tokens after ctx[i] tokens of prior context and
        `sampled` sequences produce a token."""
        acc = new_acc()
        self.step_into(np.asarray(new, np.int64), np.asarray(ctx, np.int64), sampled, acc)
        return StepTime(*acc)

    def step_into(self, new: np.ndarray, ctx: np.ndarray, sampled: int, acc: np.ndarray) -> float:
        """`step()` for the engine's hot path: adds [total, compute-bound, memory-bound, link, active]
        into acc (`new_acc()`) and returns the total (new and ctx int64 arrays).

        With pipeline stages the batch's work is split evenly over its micro-batches, but a sequence
        is not split: its micro-batch carries at least all of its own tokens through every stage. So
        the step takes at least what its heaviest sequence takes alone, and adding sequences to a
        batch never makes the step faster than that sequence's own pass."""
        n = len(new)
        if self._single is not None:
            return K.step_time_into(new, ctx, float(sampled), *self._single, acc)
        if n <= 1:
            return K.step_time_into(new, ctx, float(sampled), *self._for(n), acc)
        split, alone = new_acc(), new_acc()
        t_split = K.step_time_into(new, ctx, float(sampled), *self._for(n), split)
        i = int(np.argmax(new))
        one = slice(i, i + 1)
        t_alone = K.step_time_into(new[one], ctx[one], float(min(sampled, 1)), *self._by_m[0], alone)
        acc += alone if t_alone > t_split else split
        return max(t_split, t_alone)

    def group_step_into(self, batches: list, ranks: int, accs: list[np.ndarray]) -> float:
        """One step of `ranks` data-parallel attention ranks stepping together (`sim.engine.lockstep`):
        `batches` holds (new, ctx, sampled) of each rank with work; the others run an empty batch.
        A rank's own operators take its own batch; the operators the ranks share (`OpTable.shared`:
        the routed experts and their token exchange, costed per rank as if every rank brought the
        same batch) take the mean rank's features, so they do the work of all the ranks' tokens
        together. The step lasts as long as the slowest rank's own operators plus the shared ones.
        accs[i] gets rank i's time split, and as its total the whole step. With pipeline stages every
        rank takes the micro-batch split of the largest batch (`_table`), and no rank's heaviest
        sequence is priced alone (`step_into`)."""
        table = self._table(max(len(new) for new, _, _ in batches))
        window, moe_ratio, spill_from, flops_coef, bytes_coef, ops = table.kernel_args
        shared = _shared(table)
        own = [
            K.batch_features(new, ctx, float(sampled), window, moe_ratio, spill_from)
            for new, ctx, sampled in batches
        ]
        mean = np.sum(own, axis=0) / ranks
        mean[K.ONE] = 1.0
        if moe_ratio > 0:
            mean[K.MOE_TOUCHED] = 1.0 - (1.0 - moe_ratio) ** mean[K.TOKENS]
        shared_acc = new_acc()
        t_shared = K.ops_time_of(mean, flops_coef, bytes_coef, ops, shared, True, shared_acc)
        times = [
            K.ops_time_of(x, flops_coef, bytes_coef, ops, shared, False, acc)
            for x, acc in zip(own, accs, strict=True)
        ]
        dt = max(times) + t_shared
        for t, acc in zip(times, accs, strict=True):
            acc += shared_acc
            acc[K.TOTAL] += dt - t - t_shared  # waiting for the slowest rank
        return dt

    def group_decode_span(
        self, ctxs: list[np.ndarray], ranks: int, t0: float, t_stop: float, k_max: int, accs: np.ndarray
    ) -> tuple[int, float]:
        """`decode_span` for `ranks` attention ranks in step, those in `ctxs` decoding sequences of
        these contexts (`group_step_into` a step at a time); accs[i] ((ranks with work, N_ACC))
        accumulates rank i's split."""
        table = self._table(max(len(c) for c in ctxs))
        window, moe_ratio, spill_from, flops_coef, bytes_coef, ops = table.kernel_args
        starts = np.cumsum([0] + [len(c) for c in ctxs]).astype(np.int64)
        ctx = np.concatenate(ctxs).astype(np.int64)
        return K.group_decode_span(
            ctx, starts, float(ranks), window, moe_ratio, spill_from, flops_coef, bytes_coef, ops,
            _shared(table), t0, t_stop, k_max, accs,
        )

    def decode_span(
        self, ctx: np.ndarray, t0: float, t_stop: float, k_max: int, acc: np.ndarray
    ) -> tuple[int, float]:
        """Advance decode steps (see sim/cost/_kernels.py::decode_span); acc (`new_acc()`) accumulates
        the time split. ctx is an int64 array."""
        if len(acc) != K.N_ACC:
            raise ValueError(f"acc must hold {K.N_ACC} slots (new_acc()), got {len(acc)}")
        args = self._single or self._for(len(ctx))
        return K.decode_span(ctx, *args, t0, t_stop, k_max, acc)

    def breakdown(self, new, ctx, sampled: int) -> pd.DataFrame:
        """One row per operator: FLOPs, bytes, times, active seconds (time weighted by the share of
        dynamic power drawn), bound, for reports and the dashboard. With
        efficiency curves, `efficiency_compute`/`efficiency_memory` are the fractions of peak used and
        `extrapolated` marks an operator whose work per call lies outside a curve's measured range."""
        t = self._table(len(new))
        x = K.batch_features(
            np.asarray(new, np.int64),
            np.asarray(ctx, np.int64),
            float(sampled),
            t.window,
            t.moe_ratio,
            t.spill_from,
        )
        count = t.ops[:, K.COUNT]
        flops_one = t.flops_coef @ x
        bytes_one = t.bytes_coef @ x
        calls = t.ops[:, K.CALLS]
        eff_f, out_f = _curve_eval(t.ops, K.CURVE_F, flops_one / calls)
        eff_b, out_b = _curve_eval(t.ops, K.CURVE_B, bytes_one / calls)
        flops, nbytes = flops_one * count, bytes_one * count
        compute_s = flops / (t.ops[:, K.RATE_F] * eff_f)
        memory_s = nbytes / (t.ops[:, K.RATE_B] * eff_b)
        overhead_s = t.ops[:, K.OVERHEAD] + t.ops[:, K.SEQ_OVERHEAD] * x[K.SEQS]
        time_s = np.maximum(compute_s, memory_s) + overhead_s * count
        active_s = np.minimum(time_s, t.ops[:, K.POWER_C] * compute_s + t.ops[:, K.POWER_M] * memory_s)
        link = t.ops[:, K.IS_LINK] > 0
        idle = (compute_s == 0) & (memory_s == 0)
        kind = np.where(compute_s >= memory_s, "compute", "memory")
        bound = np.where(link, "link", np.where(idle, "overhead", kind))
        return pd.DataFrame(
            {
                "op": t.names,
                "count": count,
                "flops": flops,
                "bytes": nbytes,
                "compute_s": compute_s,
                "memory_s": memory_s,
                "time_s": time_s,
                "active_s": active_s,
                "bound": bound,
                "efficiency_compute": eff_f,
                "efficiency_memory": eff_b,
                "extrapolated": out_f | out_b,
            }
        )


ACC_ACTIVE = K.ACTIVE
"""The accumulator slot of active seconds."""


def _shared(table: OpTable) -> np.ndarray:
    """The table's shared-operator flags, all False for a table built without them (`FixedCost`)."""
    return table.shared if len(table.shared) else np.zeros(len(table.ops), bool)


def new_acc() -> np.ndarray:
    """An accumulator for `step_into` and `decode_span`: [total, compute-bound, memory-bound, link,
    active] seconds."""
    return np.zeros(K.N_ACC)


def _curve_eval(ops: np.ndarray, start: int, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each operator's curve value at `size` (1.0 without a curve) and whether `size` is outside the
    curve's knots (an extrapolation); operators doing no work on that leg are never flagged."""
    eff = np.array([K.curve_at(ops, o, start, float(size[o])) for o in range(len(size))])
    knots = ops[:, start].astype(int)
    has = (knots > 0) & (size > 0)
    lx = np.log10(np.where(size > 0, size, 1.0))
    lo = ops[:, start + 1]
    hi = ops[np.arange(len(size)), start + np.maximum(knots, 1)]
    tol = 1e-9
    return eff, has & ((lx < lo - tol) | (lx > hi + tol))


ONE_DEVICE = Parallelism()


def micro_batch(table: OpTable, m: int) -> OpTable:
    """The table a batch costs when split into m micro-batches that follow each other through the
    pipeline stages: every coefficient but the weights read once a step (`ONE`) and the
    touched-expert share divided by m. A batch's step then takes m x (each stage's time for one
    micro-batch + a hop), the time between its tokens once the pipeline is full (`sim.cost.pipeline`):
    every stage reads its weights once per micro-batch, so splitting a memory-bound decode batch
    costs weight reads, and a batch of fewer sequences than stages leaves stages idle."""
    if m == 1:
        return table
    scale = np.full(K.N_FEATURES, 1.0 / m)
    scale[[K.ONE, K.MOE_TOUCHED]] = 1.0
    return replace(table, flops_coef=table.flops_coef * scale, bytes_coef=table.bytes_coef * scale)


def RooflineCost(
    model: ModelArch, hw: Accelerator, par: Parallelism = ONE_DEVICE, plan: MemoryPlan | None = None
) -> CostModel:
    """The step cost of one scheduler's batch on a replica split as `par`, each operator's bytes read
    from the tier the replica's memory `plan` places them on (everything on the main tier without a
    plan); with pipeline stages the batch runs as up to `par.pp` micro-batches in flight at once
    (vLLM's batch queue of pp batches)."""
    return CostModel(build_ops(model, hw, par, plan), micro_batches=par.pp)


def FixedCost(step_s: float) -> CostModel:
    """Every step takes `step_s`, whatever the batch: for engine tests with hand-checkable times."""
    bld = OpBuilder()
    bld.add("fixed", 1, overhead_only(step_s))
    cost = CostModel(bld.build(0, 0.0))
    cost.source = "fixed"
    return cost
