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
    # OCP Microscaling MXFP4: blocks of 32 fp4 (E2M1) elements sharing one 8-bit (E8M0) scale, 4.25
    # bits an element (OCP Microscaling Formats (MX) v1.0 spec, table "Concrete MX-compliant formats")
    "mxfp4": 4.25 / 8,
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
    hops, a tree (what NCCL picks for small, latency-bound messages) 2·ceil(log2 p).

    Where the link reaches (`sim.cost.collectives` costs a group by it): `domain_devices` devices
    reach each other over it, the scale-up domain (8 GPUs on an HGX board's NVSwitch, 72 in a GB200
    NVL72 rack); None means it spans every device a replica has (a scale-out network). `topology`
    says how: `switch`, any pair at the device's full bandwidth (NVSwitch); `mesh`, point-to-point
    links to every peer, each with bandwidth / (domain_devices - 1) (AMD Infinity Fabric, Gaudi's
    on-die Ethernet); `torus`, nearest neighbours only, along the axes of `torus` (a TPU slice's
    shape, e.g. [16, 16]; the domain is its product), the bandwidth split evenly over the 2 x axes
    links. `oversubscription` is a scale-out fat tree's taper: traffic between domains gets
    bandwidth / oversubscription (1: non-blocking, every device's NIC at full rate to any other,
    as on a rail-optimised fabric)."""

    bandwidth_bytes_per_s: BytesPerS = Field(gt=0)
    latency_s: Seconds = Field(default=2e-6, ge=0)
    algorithm: Literal["ring", "tree"] = "ring"
    domain_devices: int | None = Field(default=None, ge=1)
    topology: Literal["switch", "mesh", "torus"] = "switch"
    torus: tuple[int, ...] | None = Field(default=None, min_length=1, max_length=3)
    oversubscription: float = Field(default=1.0, ge=1)
    source: str = ""

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if (self.topology == "torus") != (self.torus is not None):
            raise ValueError("torus: give the torus shape exactly when topology is torus")
        if self.torus is not None:
            if any(k < 1 for k in self.torus):
                raise ValueError(f"torus: every axis needs at least 1 device, got {list(self.torus)}")
            if self.domain_devices is not None and self.domain_devices != math.prod(self.torus):
                raise ValueError(
                    f"domain_devices ({self.domain_devices}) must equal the torus's "
                    f"{math.prod(self.torus)} devices"
                )
        if self.topology == "mesh" and self.domain_devices is None:
            raise ValueError("domain_devices: a mesh needs its size (each peer gets 1/(size-1))")
        return self

    @property
    def domain(self) -> int | None:
        """Devices that reach each other over this link (None: unbounded)."""
        return math.prod(self.torus) if self.torus is not None else self.domain_devices

    def allreduce_hops(self, devices: int) -> int:
        if devices <= 1:
            return 0
        return 2 * (devices - 1) if self.algorithm == "ring" else 2 * math.ceil(math.log2(devices))


class PeakFlops(Frozen):
    """Dense (not 2:4 sparse) peak FLOP/s per datatype; None where the device has no such unit.
    `vector` is the rate of the general-purpose (non-matrix) units in half precision, where element-wise
    work such as dequantising a quantised KV cache runs (CUDA cores on NVIDIA GPUs)."""

    bf16: FlopsPerS = Field(gt=0)
    fp8: FlopsPerS | None = Field(default=None, gt=0)
    int8: FlopsPerS | None = Field(default=None, gt=0)
    fp4: FlopsPerS | None = Field(default=None, gt=0)
    vector: FlopsPerS | None = Field(default=None, gt=0)
    source: str = ""

    def unit_for(self, dtype: str) -> str:
        """The unit a GEMM with weights of `dtype` runs on: its own if the device has one (MXFP4 on
        the fp4 unit), else bf16 (weight-only quantisation dequantises into bf16 math)."""
        unit = "fp4" if dtype == "mxfp4" else dtype
        return unit if unit in ("fp8", "int8", "fp4") and getattr(self, unit) is not None else "bf16"

    def for_dtype(self, dtype: str) -> float:
        """The rate a GEMM with weights of `dtype` runs at, on `unit_for(dtype)`."""
        return getattr(self, self.unit_for(dtype))


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

    gemm / gemm_fp8 / gemm_fp4: compute leg of weight GEMMs (projections, FFN, experts, LM head) at
    the bf16, the fp8/int8 or the fp4 peak (a device without a `gemm_fp4` curve uses `gemm_fp8`'s);
    attention: compute leg of attention (FLOPs grow with sequence length x batch); memory: memory
    leg of every non-attention operator (weights, activations); attention_memory: memory leg of
    attention (KV reads); link: bytes a device sends per collective."""

    gemm: Curve | None = None
    gemm_fp8: Curve | None = None
    gemm_fp4: Curve | None = None
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
    framework's scheduling, sampling and launch gaps, which no kernel measurement sees) and
    `seq_overhead_s` once per sequence a step runs (the framework's per-request work around the
    kernels: preparing its inputs and block tables, sampling and detokenising its token, streaming
    it out: profiling vLLM 0.5 serving Llama 3 8B on one H100, its team found the HTTP API server
    taking 33% of the execution time and scheduling and input preparation 29%,
    blog.vllm.ai/2024/09/05/perf-update.html). `moe_gemm` is
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
    seq_overhead_s: Seconds = Field(default=0.0, ge=0)
    moe_gemm: float = Field(default=1.0, gt=0, le=1)
    collective: float = Field(default=1.0, gt=0, le=1)
    curves: Curves = Curves()
    calibration: Calibration | None = None
    stack: str = ""
    source: str = ""


class Power(Frozen):
    """What a device draws: `idle_fraction` x TDP whenever it is on, plus a dynamic part that follows
    what each operator keeps busy, (TDP - idle) x min(1, compute_fraction x u_c + memory_fraction x u_m),
    where u_c and u_m are the shares of the operator's time its compute leg (FLOPs over the achieved
    FLOP rate) and its memory leg (bytes over the achieved bandwidth) are active. So a compute-bound
    step draws up to the TDP and a memory-bound decode step far less, whatever the share of time a
    step is running (see `sim.cost.pricing.power_w`).

    Defaults, measured on an H200 SXM (700 W TDP) and used as a transfer where a preset has no figures
    of its own: idle 80.3 W, 0.115 of TDP (http://api.serialalice.pt/alice-benchmark, "80.3 W idle vs
    592.8 W at load", nvidia-smi under vLLM); memory-bound decode draws at most 300 W across GQA, MLA,
    Gated DeltaNet and Mamba2 models (Ma et al. 2026, "The Illusion of Power Capping in LLM Decode",
    arXiv:2605.11999: "decode draws only 137-300 W on a 700 W GPU"), so a saturated memory leg draws
    (300 - 80.3) / (700 - 80.3) = 0.355 of the dynamic range; a saturated compute leg draws all of it
    (the TDP is the board's sustained limit under full compute load; the same benchmark page measures
    H100 SXM up to 680 W of 700 W under vLLM load)."""

    tdp_w: Watts = Field(gt=0)
    idle_fraction: float = Field(default=0.115, ge=0, le=1)
    compute_fraction: float = Field(default=1.0, ge=0, le=1)
    memory_fraction: float = Field(default=0.355, ge=0, le=1)
    source: str = ""


_DATE = r"^\d{4}-\d{2}(-\d{2})?$"


class CloudPrice(Frozen):
    """A published on-demand rental price: `provider` charges `usd_per_hour` for `offering`, which has
    `devices` of these devices, so a device-hour costs usd_per_hour / devices (an 8-GPU instance at
    $49.24/h is $6.155 per GPU-hour). `date` is when the price list was read (or published, as
    `source` says), `url` the list itself."""

    provider: str = Field(min_length=1)
    offering: str = Field(min_length=1)
    usd_per_hour: float = Field(gt=0)
    devices: int = Field(default=1, ge=1)
    date: str = Field(pattern=_DATE)
    url: str = Field(min_length=1)
    source: str = ""

    @property
    def per_device_hour_usd(self) -> float:
        return self.usd_per_hour / self.devices


class Price(Frozen):
    """What a device costs, on two bases (`sim.cost.pricing`): `cloud`, a published on-demand rental
    price, and total cost of ownership from `purchase_usd` (the device alone, amortised, plus power and
    hosting). `per_hour_usd` is an hourly rate per device without a named price list (a user's own
    number); it stands in for the cloud basis. Where a basis has no public figure, `no_cloud` or
    `no_purchase` says why; every shipped preset has a figure or a reason for both."""

    purchase_usd: float | None = Field(default=None, gt=0)
    per_hour_usd: float | None = Field(default=None, gt=0)
    source: str = ""
    cloud: CloudPrice | None = None
    no_cloud: str = ""
    no_purchase: str = ""

    @model_validator(mode="after")
    def _one_hourly_rate(self) -> Self:
        if self.per_hour_usd is not None and self.cloud is not None:
            raise ValueError("give per_hour_usd or cloud, not both: both are the cloud basis")
        return self

    @property
    def cloud_per_device_hour_usd(self) -> float | None:
        """The cloud basis's USD per device-hour: the price list's, else `per_hour_usd`."""
        return self.cloud.per_device_hour_usd if self.cloud is not None else self.per_hour_usd


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
