"""What a replica's memory holds: weights first, then a workspace for the largest step's activations,
and the rest as the KV pool, with how many tokens and sequences that pool holds."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hardware.spec import Accelerator
from sim.cost.legs import ACT_BYTES
from sim.cost.parallelism import Parallelism, check_parallelism, weight_bytes_per_device
from workloads.model import ModelArch


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes on one device of a replica, and what the replica's KV pool holds.

    A sequence of T tokens holds `kv_bytes_per_token·T + window_kv_bytes_per_token·min(T, window)
    + state_bytes_per_seq` bytes across the replica (replicated KV heads counted on every device)."""

    devices: int
    capacity_bytes_per_device: float
    weights_bytes_per_device: float
    workspace_bytes_per_device: float
    kv_bytes_per_device: float
    kv_bytes_per_token: float
    window_kv_bytes_per_token: float
    window: int
    state_bytes_per_seq: float

    @property
    def fits(self) -> bool:
        return self.kv_bytes_per_device > 0

    @property
    def kv_pool_bytes(self) -> float:
        return max(self.kv_bytes_per_device, 0.0) * self.devices

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
        (data-parallel attention ranks each hold their own requests' KV)."""
        return replace(self, kv_bytes_per_device=self.kv_bytes_per_device / parts)

    def max_batch(self, context_tokens: int) -> int:
        per_seq = float(self.seq_bytes(context_tokens))
        return int(self.kv_pool_bytes // per_seq) if per_seq > 0 else 0


def memory_plan(
    model: ModelArch,
    hw: Accelerator,
    par: Parallelism,
    memory_fraction: float = 0.9,
    max_batched_tokens: int = 8192,
) -> MemoryPlan:
    """Place weights first (`weight_bytes_per_device`: expert and data-parallel splits included), then
    a workspace (activations of the largest step), the rest is KV.

    `memory_fraction` is the share of the main tier the engine may use (vLLM's
    gpu_memory_utilization); the workspace is `max_batched_tokens` x (4·hidden + 2·FFN/tp) bf16
    activations, a peak-activation estimate for one step."""
    check_parallelism(model, par)
    tp = par.tp
    cap = hw.main_tier.capacity_bytes
    weights = weight_bytes_per_device(model, par)
    ffn = max(model.intermediate_size, (model.moe.expert_ffn * model.moe.active) if model.moe else 0)
    workspace = max_batched_tokens * (4 * model.hidden_size + 2 * ffn / tp) * ACT_BYTES
    kv = cap * memory_fraction - weights - workspace
    full = sum(g.count for g in model.layer_groups() if g.mixer == "attention" and not g.window)
    win = sum(g.count for g in model.layer_groups() if g.mixer == "attention" and g.window)
    per_layer = model.kv_bytes_per_token_layer(tp) * tp
    return MemoryPlan(
        devices=par.devices,
        capacity_bytes_per_device=cap,
        weights_bytes_per_device=weights,
        workspace_bytes_per_device=workspace,
        kv_bytes_per_device=kv,
        kv_bytes_per_token=full * per_layer,
        window_kv_bytes_per_token=win * per_layer,
        window=model.window.size if model.window else 0,
        state_bytes_per_seq=model.state_bytes_per_sequence,
    )
