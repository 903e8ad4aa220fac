"""The analytic answer: does a model fit a device group, and how fast are prefill and decode?

No queueing here: one batch of identical requests, prefilled in one step, then decoded together.
The batch is shared out over the replica's schedulers (`Parallelism.engines`, the data-parallel
attention ranks), which run at once: TTFT and TPOT are one scheduler's, the output rate all of
theirs. With pipeline stages a scheduler's batch runs as up to pp micro-batches in flight, so a batch
smaller than the pipeline's depth leaves stages idle.
`ctxsim estimate` prints this; the dashboard's hardware designer calls the same function.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from hardware.spec import Accelerator
from sim.cost.memory import memory_plan
from sim.cost.parallelism import Parallelism, check_parallelism
from sim.cost.roofline import RooflineCost, new_acc
from workloads.model import ModelArch

MAX_DEVICES_SEARCHED = 8192


@dataclass(frozen=True)
class Estimate:
    model: str
    hardware: str
    tp: int
    pp: int
    ep: int
    attention_dp: int
    cp: int
    engines: int
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
    engine = plan.share(par.engines)
    share = -(-batch // par.engines)
    need = float(plan.seq_bytes(context)) * share
    if need > engine.kv_pool_bytes:
        whom = f"each of its {par.engines} schedulers" if par.engines > 1 else "the replica"
        return False, (
            f"KV for {share} x {context:,} tokens needs {need / 1e9:.1f} GB but {whom} holds "
            f"{engine.kv_pool_bytes / 1e9:.1f} GB ({engine.kv_capacity_tokens:,} tokens) "
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


def estimate(
    model: ModelArch, hw: Accelerator, par: Parallelism, input_tokens: int, output_tokens: int, batch: int = 1
) -> Estimate:
    if input_tokens < 1 or output_tokens < 1 or batch < 1:
        raise ValueError("input, output and batch must be at least 1")
    check_parallelism(model, par)
    plan = memory_plan(model, hw, par)
    cost = RooflineCost(model, hw, par)
    context = input_tokens + output_tokens
    fits, reason = _fit(model, hw, par, context, batch)
    limit = model.context_limit_tokens
    beyond = limit is not None and context > limit
    if beyond:
        note = (f"context_limit: {context:,} tokens exceed {model.name}'s context limit of {limit:,} "
                "(max_context_tokens, extended by rope_scaling)")
        reason = f"{note}; {reason}" if reason else note
    suggestion = None if fits else smallest_fit(model, hw, context, batch)
    fits = fits and not beyond

    share = -(-batch // par.engines)  # sequences on each busy scheduler
    prefill = cost.step(np.full(share, input_tokens), np.zeros(share, np.int64), share)
    ctx = np.full(share, input_tokens, np.int64)
    first = cost.step(np.ones(share, np.int64), ctx, share)
    decode_s = 0.0
    if output_tokens > 1:
        acc = new_acc()
        _, decode_s = cost.decode_span(ctx, 0.0, np.inf, output_tokens - 1, acc)
    tpot = decode_s / (output_tokens - 1) if output_tokens > 1 else first.total_s
    e2e = prefill.total_s + decode_s
    engine = plan.share(par.engines)
    capacity = engine.kv_capacity_tokens
    return Estimate(
        model=model.name,
        hardware=hw.name,
        tp=par.tp,
        pp=par.pp,
        ep=par.ep,
        attention_dp=par.attention_dp,
        cp=par.cp,
        engines=par.engines,
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
        model_max_context_tokens=limit,
        max_batch_at_context=engine.max_batch(context) * par.engines if plan.fits else 0,
        prefill_s=prefill.total_s,
        prefill_bound=prefill.bound,
        decode_step_s=first.total_s,
        decode_bound=first.bound,
        ttft_s=prefill.total_s,
        tpot_s=tpot,
        e2e_s=e2e,
        output_tokens_per_s=batch * output_tokens / e2e,
    )
