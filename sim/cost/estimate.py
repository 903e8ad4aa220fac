"""The analytic answer: does a model fit a device group, and how fast are prefill and decode?

No queueing here: one batch of identical requests, prefilled in one step, then decoded together.
`ctxsim estimate` prints this; the dashboard's hardware designer calls the same function.

Given a serving-stack profile (`hardware.stacks`), the device is served by it and every latency and
throughput comes with the profile's 80% interval (`*_lo*`, `*_hi*`): the prefill takes the band of
TTFT in the prefill regime, each decode step that of TPOT in the decode regime, the end-to-end time
their sum at each edge, and the throughput the band of throughput in the regime that takes most of
the time. Without a profile, or where it has no band, the interval is None.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hardware.spec import Accelerator
from hardware.stacks import StackProfile, apply_stack
from sim.cost.memory import memory_plan
from sim.cost.parallelism import Parallelism, check_parallelism
from sim.cost.roofline import RooflineCost
from workloads.model import ModelArch

MAX_DEVICES_SEARCHED = 8192


@dataclass(frozen=True)
class Estimate:
    model: str
    hardware: str
    tp: int
    pp: int
    batch: int
    input_tokens: int
    output_tokens: int
    fits: bool
    reason: str
    devices_needed: int | None
    suggested_tp: int | None
    suggested_pp: int | None
    weights_bytes_per_device: float
    kv_bytes_per_token: float
    kv_bytes_per_sequence: float
    kv_capacity_tokens: int
    max_context_tokens: int
    model_max_context_tokens: int | None
    max_batch_at_context: int
    prefill_s: float
    prefill_bound: str
    decode_step_s: float
    decode_bound: str
    ttft_s: float
    tpot_s: float
    e2e_s: float
    output_tokens_per_s: float
    stack: str = ""
    ttft_lo_s: float | None = None
    ttft_hi_s: float | None = None
    tpot_lo_s: float | None = None
    tpot_hi_s: float | None = None
    e2e_lo_s: float | None = None
    e2e_hi_s: float | None = None
    output_tokens_lo_per_s: float | None = None
    output_tokens_hi_per_s: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _fit(model: ModelArch, hw: Accelerator, par: Parallelism, context: int, batch: int) -> tuple[bool, str]:
    plan = memory_plan(model, hw, par)
    usable = plan.capacity_bytes_per_device * 0.9
    if plan.weights_bytes_per_device + plan.workspace_bytes_per_device > usable:
        return False, (
            f"weights ({plan.weights_bytes_per_device / 1e9:.1f} GB per device) and workspace "
            f"({plan.workspace_bytes_per_device / 1e9:.1f} GB) exceed the usable {usable / 1e9:.1f} GB "
            f"of {hw.main_tier.name} on {par.devices} x {hw.name}"
        )
    need = float(plan.seq_bytes(context)) * batch
    if need > plan.kv_pool_bytes:
        return False, (
            f"KV for {batch} x {context:,} tokens needs {need / 1e9:.1f} GB but the KV pool holds "
            f"{plan.kv_pool_bytes / 1e9:.1f} GB ({plan.kv_capacity_tokens:,} tokens) "
            f"on {par.devices} x {hw.name}"
        )
    return True, ""


def smallest_fit(model: ModelArch, hw: Accelerator, context: int, batch: int = 1) -> Parallelism | None:
    """The fewest devices (tp x pp, tp a divisor of the heads, preferring tp <= 8) that hold the
    weights and `batch` sequences of `context` tokens."""
    heads = model.num_heads or 1
    tps = sorted((t for t in range(1, heads + 1) if heads % t == 0), key=lambda t: (t > 8, -t))
    for devices in range(1, MAX_DEVICES_SEARCHED + 1):
        for tp in tps:
            if devices % tp == 0 and devices // tp <= model.num_layers:
                par = Parallelism(tp, devices // tp)
                if (hw.link() or par.devices == 1) and _fit(model, hw, par, context, batch)[0]:
                    return par
    return None


def _intervals(stack: StackProfile, prefill_s: float, decode_s: float, tpot_s: float, rate: float) -> dict:
    """The `*_lo*` / `*_hi*` fields of an estimate from `stack`'s bands (see the module docstring)."""
    ttft = stack.band("ttft", "prefill")
    tpot = stack.band("tpot", "decode")
    tput = stack.band("throughput", "prefill" if prefill_s > decode_s else "decode")
    out: dict = {}
    if ttft is not None:
        out.update(ttft_lo_s=prefill_s * ttft.lo, ttft_hi_s=prefill_s * ttft.hi)
    if tpot is not None:
        out.update(tpot_lo_s=tpot_s * tpot.lo, tpot_hi_s=tpot_s * tpot.hi)
    if ttft is not None and tpot is not None:
        out.update(
            e2e_lo_s=prefill_s * ttft.lo + decode_s * tpot.lo,
            e2e_hi_s=prefill_s * ttft.hi + decode_s * tpot.hi,
        )
    if tput is not None:
        out.update(output_tokens_lo_per_s=rate * tput.lo, output_tokens_hi_per_s=rate * tput.hi)
    return out


def estimate(
    model: ModelArch,
    hw: Accelerator,
    par: Parallelism,
    input_tokens: int,
    output_tokens: int,
    batch: int = 1,
    stack: StackProfile | None = None,
) -> Estimate:
    """The estimate on `hw` as `stack` serves it (as given when None), with `stack`'s intervals."""
    if input_tokens < 1 or output_tokens < 1 or batch < 1:
        raise ValueError("input, output and batch must be at least 1")
    hw = apply_stack(hw, stack)
    check_parallelism(model, par)
    plan = memory_plan(model, hw, par)
    cost = RooflineCost(model, hw, par)
    context = input_tokens + output_tokens
    fits, reason = _fit(model, hw, par, context, batch)
    if model.max_context_tokens and context > model.max_context_tokens:
        note = f"context {context:,} exceeds the model's {model.max_context_tokens:,} positions"
        reason = f"{reason}; {note}" if reason else note
    suggestion = None if fits else smallest_fit(model, hw, context, batch)

    prefill = cost.step(np.full(batch, input_tokens), np.zeros(batch, np.int64), batch)
    ctx = np.full(batch, input_tokens, np.int64)
    first = cost.step(np.ones(batch, np.int64), ctx, batch)
    decode_s = 0.0
    if output_tokens > 1:
        acc = np.zeros(4)
        _, decode_s = cost.decode_span(ctx, 0.0, np.inf, output_tokens - 1, acc)
    tpot = decode_s / (output_tokens - 1) if output_tokens > 1 else first.total_s
    e2e = prefill.total_s + decode_s
    capacity = plan.kv_capacity_tokens
    rate = batch * output_tokens / e2e
    bands = _intervals(stack, prefill.total_s, decode_s, tpot, rate) if stack is not None else {}
    return Estimate(
        model=model.name,
        hardware=hw.name,
        tp=par.tp,
        pp=par.pp,
        batch=batch,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        fits=fits,
        reason=reason,
        devices_needed=suggestion.devices if suggestion else (par.devices if fits else None),
        suggested_tp=suggestion.tp if suggestion else None,
        suggested_pp=suggestion.pp if suggestion else None,
        weights_bytes_per_device=plan.weights_bytes_per_device,
        kv_bytes_per_token=plan.kv_bytes_per_token,
        kv_bytes_per_sequence=float(plan.seq_bytes(context)),
        kv_capacity_tokens=capacity,
        max_context_tokens=capacity,
        model_max_context_tokens=model.max_context_tokens,
        max_batch_at_context=plan.max_batch(context) if plan.fits else 0,
        prefill_s=prefill.total_s,
        prefill_bound=prefill.bound,
        decode_step_s=first.total_s,
        decode_bound=first.bound,
        ttft_s=prefill.total_s,
        tpot_s=tpot,
        e2e_s=e2e,
        output_tokens_per_s=rate,
        stack=hw.efficiency.stack,
        **bands,
    )
