"""The analytic answer: does a model fit a device group, and how fast are prefill and decode?

No queueing here: one batch of identical requests, prefilled in one step, then decoded together.
The batch is shared out over the replica's schedulers (`Parallelism.engines`, the data-parallel
attention ranks), which run at once: TTFT and TPOT are one scheduler's, the output rate all of
theirs. With pipeline stages a scheduler's batch runs as up to pp micro-batches in flight, so a batch
smaller than the pipeline's depth leaves stages idle.
`ctxsim estimate` prints this; the dashboard's hardware designer calls the same function. The
activation reserve is sized for the largest step a scheduler with the given token budget forms for
its share of the batch: min(budget, share x prompt) tokens, so a single short request on an
SRAM-only device (an LPU) reserves what it needs rather than a GPU server's 8,192-token default.

Given a serving-stack profile (`hardware.stacks`), the device is served by it and every latency and
throughput comes with the profile's 80% interval (`*_lo*`, `*_hi*`): the prefill takes the band of
TTFT in the prefill regime, each decode step that of TPOT in the decode regime, the end-to-end time
their sum at each edge, and the throughput the band of throughput in the regime that takes most of
the time. Without a profile, or where it has no band, the interval is None.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from itertools import dropwhile

import numpy as np

from hardware.spec import Accelerator
from hardware.stacks import StackProfile, apply_stack, served_by
from sim.cost.memory import DEFAULT_TOKEN_BUDGET, MAIN_TIER, MemoryPlan, TierPlacement, memory_plan
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


@dataclass(frozen=True)
class Memory:
    """How the estimate places a model: the scheduler's token budget (the most tokens one step may
    carry), the share of each tier the engine may use, and which tier holds what."""

    max_batched_tokens: int = DEFAULT_TOKEN_BUDGET
    memory_fraction: float = 0.9
    placement: TierPlacement = MAIN_TIER

    def plan(self, model: ModelArch, hw: Accelerator, par: Parallelism, step_tokens: int) -> MemoryPlan:
        """The memory plan whose activation reserve holds the largest step this batch forms."""
        tokens = min(self.max_batched_tokens, step_tokens)
        return memory_plan(model, hw, par, self.memory_fraction, tokens, self.placement)


DEFAULT_MEMORY = Memory()


def _fit(plan: MemoryPlan, context: int, batch: int, where: str, engines: int = 1) -> tuple[bool, str]:
    """Whether the weights and activation reserve fit, and `batch` sequences of `context` tokens,
    shared out over the replica's `engines` schedulers, fit their schedulers' shares of the KV pool."""
    if plan.shortfall:
        return False, plan.shortfall
    engine = plan.share(engines) if engines > 1 else plan
    share = -(-batch // engines)
    need = float(plan.seq_bytes(context)) * share
    if need > engine.kv_pool_bytes:
        whom = f"each of its {engines} schedulers" if engines > 1 else "the KV pool"
        return False, (
            f"KV for {share} x {context:,} tokens needs {need / 1e9:.1f} GB but {whom} holds "
            f"{engine.kv_pool_bytes / 1e9:.1f} GB ({engine.kv_capacity_tokens:,} tokens) on {where}"
        )
    return True, ""


def fit_candidates(
    model: ModelArch, hw: Accelerator, memory: Memory = DEFAULT_MEMORY
) -> Iterator[tuple[int, int]]:
    """The (tp, pp) groups `smallest_fit` tries, in its order: from `min_devices_for_weights` up, tp a
    divisor of the heads, first every group with tp <= 8 (the widest first for each device count),
    then the groups with a wider tp. A group of more devices at tp 8 beats fewer at tp 32, whose
    all-reduces cross 4x as many hops a layer."""
    heads = model.num_heads or 1
    divisors = sorted((t for t in range(1, heads + 1) if heads % t == 0), reverse=True)
    start = min_devices_for_weights(model, hw, memory)
    linked = hw.link() is not None
    for tps in ([t for t in divisors if t <= 8], sorted(t for t in divisors if t > 8)):
        top = min(MAX_DEVICES_SEARCHED, max(tps, default=0) * model.num_layers)
        if not linked:
            top = min(top, 1)
        for devices in range(start, top + 1):
            for tp in tps:
                if devices % tp == 0 and devices // tp <= model.num_layers:
                    yield tp, devices // tp


def smallest_fit(
    model: ModelArch,
    hw: Accelerator,
    context: int,
    batch: int = 1,
    memory: Memory = DEFAULT_MEMORY,
    step_tokens: int | None = None,
    resume_at: Parallelism | None = None,
) -> Parallelism | None:
    """The first of `fit_candidates` (the fewest devices, tp <= 8 when any such group does) that holds
    the weights, the activation reserve for a step of `step_tokens` (default: `batch` x `context`)
    and `batch` sequences of `context` tokens. The search starts at `min_devices_for_weights`, so an
    SRAM-only device's hundreds of chips are found without trying every smaller group.

    `resume_at` skips the candidates before it: pass the group this search found for a shorter
    context (same batch and step). A group holds every context shorter than one it holds, so the
    groups skipped, which held none of the shorter one, hold none of this one either."""
    step = step_tokens if step_tokens is not None else batch * context
    candidates = fit_candidates(model, hw, memory)
    if resume_at is not None:
        where = (resume_at.tp, resume_at.pp)
        candidates = dropwhile(lambda shape: shape != where, candidates)
    for tp, pp in candidates:
        par = Parallelism(tp, pp)
        if _fit(memory.plan(model, hw, par, step), context, batch, "")[0]:
            return par
    return None


def _intervals(
    stack: StackProfile, vendor: str, prefill_s: float, decode_s: float, tpot_s: float, rate: float
) -> dict:
    """The `*_lo*` / `*_hi*` fields of an estimate from `stack`'s bands for a device of `vendor` (see
    the module docstring)."""
    ttft = stack.band("ttft", "prefill", vendor)
    tpot = stack.band("tpot", "decode", vendor)
    tput = stack.band("throughput", "prefill" if prefill_s > decode_s else "decode", vendor)
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


def min_devices_for_weights(model: ModelArch, hw: Accelerator, memory: Memory = DEFAULT_MEMORY) -> int:
    """A lower bound on the devices that hold the weights: the weight bytes over the usable bytes of
    the weights' tier (and of its spill tier) on one device, rounded up, before any activation
    reserve or KV. Llama-3.3-70B in int8 (70.55 GB) on 230 MB-SRAM LPUs at 0.9: 341 chips."""
    place = memory.placement
    tiers = {t.name: t for t in (place.tier(hw, "weights"), place.tier(hw, "weights_spill")) if t is not None}
    usable = sum(t.capacity_bytes for t in tiers.values()) * memory.memory_fraction
    return max(1, math.ceil(model.weight_bytes() / usable))


def estimate(
    model: ModelArch,
    hw: Accelerator,
    par: Parallelism,
    input_tokens: int,
    output_tokens: int,
    batch: int = 1,
    memory: Memory = DEFAULT_MEMORY,
    stack: StackProfile | None = None,
) -> Estimate:
    """The estimate on `hw` as `stack` serves it (as given when None), with `stack`'s intervals."""
    if input_tokens < 1 or output_tokens < 1 or batch < 1:
        raise ValueError("input, output and batch must be at least 1")
    hw = apply_stack(hw, stack)
    stack = served_by(hw, stack)
    check_parallelism(model, par)
    share = -(-batch // par.engines)  # sequences on each busy scheduler
    plan = memory.plan(model, hw, par, share * input_tokens)
    cost = RooflineCost(model, hw, par, plan)
    context = input_tokens + output_tokens
    fits, reason = _fit(plan, context, batch, f"{par.devices} x {hw.name}", par.engines)
    limit = model.context_limit_tokens
    beyond = limit is not None and context > limit
    if beyond:
        note = (f"context_limit: {context:,} tokens exceed {model.name}'s context limit of {limit:,} "
                "(max_context_tokens, extended by rope_scaling)")
        reason = f"{note}; {reason}" if reason else note
    suggestion = None if fits else smallest_fit(model, hw, context, batch, memory, batch * input_tokens)
    fits = fits and not beyond

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
    rate = batch * output_tokens / e2e
    bands = _intervals(stack, hw.vendor, prefill.total_s, decode_s, tpot, rate) if stack is not None else {}
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
        output_tokens_per_s=rate,
        stack=hw.efficiency.stack,
        **bands,
    )
