"""What-if hardware: a preset with a few knobs turned, and the analytic answers for it.

An architect starts from a datasheet (an H100, a TPU) and turns knobs: more HBM, faster HBM, more
FLOP/s, a faster scale-up link, a smaller KV dtype, more on-chip SRAM (which holds weights first, the
rest staying in the main tier, so a larger SRAM reads more of them at its speed). Each knob is a
field of the `Accelerator`, so a turned preset is just another `Accelerator`, and every answer comes
from `sim.cost.estimate`, the same function `ctxsim estimate` calls; the cost curve against context
is `sim.studies.costcurve`'s, the same as `ctxsim cost-curve`. Nothing here draws or knows about
Dash; the hardware designer page turns its sliders into `Knobs` and hands the tables below to
`dashboard.figures`.

Cost: a device-hour is priced as the planner prices it (`sim.cost.pricing.device_hour_at_tdp_usd`): on
the basis and at the price of `answer(..., cost=CostAssumptions(...))`, by default the preset's cloud
on-demand price, or at the user's own price (`cost_assumptions`). Each device is served by a stack
profile (`hardware.stacks`, `served`), `typical` unless the user picks another, and each estimate then
carries the stack's 80% interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hardware import apply_stack, load_hardware, load_stack
from hardware.spec import Accelerator, MemoryTier
from hardware.stacks import DEFAULT_STACK, StackProfile, stack_names
from sim.cost import pricing
from sim.cost.estimate import Estimate, Memory, estimate, smallest_fit
from sim.cost.memory import MAIN_TIER, TierPlacement
from sim.cost.parallelism import Parallelism
from sim.cost.roofline import RooflineCost
from sim.scenario import CostAssumptions, deep_merge
from sim.studies.costcurve import cost_curve
from workloads import load_model
from workloads.model import ModelArch

PEAK_DTYPES = ("bf16", "fp8", "int8", "fp4")
BASIS_LABELS = {"cloud": "cloud on-demand", "tco": "TCO (buy, host, power)"}
"""The cost bases a page offers (`CostAssumptions.basis`), cloud first as the default."""


def stack_choices() -> list[str]:
    """The serving-stack profiles a page offers, the default (`typical`) first."""
    return [DEFAULT_STACK, *(name for name in stack_names() if name != DEFAULT_STACK)]


def served(hw: Accelerator, stack: str) -> tuple[Accelerator, StackProfile | None]:
    """`hw` as the stack named `stack` serves it, and the profile (None for `none`)."""
    profile = load_stack(stack)
    return apply_stack(hw, profile), profile


def own_price(value) -> float | None:
    """A "$ / device-hour" field's value as a price: None when empty, unreadable or not above 0 (the
    basis's own price then applies)."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        price = float(value)
    except (TypeError, ValueError):
        return None
    return price if math.isfinite(price) and price > 0 else None


def cost_assumptions(basis: str | None, price) -> CostAssumptions:
    """The cost a page's basis choice and "$ / device-hour" field ask for: one price for every device
    (a knob-modified device has no preset name to key a per-preset price by), else the basis's."""
    chosen = basis if basis in BASIS_LABELS else "cloud"
    return CostAssumptions(basis=chosen, per_device_hour_usd=own_price(price))


@dataclass(frozen=True)
class Knobs:
    """The fields the designer changes, in SI units. `sram_bytes` is the on-chip tier above the main
    tier (a GPU's L2), None where the main tier is itself on chip (an LPU's SRAM)."""

    memory_capacity_bytes: float
    memory_bandwidth_bytes_per_s: float
    peak_bf16_flops_per_s: float
    scale_up_bytes_per_s: float | None
    sram_bytes: float | None


def onchip_tier(hw: Accelerator) -> MemoryTier | None:
    """The cache tier just above the main tier, if the device has one."""
    idx = hw.memory.index(hw.main_tier)
    return hw.memory[idx - 1] if idx > 0 else None


def knobs_of(hw: Accelerator) -> Knobs:
    sram = onchip_tier(hw)
    return Knobs(
        memory_capacity_bytes=hw.main_tier.capacity_bytes,
        memory_bandwidth_bytes_per_s=hw.main_tier.bandwidth_bytes_per_s,
        peak_bf16_flops_per_s=hw.peak_flops.bf16,
        scale_up_bytes_per_s=hw.scale_up.bandwidth_bytes_per_s if hw.scale_up else None,
        sram_bytes=sram.capacity_bytes if sram else None,
    )


def apply_knobs(hw: Accelerator, knobs: Knobs) -> Accelerator:
    """`hw` with the knobs applied. Peak FLOP/s of the other datatypes scale with bf16, so the
    preset's fp8:bf16 ratio is kept; knobs for parts the device lacks (no scale-up link) are ignored."""
    if knobs == knobs_of(hw):
        return hw
    ratio = knobs.peak_bf16_flops_per_s / hw.peak_flops.bf16
    peaks = {
        k: getattr(hw.peak_flops, k) * ratio for k in PEAK_DTYPES if getattr(hw.peak_flops, k) is not None
    }
    tiers = {
        hw.main_tier.name: {
            "capacity_bytes": knobs.memory_capacity_bytes,
            "bandwidth_bytes_per_s": knobs.memory_bandwidth_bytes_per_s,
        }
    }
    sram = onchip_tier(hw)
    if sram is not None and knobs.sram_bytes is not None:
        tiers[sram.name] = {"capacity_bytes": knobs.sram_bytes}
    patch: dict = {"name": f"{hw.name} (modified)", "peak_flops": peaks, "memory": tiers}
    if hw.scale_up is not None and knobs.scale_up_bytes_per_s is not None:
        patch["scale_up"] = {"bandwidth_bytes_per_s": knobs.scale_up_bytes_per_s}
    return Accelerator.model_validate(deep_merge(hw.model_dump(mode="json"), patch))


def sram_memory(hw: Accelerator) -> Memory:
    """How the designer places a model: weights first in the on-chip tier above the main one (a GPU's
    L2 turned into an SRAM that holds weights), the rest in the main tier; the main tier alone where
    the device has no such tier (an LPU, whose SRAM is the main tier)."""
    sram = onchip_tier(hw)
    place = TierPlacement(weights=sram.name, weights_spill=hw.main_tier.name) if sram else MAIN_TIER
    return Memory(placement=place)


def device_hour_usd(hw: Accelerator, cost: CostAssumptions | None = None) -> float | None:
    """Dollars per device-hour on `cost`'s basis (default: the default `CostAssumptions`, the cloud
    basis), as the planner prices them."""
    return pricing.device_hour_at_tdp_usd(hw, cost or CostAssumptions())


@dataclass(frozen=True)
class Answer:
    """One design point: the estimate on `par`, and what it costs."""

    estimate: Estimate
    par: Parallelism
    device_hour_usd: float | None
    cost_basis: str | None = None  # the price's basis, to show beside every dollar figure

    @property
    def cost_per_hour_usd(self) -> float | None:
        return None if self.device_hour_usd is None else self.device_hour_usd * self.par.devices

    def _token_costs(self) -> tuple[float | None, float | None]:
        """USD per 1M input tokens (the batch's prefill time) and output tokens (the rest)."""
        hourly, e = self.cost_per_hour_usd, self.estimate
        if hourly is None or e.e2e_s <= 0:
            return None, None
        return pricing.batch_token_split_usd_per_1m(
            hourly, e.prefill_s, e.e2e_s, e.batch, e.input_tokens, e.output_tokens
        )

    @property
    def cost_per_1m_input_tokens_usd(self) -> float | None:
        return self._token_costs()[0]

    @property
    def cost_per_1m_output_tokens_usd(self) -> float | None:
        return self._token_costs()[1]

    @property
    def cost_per_request_usd(self) -> float | None:
        """Device time of one batch over its sequences: devices x $/h x end-to-end / batch."""
        hourly = self.cost_per_hour_usd
        e = self.estimate
        return None if hourly is None else pricing.usd_for_s(hourly, e.e2e_s) / e.batch


def answer(
    model: ModelArch,
    hw: Accelerator,
    input_tokens: int,
    output_tokens: int,
    batch: int,
    par: Parallelism | None = None,
    cost: CostAssumptions | None = None,
    stack: StackProfile | None = None,
) -> Answer:
    """The estimate on `par`, or on the fewest devices that hold the batch when `par` is None
    (one device when nothing searched fits; the estimate then says why), weights placed by
    `sram_memory`, priced on `cost` (its basis, or the user's own `per_device_hour_usd`; default: the
    preset's cloud on-demand price), `hw` served by `stack` (as given when None) with its interval."""
    hw = apply_stack(hw, stack)
    memory = sram_memory(hw)
    if par is None:
        step = batch * input_tokens
        par = smallest_fit(model, hw, input_tokens + output_tokens, batch, memory, step) or Parallelism()
    est = estimate(model, hw, par, input_tokens, output_tokens, batch, memory, stack)
    price = pricing.device_price(hw, cost or CostAssumptions())
    basis = price.label if price else pricing.no_price_reason(hw, cost or CostAssumptions())
    return Answer(est, par, device_hour_usd(hw, cost), basis)


def roofline_points(
    model: ModelArch, hw: Accelerator, par: Parallelism, input_tokens: int, batch: int
) -> pd.DataFrame:
    """Operators of a prefill step (the whole prompt) and of the first decode step (one token per
    sequence at the prompt's context), with arithmetic intensity (FLOPs per byte) and the FLOP/s each
    achieves. Operators with no FLOPs or no bytes (norms, embeddings, links) have no intensity to plot."""
    cost = RooflineCost(model, hw, par)
    zeros, ctx = np.zeros(batch, np.int64), np.full(batch, input_tokens, np.int64)
    prefill = cost.breakdown(np.full(batch, input_tokens, np.int64), zeros, batch).assign(phase="prefill")
    decode = cost.breakdown(np.ones(batch, np.int64), ctx, batch).assign(phase="decode")
    ops = pd.concat([prefill, decode], ignore_index=True)
    ops = ops[(ops["flops"] > 0) & (ops["bytes"] > 0) & (ops["time_s"] > 0)].copy()
    ops["intensity_flops_per_byte"] = ops["flops"] / ops["bytes"]
    ops["achieved_flops_per_s"] = ops["flops"] / ops["time_s"]
    return ops[
        [
            "phase",
            "op",
            "bound",
            "flops",
            "bytes",
            "time_s",
            "intensity_flops_per_byte",
            "achieved_flops_per_s",
        ]
    ].reset_index(drop=True)


def roof(hw: Accelerator, dtype: str) -> tuple[float, float]:
    """(peak FLOP/s for `dtype` weights, main-tier bytes/s): the datasheet roofline of one device."""
    return hw.peak_flops.for_dtype(dtype), hw.main_tier.bandwidth_bytes_per_s


def warm_up() -> None:
    """One small answer, roofline and cost curve, which compiles (or loads from numba's cache) every
    kernel the designer calls. A server calls it before forking its web workers, so that no user's
    first move pays for it in each worker."""
    model, hw = load_model("llama-3.1-8b"), load_hardware("h100-sxm")
    first = answer(model, hw, 1_000, 10, 1)
    roofline_points(model, hw, first.par, 1_000, 1)
    cost_curve(model, [hw], 10, 1_000, 100_000, max_batch=1)


def blocked(ans: Answer) -> str | None:
    """Why a design point has no latency or cost to show, or None when it runs: a prompt and output
    past the model's context limit, or weights, activations and KV that do not fit the devices
    (with the fewest devices that would hold it, when some do)."""
    e = ans.estimate
    if e.fits:
        return None
    context = e.input_tokens + e.output_tokens
    limit = e.model_max_context_tokens
    if limit is not None and context > limit:
        return (
            f"{e.input_tokens:,} prompt + {e.output_tokens:,} output tokens exceed {e.model}'s context "
            f"limit of {limit:,} tokens"
        )
    why = e.reason or f"{e.model} does not fit on {ans.par.devices} x {e.hardware}"
    if e.devices_needed and e.devices_needed != ans.par.devices:
        why += f"; it fits on {e.devices_needed} devices (tp {e.suggested_tp} x pp {e.suggested_pp})"
    return why


def max_context_tokens(e: Estimate) -> int:
    """The longest context a single sequence may have: the KV pool's tokens, capped by the model's
    context limit."""
    limit = e.model_max_context_tokens
    return e.max_context_tokens if limit is None else min(e.max_context_tokens, limit)


def on_preset_split(
    model: ModelArch,
    hw: Accelerator,
    input_tokens: int,
    output_tokens: int,
    batch: int,
    preset: Answer,
    modified: Answer,
    cost: CostAssumptions | None = None,
    stack: StackProfile | None = None,
) -> Answer | None:
    """The modified device on the preset's split, where the knobs changed the fewest devices that
    fit (None when they did not): the hardware's effect apart from the change of parallelism."""
    if modified.par == preset.par:
        return None
    return answer(model, hw, input_tokens, output_tokens, batch, preset.par, cost, stack)
