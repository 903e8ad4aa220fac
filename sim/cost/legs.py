"""How fast each kind of kernel runs on a device: the rate of its compute and memory legs (datasheet
peak x measured efficiency, or the bare peak when an efficiency curve gives the fraction), the curves,
and the fixed overhead per call. Activations are bf16 and attention runs at the bf16 rate; GEMMs run
at the weight dtype's rate when the device has that unit (fp8, int8, fp4), at bf16 otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from hardware.spec import BYTES_PER_ELEMENT, Accelerator, Curve
from sim.cost.parallelism import ConfigError

ACT_BYTES = BYTES_PER_ELEMENT["bf16"]

KernelKind = Literal["gemm", "attention", "memory", "link"]


@dataclass(frozen=True)
class KernelLegs:
    """How one kind of kernel runs on a device: rate of each roofline leg (peak x scalar efficiency,
    or the bare peak when a curve gives the fraction), the curves, and the fixed overhead per call."""

    rate_f: float
    curve_f: Curve | None
    rate_b: float
    curve_b: Curve | None
    overhead_s: float
    power_c: float = 0.0
    power_m: float = 0.0


def overhead_only(overhead_s: float) -> KernelLegs:
    """Legs of an operator that moves no data and does no arithmetic: it takes `overhead_s`."""
    return KernelLegs(np.inf, None, np.inf, None, overhead_s)


def _power_shares(hw: Accelerator) -> tuple[float, float]:
    """Shares of the dynamic power a fully active compute leg and memory leg draw (0 without a power
    figure)."""
    if hw.power is None:
        return 0.0, 0.0
    return hw.power.compute_fraction, hw.power.memory_fraction


def _leg(peak: float, scalar: float, curve: Curve | None) -> tuple[float, Curve | None]:
    return (peak, curve) if curve is not None else (peak * scalar, None)


def kernel_legs(
    hw: Accelerator, kind: KernelKind, dtype: str = "bf16", bw: float | None = None
) -> KernelLegs:
    """Rates and curves for a `kind` kernel whose weights (GEMM) are `dtype`, and the shares of dynamic
    power its legs draw; its memory leg reads at `bw` (the datasheet bandwidth of the tier its bytes
    sit on; the main tier's when None). `link` has no compute leg and no op overhead (its latency is
    per hop, added by the caller); a collective's bytes pass through memory as well as the link, so
    its leg draws the memory share."""
    eff, cv = hw.efficiency, hw.efficiency.curves
    bw = bw or hw.main_tier.bandwidth_bytes_per_s
    power = _power_shares(hw)
    if kind == "link":
        link = hw.link()
        if link is None:
            raise ConfigError(f"{hw.name} has no scale_up or scale_out link")
        bw_link = link.bandwidth_bytes_per_s * eff.collective
        return KernelLegs(np.inf, None, *_leg(bw_link, eff.link, cv.link), 0.0, 0.0, power[1])
    if kind == "gemm":
        unit = hw.peak_flops.unit_for(dtype)
        peak = getattr(hw.peak_flops, unit)
        curve = cv.gemm if unit == "bf16" else cv.gemm_fp8
        if unit == "fp4" and cv.gemm_fp4 is not None:
            curve = cv.gemm_fp4
        return KernelLegs(
            *_leg(peak, eff.compute, curve), *_leg(bw, eff.memory, cv.memory), eff.op_overhead_s, *power
        )
    if kind == "attention":
        return KernelLegs(
            *_leg(hw.peak_flops.bf16, eff.compute, cv.attention),
            *_leg(bw, eff.memory, cv.attention_memory),
            eff.op_overhead_s,
            *power,
        )
    return KernelLegs(
        *_leg(hw.peak_flops.bf16, eff.compute, None), *_leg(bw, eff.memory, cv.memory), eff.op_overhead_s,
        *power,
    )
