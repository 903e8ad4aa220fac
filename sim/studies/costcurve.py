"""Cost per request against context length, per hardware: where a request stops fitting one device.

For each prompt length, `smallest_fit` gives the fewest devices that hold the weights and one
request's KV cache. The request is then costed on the cheapest of that group and groups of 2x and
4x as many devices (tp up to 8, pipeline stages for the rest), each batched with as many like
requests as its KV pool holds (up to `max_batch`): the group's price per second x the batch's end
to end time (`estimate`) / the batch. Two effects raise the price per token as context grows: the
batch shrinks as each sequence's KV grows, and at some length the request no longer fits the group
and the device count steps up. That step is the effect behind providers' price tiers above about
200K tokens. Every group reserves activations for a full step of the scheduler's token budget
(`Memory.max_batched_tokens`: lower it for an SRAM-only device, whose chips hold a few hundred MB),
and prompts past the model's context limit (its trained context extended by rope_scaling) are not
served: their rows do not fit.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd

from hardware.spec import Accelerator
from sim.cost import pricing
from sim.cost.estimate import DEFAULT_MEMORY, Memory, estimate, smallest_fit
from sim.cost.memory import MemoryPlan
from sim.cost.ops import build_ops
from sim.cost.parallelism import ConfigError, Parallelism
from sim.scenario import CostAssumptions
from workloads.model import ModelArch

STEPS_PER_DOUBLING = 4
GROUP_POWERS = 3
GROUP_COLUMNS = (
    "devices",
    "tp",
    "pp",
    "ep",
    "attention_dp",
    "cp",
    "batch",
    "e2e_s",
    "device_s_per_request",
    "price_per_hour_usd",
    "cost_per_request_usd",
    "cost_per_1m_input_tokens_usd",
    "smallest_group_cost_per_1m_input_tokens_usd",
)


@dataclass(frozen=True)
class Jump:
    """At `context_tokens` prompt tokens a request needs `devices_after` devices instead of
    `devices_before` (None: no group searched holds it)."""

    hardware: str
    context_tokens: int
    devices_before: int
    devices_after: int | None


def _longest_held(plan: MemoryPlan, output_tokens: int, low: int, high: int) -> int:
    """The longest prompt in [low, high] whose one request fits the KV pool of `plan` (bisection;
    `low` must fit)."""
    while low < high:
        mid = (low + high + 1) // 2
        if float(plan.seq_bytes(mid + output_tokens)) <= plan.kv_pool_bytes:
            low = mid
        else:
            high = mid - 1
    return low


def _smallest(
    model: ModelArch, hw: Accelerator, context: int, memory: Memory, after: Parallelism | None = None
) -> Parallelism | None:
    return smallest_fit(model, hw, context, 1, memory, memory.max_batched_tokens, after)


def _plan(model: ModelArch, hw: Accelerator, par: Parallelism, memory: Memory) -> MemoryPlan:
    return memory.plan(model, hw, par, memory.max_batched_tokens)


def smallest_groups(
    model: ModelArch,
    hw: Accelerator,
    output_tokens: int,
    min_context: int,
    max_context: int,
    memory: Memory = DEFAULT_MEMORY,
) -> list[tuple[int, Parallelism | None]]:
    """The group `smallest_fit` picks for every prompt length in [min_context, max_context], as
    (first prompt length, group) runs in order; None from where no group searched holds a request.

    A group holds every prompt up to its longest, and a group `smallest_fit` tries earlier holds none
    of them (else it would have been picked at the run's start), so one `smallest_fit` call per run
    and a bisection over one memory plan find the run's end; each search resumes where the last
    run's stopped."""
    start, par = min_context, _smallest(model, hw, min_context + output_tokens, memory)
    runs = [(start, par)]
    while par is not None:
        last = _longest_held(_plan(model, hw, par, memory), output_tokens, start, max_context)
        if last >= max_context:
            break
        start, par = last + 1, _smallest(model, hw, last + 1 + output_tokens, memory, par)
        runs.append((start, par))
    return runs


def _jumps(hardware: str, runs: Sequence[tuple[int, Parallelism | None]]) -> list[Jump]:
    """Where the device count of consecutive runs steps up (a run may change only tp x pp)."""
    return [
        Jump(hardware, start, par.devices, nxt.devices if nxt else None)
        for (_, par), (start, nxt) in pairwise(runs)
        if par is not None and (nxt is None or nxt.devices != par.devices)
    ]


def jumps(
    model: ModelArch,
    hw: Accelerator,
    output_tokens: int,
    min_context: int,
    max_context: int,
    memory: Memory = DEFAULT_MEMORY,
) -> list[Jump]:
    """Every prompt length in [min_context, max_context] where the smallest group grows (the device
    count never falls as context grows)."""
    return _jumps(hw.name, smallest_groups(model, hw, output_tokens, min_context, max_context, memory))


def contexts(min_context: int, max_context: int, edges: Sequence[Jump] = ()) -> list[int]:
    """Prompt lengths to evaluate: `STEPS_PER_DOUBLING` per doubling, plus both sides of each jump."""
    n = int(np.ceil(np.log2(max_context / min_context) * STEPS_PER_DOUBLING)) + 1
    grid = {round(float(v)) for v in np.geomspace(min_context, max_context, max(n, 2))}
    grid |= {j.context_tokens for j in edges} | {j.context_tokens - 1 for j in edges}
    return sorted(c for c in grid if min_context <= c <= max_context)


def shapes(
    model: ModelArch, hw: Accelerator, smallest: Parallelism, extra: Sequence[Parallelism] = ()
) -> list[Parallelism]:
    """Groups to cost a request on: the smallest that holds it, the next `GROUP_POWERS` powers of
    two at or above its size, each with the widest tp up to 8 that divides the heads and the group
    and pipeline stages for the rest, only groups the hardware can link; and the `extra` splits
    asked for (context or expert parallel) that are at least as large as the smallest."""
    heads = model.num_heads or 1
    first = 1 << (smallest.devices - 1).bit_length()
    out = [smallest]
    for devices in (first << k for k in range(GROUP_POWERS)):
        tp = max(t for t in (1, 2, 4, 8) if heads % t == 0 and devices % t == 0)
        linked = devices == 1 or hw.link() is not None
        par = Parallelism(tp, devices // tp)
        if par.pp <= model.num_layers and linked and par not in out:
            out.append(par)
    out.extend(par for par in extra if par.devices >= smallest.devices and par not in out)
    return out


def _device_s(
    model: ModelArch,
    hw: Accelerator,
    par: Parallelism,
    context: int,
    output_tokens: int,
    max_batch: int,
    memory: Memory,
) -> tuple[int, float, float] | None:
    """(batch, e2e_s, device-seconds per request) of `context`-token requests on group `par`; None
    when not even one fits."""
    plan = _plan(model, hw, par, memory)
    batch = min(max_batch, plan.max_batch(context + output_tokens)) if plan.fits else 0
    if batch < 1:
        return None
    e2e_s = estimate(model, hw, par, context, output_tokens, batch, memory).e2e_s
    return batch, e2e_s, par.devices * e2e_s / batch


def _runs_on(model: ModelArch, hw: Accelerator, par: Parallelism) -> bool:
    """Whether `par` can run `model` on `hw` at all (its groups fit the topology)."""
    try:
        build_ops(model, hw, par)
    except ConfigError:
        return False
    return True


def _per_1m(device_hour_usd: float | None, device_s: float, context: int) -> float | None:
    if device_hour_usd is None:
        return None
    return pricing.usd_per_1m_tokens(pricing.usd_at(pricing.usd_per_s(device_hour_usd), device_s), context)


def _row(
    model: ModelArch,
    hw: Accelerator,
    smallest: Parallelism | None,
    context: int,
    output_tokens: int,
    max_batch: int,
    device_hour: float | None,
    memory: Memory,
    extra: Sequence[Parallelism] = (),
) -> dict:
    """One row of the curve: `context`-token requests on the cheapest of the groups `shapes` offers
    above `smallest`, and on `smallest` itself; a request past the model's context limit fits none."""
    limit = model.context_limit_tokens
    served = smallest is not None and (limit is None or context + output_tokens <= limit)
    row = {
        "hardware": hw.name,
        "context_tokens": context,
        "fits": served,
        "min_devices": smallest.devices if smallest else None,
        "context_limit_tokens": limit,
        **dict.fromkeys(GROUP_COLUMNS),
    }
    runs = (
        [
            (par, run)
            for par in shapes(model, hw, smallest, extra)
            if (run := _device_s(model, hw, par, context, output_tokens, max_batch, memory))
        ]
        if served
        else []
    )
    if not runs:
        return row
    par, (batch, e2e_s, device_s) = min(runs, key=lambda pr: pr[1][2])
    row.update(
        devices=par.devices,
        tp=par.tp,
        pp=par.pp,
        ep=par.ep,
        attention_dp=par.attention_dp,
        cp=par.cp,
        batch=batch,
        e2e_s=e2e_s,
        device_s_per_request=device_s,
        cost_per_1m_input_tokens_usd=_per_1m(device_hour, device_s, context),
    )
    if runs[0][0] == smallest:
        row.update(smallest_group_cost_per_1m_input_tokens_usd=_per_1m(device_hour, runs[0][1][2], context))
    if device_hour is not None:
        row.update(
            price_per_hour_usd=device_hour * par.devices,
            cost_per_request_usd=pricing.usd_at(pricing.usd_per_s(device_hour), device_s),
        )
    return row


def cost_curve(
    model: ModelArch,
    hardware: Sequence[Accelerator],
    output_tokens: int,
    min_context: int,
    max_context: int,
    *,
    cost: CostAssumptions | None = None,
    max_batch: int = 256,
    memory: Memory = DEFAULT_MEMORY,
    extra: Sequence[Parallelism] = (),
) -> tuple[pd.DataFrame, list[Jump]]:
    """One row per (hardware, prompt length): `min_devices` (smallest group that holds one request)
    and USD per 1M prompt tokens on it; the cheapest group's devices, tp, pp and batch, e2e_s,
    device-seconds per request, the group's USD per hour, USD per request and per 1M prompt tokens
    (None without a price; `fits` False past every group searched and past the model's context limit,
    `context_limit_tokens`, the trained context extended by rope_scaling). Also the jumps of
    `min_devices` for every hardware. `extra` splits (context parallelism for long prompts, expert
    parallelism with data-parallel attention for MoE models) are costed beside the tp x pp groups
    wherever they hold a request; a split that cannot run on a hardware is skipped there."""
    if not 1 <= min_context < max_context:
        raise ValueError(f"context range {min_context:,}..{max_context:,}: need 1 <= min < max")
    if output_tokens < 1:
        raise ValueError("output tokens must be at least 1")
    cost = cost or CostAssumptions()
    rows, all_jumps = [], []
    for hw in hardware:
        runs = smallest_groups(model, hw, output_tokens, min_context, max_context, memory)
        starts = [start for start, _ in runs]
        edges = _jumps(hw.name, runs)
        all_jumps.extend(edges)
        device_hour = pricing.device_hour_at_tdp_usd(
            hw, cost.amortization_years, cost.electricity_usd_per_kwh
        )
        usable = [par for par in extra if _runs_on(model, hw, par)]
        for context in contexts(min_context, max_context, edges):
            smallest = runs[bisect_right(starts, context) - 1][1]
            rows.append(
                _row(model, hw, smallest, context, output_tokens, max_batch, device_hour, memory, usable)
            )
    return pd.DataFrame(rows), all_jumps
