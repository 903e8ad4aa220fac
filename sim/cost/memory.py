"""What a replica's memory holds, and on which tier: weights first, then an activation reserve for
the largest step the scheduler forms, and the rest as the KV pool, with how many tokens and
sequences that pool holds.

A device's memory is a stack of tiers (SRAM, HBM, LPDDR or host DRAM over a chip-to-chip link, CXL,
SSD). A `TierPlacement` names the tier each of weights, KV and activations sits on (the main tier by
default, HBM on a GPU, SRAM on an LPU), and optionally a lower tier that takes what does not fit:
weights that overflow an on-chip SRAM into HBM are read at the blend of the two bandwidths, and KV
that spills past its tier is read at the spill tier's bandwidth on every step that reads it (the
cost model charges each step's spilled bytes; see `sim.cost.ops.emit_kv_spill`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hardware.base import Frozen
from hardware.spec import Accelerator, MemoryTier
from sim.cost.legs import ACT_BYTES
from sim.cost.parallelism import ConfigError, Parallelism, check_parallelism, weight_bytes_per_device
from workloads.model import ModelArch

DEFAULT_TOKEN_BUDGET = 8192
"""Tokens one step may carry when no scheduler says otherwise (vLLM's `max_num_batched_tokens`
default for chunked prefill, and `sim.scenario.Scheduler`'s)."""


class TierPlacement(Frozen):
    """Which memory tier holds what, by tier name; None is the device's main tier. `weights_spill`
    takes the weights that do not fit their tier and `kv_spill` the KV that does not fit its tier
    (None: nothing spills, and what does not fit does not fit). A tier marked `cache` (a GPU's L2)
    may be named too: a what-if that pins weights or KV in on-chip SRAM."""

    weights: str | None = None
    weights_spill: str | None = None
    kv: str | None = None
    kv_spill: str | None = None
    activations: str | None = None

    def tier(self, hw: Accelerator, role: str) -> MemoryTier | None:
        """The tier `role` (a field name) is placed on: the main tier when unset, None for an unset
        spill; a ConfigError when `hw` has no tier of that name."""
        name = getattr(self, role)
        if name is None:
            return None if role.endswith("_spill") else hw.main_tier
        for t in hw.memory:
            if t.name == name:
                return t
        names = ", ".join(t.name for t in hw.memory)
        raise ConfigError(f"placement.{role}: {hw.name} has no memory tier {name!r} (tiers: {names})")


MAIN_TIER = TierPlacement()


def activation_bytes_per_token(model: ModelArch, par: Parallelism) -> float:
    """Peak activation bytes one token of a step holds on one device: the hidden state, its norm,
    the attention output and the residual (4·hidden, replicated over tp) plus the FFN's gate and up
    outputs (2·FFN width / tp), in bf16. Llama-3.1-70B at tp 8: (4·8192 + 2·28672/8)·2 = 79,872."""
    moe = model.moe
    ffn = max(model.intermediate_size, (moe.expert_ffn * moe.active) if moe else 0)
    return (4 * model.hidden_size + 2 * ffn / par.tp) * ACT_BYTES


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes on one device of a replica, the tiers they sit on, and what the replica's KV pool holds.

    A sequence of T tokens holds `kv_bytes_per_token·T + window_kv_bytes_per_token·min(T, window)
    + state_bytes_per_seq` bytes across the replica (replicated KV heads counted on every device).
    `kv_bytes_per_device` is the KV space on the KV tier, `kv_spill_bytes_per_device` on the spill
    tier; the bandwidths are each tier's datasheet figure (the weights' is the blend of the weights
    tier and its spill, by the share each holds). `shortfall` says what does not fit, "" when all does."""

    devices: int
    capacity_bytes_per_device: float
    weights_bytes_per_device: float
    workspace_bytes_per_device: float
    kv_bytes_per_device: float
    kv_bytes_per_token: float
    window_kv_bytes_per_token: float
    window: int
    state_bytes_per_seq: float
    kv_spill_bytes_per_device: float = 0.0
    weights_bandwidth_bytes_per_s: float = 0.0
    kv_bandwidth_bytes_per_s: float = 0.0
    kv_spill_bandwidth_bytes_per_s: float = 0.0
    activations_bandwidth_bytes_per_s: float = 0.0
    shortfall: str = ""

    @property
    def fits(self) -> bool:
        return not self.shortfall and self.kv_pool_bytes > 0

    @property
    def kv_pool_bytes(self) -> float:
        return (max(self.kv_bytes_per_device, 0.0) + self.kv_spill_bytes_per_device) * self.devices

    @property
    def spill_from_tokens(self) -> float:
        """Tokens of full-attention KV the replica's KV tier holds before the rest spills: the step
        reads KV past this many tokens (over the whole batch) from the spill tier. Infinite without a
        spill tier. Windowed KV and recurrent states are counted as sitting on the KV tier first."""
        if not self.kv_spill_bytes_per_device or not self.kv_bytes_per_token:
            return np.inf
        return max(self.kv_bytes_per_device, 0.0) * self.devices / self.kv_bytes_per_token

    def seq_bytes(self, tokens: float | np.ndarray) -> float | np.ndarray:
        windowed = np.minimum(tokens, self.window) if self.window else 0.0
        return (
            self.kv_bytes_per_token * tokens
            + self.window_kv_bytes_per_token * windowed
            + self.state_bytes_per_seq
        )

    @property
    def kv_capacity_tokens(self) -> int:
        """Tokens of context the pool holds for one sequence (its longest possible context)."""
        pool = self.kv_pool_bytes - self.state_bytes_per_seq
        if pool <= 0:
            return 0
        if self.kv_bytes_per_token == 0:
            return 2**62 if self.window_kv_bytes_per_token * self.window <= pool else 0
        windowed = self.window_kv_bytes_per_token * self.window
        if self.window and pool >= windowed + self.kv_bytes_per_token * self.window:
            return int((pool - windowed) // self.kv_bytes_per_token)
        return int(pool // (self.kv_bytes_per_token + self.window_kv_bytes_per_token))

    def share(self, parts: int) -> MemoryPlan:
        """The plan as one of `parts` schedulers of the replica sees it: an equal share of the KV pool
        on the KV tier and on its spill tier (data-parallel attention ranks each hold their own
        requests' KV), so each scheduler's batch spills past its own share (`spill_from_tokens`)."""
        return replace(
            self,
            kv_bytes_per_device=self.kv_bytes_per_device / parts,
            kv_spill_bytes_per_device=self.kv_spill_bytes_per_device / parts,
        )

    def max_batch(self, context_tokens: int) -> int:
        per_seq = float(self.seq_bytes(context_tokens))
        return int(self.kv_pool_bytes // per_seq) if per_seq > 0 else 0


def _blend(parts: list[tuple[float, float]]) -> float:
    """Bandwidth of reading bytes split over tiers one after the other: total / sum(bytes_i / bw_i)."""
    total = sum(b for b, _ in parts)
    return total / sum(b / bw for b, bw in parts if b > 0) if total > 0 else parts[0][1]


def memory_plan(
    model: ModelArch,
    hw: Accelerator,
    par: Parallelism,
    memory_fraction: float = 0.9,
    max_batched_tokens: int = DEFAULT_TOKEN_BUDGET,
    placement: TierPlacement = MAIN_TIER,
) -> MemoryPlan:
    """Place weights first (`weight_bytes_per_device`: expert and data-parallel splits included), then
    the activation reserve; the rest of the KV tier (and of its spill tier) is KV.

    `memory_fraction` is the share of each tier the engine may use (vLLM's gpu_memory_utilization);
    the activation reserve is `max_batched_tokens`, the most tokens one step of the scheduler
    carries, times `activation_bytes_per_token` on this device. On an SRAM-only device (an LPU) the
    weights are what sets the chip count: each chip holds 1/(tp·pp) of them
    (`sim.cost.estimate.smallest_fit` searches from `min_devices_for_weights`)."""
    check_parallelism(model, par)
    roles = ("weights", "weights_spill", "kv", "kv_spill", "activations")
    tiers = {role: placement.tier(hw, role) for role in roles}
    free = {t.name: t.capacity_bytes * memory_fraction for t in hw.memory}
    weights = weight_bytes_per_device(model, par)
    wt, ws = tiers["weights"], tiers["weights_spill"]
    on_wt = min(weights, max(free[wt.name], 0.0)) if ws is not None else weights
    free[wt.name] -= on_wt
    parts = [(on_wt, wt.bandwidth_bytes_per_s)]
    if ws is not None:
        free[ws.name] -= weights - on_wt
        parts.append((weights - on_wt, ws.bandwidth_bytes_per_s))
    workspace = max_batched_tokens * activation_bytes_per_token(model, par)
    free[tiers["activations"].name] -= workspace
    kv_tier, spill = tiers["kv"], tiers["kv_spill"]
    kv = free[kv_tier.name]
    spill_bytes = max(free[spill.name], 0.0) if spill is not None and spill.name != kv_tier.name else 0.0
    overfull = [n for n, f in free.items() if f < 0]
    shortfall = ""
    if overfull:
        t = next(t for t in hw.memory if t.name == overfull[0])
        shortfall = (
            f"weights ({weights / 1e9:.3g} GB per device) and activation reserve "
            f"({workspace / 1e9:.3g} GB, {max_batched_tokens:,} tokens) exceed the usable "
            f"{t.capacity_bytes * memory_fraction / 1e9:.3g} GB of {t.name} on {par.devices} x {hw.name}"
        )
    full = sum(g.count for g in model.layer_groups() if g.mixer == "attention" and not g.window)
    win = sum(g.count for g in model.layer_groups() if g.mixer == "attention" and g.window)
    per_layer = model.kv_bytes_per_token_layer(par.tp) * par.tp
    return MemoryPlan(
        devices=par.devices,
        capacity_bytes_per_device=kv_tier.capacity_bytes,
        weights_bytes_per_device=weights,
        workspace_bytes_per_device=workspace,
        kv_bytes_per_device=kv,
        kv_bytes_per_token=full * per_layer,
        window_kv_bytes_per_token=win * per_layer,
        window=model.window.size if model.window else 0,
        state_bytes_per_seq=model.state_bytes_per_sequence,
        kv_spill_bytes_per_device=spill_bytes,
        weights_bandwidth_bytes_per_s=_blend(parts),
        kv_bandwidth_bytes_per_s=kv_tier.bandwidth_bytes_per_s,
        kv_spill_bandwidth_bytes_per_s=spill.bandwidth_bytes_per_s if spill is not None else 0.0,
        activations_bandwidth_bytes_per_s=tiers["activations"].bandwidth_bytes_per_s,
        shortfall=shortfall,
    )
