"""The operator table: one row per operator of a step, in the layout the kernels in
sim/cost/_kernels.py read (FLOP and byte coefficients over the batch features, then rates, overhead,
count, link flag, calls and two inline efficiency curves). `OpBuilder` appends rows; `build_ops` in
sim/cost/ops.py fills it for a model, `FixedCost` with a single constant row."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hardware.spec import MAX_CURVE_KNOTS, Curve
from sim.cost import _kernels as K
from sim.cost.legs import KernelLegs


@dataclass(frozen=True)
class OpTable:
    """Operators of one step: names, FLOP and byte coefficients over the batch features, and per
    operator [rate_f, rate_b, overhead_s, count, is_link]."""

    names: tuple[str, ...]
    flops_coef: np.ndarray
    bytes_coef: np.ndarray
    ops: np.ndarray
    window: int
    moe_ratio: float


def curve_columns(curve: Curve | None) -> np.ndarray:
    """A curve as it sits in an `ops` row: [knots, log10 sizes (padded), efficiencies (padded)]."""
    cols = np.zeros(K.CURVE_WIDTH)
    if curve is not None:
        n = len(curve.size)
        cols[0] = n
        cols[1 : 1 + n] = np.log10(curve.size)
        cols[1 + MAX_CURVE_KNOTS : 1 + MAX_CURVE_KNOTS + n] = curve.efficiency
    return cols


class OpBuilder:
    """Appends operators in order; the order is the order of `OpTable.names` and of every breakdown."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.f: list[np.ndarray] = []
        self.b: list[np.ndarray] = []
        self.ops: list[np.ndarray] = []

    def add(
        self,
        name,
        count,
        rate_f,
        rate_b,
        overhead,
        flops=None,
        nbytes=None,
        link=False,
        calls=1.0,
        curve_f=None,
        curve_b=None,
    ):
        f, b = np.zeros(K.N_FEATURES), np.zeros(K.N_FEATURES)
        for idx, v in (flops or {}).items():
            f[idx] += v
        for idx, v in (nbytes or {}).items():
            b[idx] += v
        self.names.append(name)
        self.f.append(f)
        self.b.append(b)
        head = [rate_f, rate_b, overhead, float(count), 1.0 if link else 0.0, float(calls)]
        self.ops.append(np.concatenate([head, curve_columns(curve_f), curve_columns(curve_b)]))

    def add_kernel(self, name, count, legs: KernelLegs, calls, flops=None, nbytes=None):
        """An operator that runs as `calls` kernels (fused QKV + O, gate-up + down): the overhead is paid
        per call and curves are read at the work of one call."""
        self.add(
            name,
            count,
            legs.rate_f,
            legs.rate_b,
            legs.overhead_s * calls,
            flops,
            nbytes,
            calls=calls,
            curve_f=legs.curve_f,
            curve_b=legs.curve_b,
        )

    def build(self, window: int, moe_ratio: float) -> OpTable:
        return OpTable(
            tuple(self.names), np.array(self.f), np.array(self.b), np.array(self.ops), window, moe_ratio
        )
