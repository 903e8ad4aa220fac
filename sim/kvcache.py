"""Paged KV memory of one replica, counted in blocks.

A block holds `block_size` tokens of the layers whose KV grows with context. Windowed layers and SSM
state are charged in the same byte currency (a sequence of T tokens needs
ceil(seq_bytes(T) / block_bytes) blocks), so for a plain transformer blocks = ceil(T / block_size)
and for hybrids the pool is exact in bytes at block granularity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.costmodel import MemoryPlan


@dataclass(frozen=True)
class KVLayout:
    plan: MemoryPlan
    block_size: int

    @property
    def block_bytes(self) -> float:
        per_token = self.plan.kv_bytes_per_token + self.plan.window_kv_bytes_per_token
        return self.block_size * per_token if per_token > 0 else self.plan.state_bytes_per_seq

    @property
    def capacity_blocks(self) -> int:
        return int(self.plan.kv_pool_bytes // self.block_bytes) if self.block_bytes > 0 else 2**62

    @property
    def simple(self) -> bool:
        """Plain attention: blocks are just ceil(tokens / block_size)."""
        return self.plan.window_kv_bytes_per_token == 0 and self.plan.state_bytes_per_seq == 0

    def blocks_for(self, tokens: np.ndarray | int) -> np.ndarray | int:
        """Blocks a sequence holding `tokens` tokens of KV needs (0 for 0 tokens)."""
        if self.simple:
            return -(-tokens // self.block_size)
        if self.block_bytes == 0:
            return np.zeros_like(tokens) if isinstance(tokens, np.ndarray) else 0
        need = np.ceil(self.plan.seq_bytes(tokens) / self.block_bytes - 1e-9).astype(np.int64)
        return np.where(tokens > 0, need, 0) if isinstance(tokens, np.ndarray) else int(need) * (tokens > 0)
