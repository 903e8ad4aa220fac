"""What the machine is: an accelerator with memory tiers, links, peaks and measured derates.

Think of a device as a kitchen: the FLOP/s are the cooks, each memory tier a pantry further from the
stove (SRAM on the counter, HBM in the room, host DRAM down the hall over PCIe), and the links are the
hatches to the neighbouring kitchens. Datasheet peaks and measured efficiencies are separate fields
so a what-if study can change one without touching the other. Every quantity is stored in SI units;
files may use human units ("80 GB", "3.35 TB/s", "989 TFLOPS").
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, model_validator

from hardware.base import Frozen
from hardware.units import parse_bandwidth, parse_bytes, parse_flops, parse_seconds, parse_watts

Bytes = Annotated[float, BeforeValidator(parse_bytes)]
BytesPerS = Annotated[float, BeforeValidator(parse_bandwidth)]
FlopsPerS = Annotated[float, BeforeValidator(parse_flops)]
Seconds = Annotated[float, BeforeValidator(parse_seconds)]
Watts = Annotated[float, BeforeValidator(parse_watts)]

# The dtypes ctxsim knows, with their storage size: the one list that the schema's `DType` and the
# CLI's choices are derived from.
BYTES_PER_ELEMENT: dict[str, float] = {
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "fp4": 0.5,
    "int4": 0.5,
    "int2": 0.25,
}
DType = Literal[tuple(BYTES_PER_ELEMENT)]


class MemoryTier(Frozen):
    """One level of memory. `cache=True` marks a hardware-managed cache (GPU L2) that holds nothing
    by placement; the first non-cache tier holds weights and KV, lower tiers take offloaded KV."""

    name: str
    capacity_bytes: Bytes = Field(gt=0)
    bandwidth_bytes_per_s: BytesPerS = Field(gt=0)
    cache: bool = False
    source: str = ""


class Link(Frozen):
    """A link out of one device; bandwidth is per direction (what a ring all-reduce is bound by).

    `latency_s` is paid per hop of a collective: a ring all-reduce over p devices makes 2(p-1)
    hops, a tree (what NCCL picks for small, latency-bound messages) 2·ceil(log2 p)."""

    bandwidth_bytes_per_s: BytesPerS = Field(gt=0)
    latency_s: Seconds = Field(default=2e-6, ge=0)
    algorithm: Literal["ring", "tree"] = "ring"
    source: str = ""

    def allreduce_hops(self, devices: int) -> int:
        if devices <= 1:
            return 0
        return 2 * (devices - 1) if self.algorithm == "ring" else 2 * math.ceil(math.log2(devices))


class PeakFlops(Frozen):
    """Dense (not 2:4 sparse) peak FLOP/s per datatype; None where the device has no such unit."""

    bf16: FlopsPerS = Field(gt=0)
    fp8: FlopsPerS | None = Field(default=None, gt=0)
    int8: FlopsPerS | None = Field(default=None, gt=0)
    fp4: FlopsPerS | None = Field(default=None, gt=0)
    source: str = ""

    def for_dtype(self, dtype: str) -> float:
        """The rate a GEMM with weights of `dtype` runs at: its own unit if the device has one, else
        bf16 (weight-only quantisation dequantises into bf16 math)."""
        rate = getattr(self, dtype, None) if dtype in ("fp8", "int8", "fp4") else None
        return rate if rate is not None else self.bf16


# The most knots a Curve may have: the cost kernels store each curve inline in a fixed-width row,
# and calibration merges neighbouring knots until a fitted curve fits.
MAX_CURVE_KNOTS = 16


class Curve(Frozen):
    """Efficiency (fraction of the datasheet peak) against the work one kernel call does: FLOPs for a
    compute leg, bytes for a memory or link leg. Small kernels leave much of a GPU idle, large ones
    approach a plateau; the curve is piecewise linear in log10(size) and held flat outside
    [size[0], size[-1]], the measured range (`sim.fidelity.calibrate` flags queries that fall outside it).

    Because the values are fractions of peak and the sizes are work, not time, a curve measured on
    one device carries over to a what-if device with more FLOP/s or bandwidth: the same kernel is
    assumed to reach the same fraction of the new peak."""

    size: tuple[float, ...] = Field(min_length=1, max_length=MAX_CURVE_KNOTS)
    efficiency: tuple[float, ...] = Field(min_length=1, max_length=MAX_CURVE_KNOTS)
    source: str = ""

    @model_validator(mode="after")
    def _knots(self) -> Self:
        if len(self.size) != len(self.efficiency):
            raise ValueError(f"size ({len(self.size)} knots) and efficiency ({len(self.efficiency)}) differ")
        rising = all(b > a for a, b in zip(self.size, self.size[1:], strict=False))
        if any(s <= 0 for s in self.size) or not rising:
            raise ValueError(f"size must be positive and strictly increasing, got {list(self.size)}")
        if any(not 0 < e <= 1 for e in self.efficiency):
            raise ValueError(f"efficiency values must lie in (0, 1], got {list(self.efficiency)}")
        return self

    def covers(self, size: float) -> bool:
        """Whether `size` lies inside the measured range (no extrapolation)."""
        return self.size[0] <= size <= self.size[-1]


class Curves(Frozen):
    """Optional size-dependent efficiencies; a leg without a curve uses the scalar efficiency.

    gemm / gemm_fp8: compute leg of weight GEMMs (projections, FFN, experts, LM head) at the bf16 or
    the fp8/int8 peak; attention: compute leg of attention (FLOPs grow with sequence length x batch);
    memory: memory leg of every non-attention operator (weights, activations); attention_memory:
    memory leg of attention (KV reads); link: bytes a device sends per collective."""

    gemm: Curve | None = None
    gemm_fp8: Curve | None = None
    attention: Curve | None = None
    memory: Curve | None = None
    attention_memory: Curve | None = None
    link: Curve | None = None


class Calibration(Frozen):
    """Where fitted efficiencies came from: the measured device's peaks (what the fractions were taken
    of) and the measurement files. A device whose peaks differ is using them as a transfer."""

    device: str
    peak_bf16_flops_per_s: FlopsPerS = Field(gt=0)
    bandwidth_bytes_per_s: BytesPerS = Field(gt=0)
    link_bytes_per_s: BytesPerS | None = Field(default=None, gt=0)
    data: tuple[str, ...] = ()


class Efficiency(Frozen):
    """Measured fractions of peak a real kernel reaches; 1.0 means the datasheet roofline.
    `op_overhead_s` is paid per kernel call, `step_overhead_s` once per engine step (the serving
    framework's scheduling, sampling and launch gaps, which no kernel measurement sees). `moe_gemm` is
    the fraction of a dense GEMM's speed that a stack's grouped expert GEMMs reach on the same work
    (few tokens per expert, routing and token permutation); it divides both legs of the expert GEMMs.
    `collective` is the fraction of the link's kernel-measured bandwidth (`link` or its curve) that a
    stack's own collectives reach (its all-reduce implementation, buffer copies around it); it divides
    the bandwidth leg of every link transfer. `stack` names the serving-stack profile
    (`hardware.stacks`) these efficiencies were taken from, empty when they are the file's own."""

    compute: float = Field(default=1.0, gt=0, le=1)
    memory: float = Field(default=1.0, gt=0, le=1)
    link: float = Field(default=1.0, gt=0, le=1)
    op_overhead_s: Seconds = Field(default=0.0, ge=0)
    step_overhead_s: Seconds = Field(default=0.0, ge=0)
    moe_gemm: float = Field(default=1.0, gt=0, le=1)
    collective: float = Field(default=1.0, gt=0, le=1)
    curves: Curves = Curves()
    calibration: Calibration | None = None
    stack: str = ""
    source: str = ""


class Power(Frozen):
    tdp_w: Watts = Field(gt=0)
    idle_fraction: float = Field(default=0.3, ge=0, le=1)
    source: str = ""


class Price(Frozen):
    """Purchase price and/or an hourly rate. Without an hourly rate the cost model amortises the
    purchase price (see `sim.cost.pricing`)."""

    purchase_usd: float | None = Field(default=None, gt=0)
    per_hour_usd: float | None = Field(default=None, gt=0)
    source: str = ""


class Accelerator(Frozen):
    name: str
    vendor: str = ""
    kind: Literal["gpu", "tpu", "lpu", "other"] = "gpu"
    peak_flops: PeakFlops
    memory: tuple[MemoryTier, ...] = Field(min_length=1)
    scale_up: Link | None = None
    scale_out: Link | None = None
    efficiency: Efficiency = Efficiency()
    power: Power | None = None
    price: Price | None = None
    notes: str = ""

    @model_validator(mode="after")
    def _has_main_tier(self) -> Self:
        if all(t.cache for t in self.memory):
            raise ValueError("memory: every tier is marked cache=True; one tier must hold weights and KV")
        names = [t.name for t in self.memory]
        if len(set(names)) != len(names):
            raise ValueError(f"memory: tier names must be unique, got {names}")
        return self

    @property
    def main_tier(self) -> MemoryTier:
        """The tier that holds weights and KV (HBM on a GPU, SRAM on an LPU)."""
        return next(t for t in self.memory if not t.cache)

    def link(self, across_nodes: bool = False) -> Link | None:
        """The link a transfer leaves the device on: scale-up for a replica's collectives and pipeline
        hops (its devices share a node), scale-out for KV sent between pools (`across_nodes`, as
        disaggregated pools sit on different nodes); the other link when the device lacks the one
        preferred, None when it has neither."""
        first, second = (self.scale_out, self.scale_up) if across_nodes else (self.scale_up, self.scale_out)
        return first or second

    @property
    def offload_tiers(self) -> tuple[MemoryTier, ...]:
        """Tiers below the main one, fastest first (host DRAM, SSD)."""
        idx = self.memory.index(self.main_tier)
        return self.memory[idx + 1 :]
