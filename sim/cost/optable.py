"""The operator table: one row per operator of a step, in the layout the kernels in
sim/cost/_kernels.py read (FLOP and byte coefficients over the batch features, then rates, overhead,
count, link flag, calls, two inline efficiency curves, the shares of dynamic power each leg draws
and the overhead per sequence of the batch). `OpBuilder` appends rows; `build_ops` in sim/cost/ops.py
fills it for a model, `FixedCost` with a single constant row."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from hardware.spec import MAX_CURVE_KNOTS, Curve
from sim.cost import _kernels as K
from sim.cost.legs import KernelLegs


@dataclass(frozen=True)
class OpTable:
    """Operators of one step: names, FLOP and byte coefficients over the batch features, and per
    operator [rate_f, rate_b, overhead_s, count, is_link]; `spill_from` is the batch's full-attention
    KV tokens the KV tier holds before the rest spills (infinite when nothing spills)."""

    names: tuple[str, ...]
    flops_coef: np.ndarray
    bytes_coef: np.ndarray
    ops: np.ndarray
    window: int
    moe_ratio: float
    spill_from: float = np.inf
    shared: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    """Per operator, whether the data-parallel attention ranks of a step share it (the routed
    experts and their token exchange): a rank's batch pays its own operators, and the shared ones
    are paid once on every rank's tokens together (`CostModel.group_step_into`)."""

    @property
    def kernel_args(self) -> tuple:
        """The table as the kernels in sim/cost/_kernels.py take it, after the batch."""
        return self.window, self.moe_ratio, self.spill_from, self.flops_coef, self.bytes_coef, self.ops


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
        self.shared: list[bool] = []

    def add(
        self,
        name: str,
        count: float,
        legs: KernelLegs,
        *,
        flops: dict | None = None,
        nbytes: dict | None = None,
        link: bool = False,
        calls: float = 1.0,
        per_seq_s: float = 0.0,
        shared: bool = False,
    ) -> None:
        """An operator run `count` times per step at the rates and curves of `legs`, paying
        `legs.overhead_s` and `per_seq_s` per sequence of the batch each time; `flops` and `nbytes`
        map batch features to coefficients, `link` marks communication, `calls` is how many
        kernels the operator's work is split over and `shared` marks work the attention ranks share
        (`OpTable.shared`)."""
        f, b = np.zeros(K.N_FEATURES), np.zeros(K.N_FEATURES)
        for idx, v in (flops or {}).items():
            f[idx] += v
        for idx, v in (nbytes or {}).items():
            b[idx] += v
        self.names.append(name)
        self.shared.append(shared)
        self.f.append(f)
        self.b.append(b)
        head = [legs.rate_f, legs.rate_b, legs.overhead_s, float(count), 1.0 if link else 0.0, float(calls)]
        tail = [legs.power_c, legs.power_m, per_seq_s]
        self.ops.append(
            np.concatenate([head, curve_columns(legs.curve_f), curve_columns(legs.curve_b), tail])
        )

    def add_kernel(
        self,
        name: str,
        count: float,
        legs: KernelLegs,
        calls: float,
        *,
        flops: dict | None = None,
        nbytes: dict | None = None,
        shared: bool = False,
    ) -> None:
        """An operator that runs as `calls` kernels (fused QKV + O, gate-up + down): the overhead is paid
        per call and curves are read at the work of one call."""
        paid_per_call = replace(legs, overhead_s=legs.overhead_s * calls)
        self.add(name, count, paid_per_call, flops=flops, nbytes=nbytes, calls=calls, shared=shared)

    def build(self, window: int, moe_ratio: float, spill_from: float = np.inf) -> OpTable:
        return OpTable(
            tuple(self.names),
            np.array(self.f),
            np.array(self.b),
            np.array(self.ops),
            window,
            moe_ratio,
            float(spill_from),
            np.array(self.shared, bool),
        )
