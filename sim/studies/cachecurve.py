"""Prefix hit rate against cache capacity for a trace's block hashes (`ctxsim cache-curve`).

`cache_curve` replays a trace's block hashes through the kernels at several capacities: each request
looks up its blocks in order and then holds all of them (inserting misses, refreshing hits). A
request's hits are the leading run of its blocks that were cached (prefill can only skip a prefix);
with an unbounded cache this equals the trace's block reuse whenever block ids are prefix hashes (a
block seen before implies its whole prefix was), which holds for Mooncake's `hash_ids`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from sim.engine import _eviction_kernels as K
from sim.engine.eviction import KNEE_TOKENS, POLICIES, PolicyName, recompute_cost
from workloads.trace_format import open_trace
from workloads.traces import read_rows


@dataclass(frozen=True)
class BlockStream:
    """A trace's block accesses flattened in arrival order: `keys` dense block indices,
    `lengths` blocks per request, `within` each block's index in its request, `tokens` each
    block's token count, `costs` each block's `recompute_cost`."""

    keys: np.ndarray
    lengths: np.ndarray
    within: np.ndarray
    tokens: np.ndarray
    costs: np.ndarray

    @property
    def distinct_blocks(self) -> int:
        return int(self.keys.max()) + 1 if len(self.keys) else 0


def block_stream(
    block_hashes: Sequence[np.ndarray],
    prompt_tokens: np.ndarray | None = None,
    block_tokens: int = 512,
    knee_tokens: float = KNEE_TOKENS,
) -> BlockStream:
    """Flatten per-request block hash arrays (arrival order). Without `prompt_tokens` every block is
    full; with it a request's last block holds the remainder."""
    lengths = np.array([len(h) for h in block_hashes], np.int64)
    flat = (
        np.concatenate([np.asarray(h, np.int64) for h in block_hashes])
        if len(lengths)
        else np.empty(0, np.int64)
    )
    keys = np.unique(flat, return_inverse=True)[1].astype(np.int64).ravel()
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    within = np.arange(len(flat), dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    tokens = np.full(len(flat), block_tokens, np.int64)
    if prompt_tokens is not None:
        last = np.asarray(prompt_tokens, np.int64) - (lengths - 1) * block_tokens
        last_of = np.repeat(np.clip(last, 1, block_tokens), lengths)
        tokens = np.where(within == np.repeat(lengths - 1, lengths), last_of, tokens)
    costs = recompute_cost(within * block_tokens, tokens, knee_tokens)
    return BlockStream(keys, lengths, within, tokens, costs)


def access_hits(stream: BlockStream, capacity_blocks: int, policy: PolicyName) -> np.ndarray:
    """Per block access, whether it was cached, replaying the stream through a cache of
    `capacity_blocks` under `policy`."""
    if policy == "lru":
        return K.simulate_lru(stream.keys, capacity_blocks)
    if policy == "lfu":
        return K.simulate_lfu(stream.keys, capacity_blocks)
    if policy == "cost":
        return K.simulate_cost(stream.keys, stream.costs, capacity_blocks)
    raise ValueError(f"unknown eviction policy {policy!r}; choose from {', '.join(POLICIES)}")


def prefix_hits(hits: np.ndarray, stream: BlockStream) -> np.ndarray:
    """Keep only each request's leading run of hits (the blocks whose prefill can be skipped)."""
    miss_at = np.where(hits, np.iinfo(np.int64).max, stream.within)
    nonempty = stream.lengths[stream.lengths > 0]
    starts = np.concatenate([[0], np.cumsum(nonempty)[:-1]]) if len(nonempty) else np.empty(0, np.int64)
    first_miss = np.minimum.reduceat(miss_at, starts) if len(starts) else np.empty(0, np.int64)
    return stream.within < np.repeat(first_miss, nonempty)


def capacity_grid(distinct_blocks: int, points: int = 9) -> np.ndarray:
    """Capacities halving down from `distinct_blocks` (an unbounded cache for the trace): `points`
    values, at least 1 block, ascending, without repeats."""
    halvings = 2.0 ** np.arange(points - 1, -1, -1)
    return np.unique(np.maximum(1, np.round(distinct_blocks / halvings)).astype(np.int64))


def cache_curve(
    block_hashes: Sequence[np.ndarray] | BlockStream,
    capacities_blocks: Sequence[int],
    policies: Sequence[PolicyName] = ("lru", "lfu", "cost"),
    prompt_tokens: np.ndarray | None = None,
    block_tokens: int = 512,
    knee_tokens: float = KNEE_TOKENS,
) -> pd.DataFrame:
    """Prefix hit rate per policy and capacity, by blocks and by tokens (a request's hits are its
    leading cached blocks). Columns: policy, capacity_blocks, hit_rate_blocks, hit_rate_tokens."""
    stream = (
        block_hashes
        if isinstance(block_hashes, BlockStream)
        else block_stream(block_hashes, prompt_tokens, block_tokens, knee_tokens)
    )
    total_blocks, total_tokens = len(stream.keys), int(stream.tokens.sum())
    rows = []
    for policy in policies:
        for capacity in capacities_blocks:
            hit = prefix_hits(access_hits(stream, int(capacity), policy), stream)
            rows.append(
                (
                    policy,
                    int(capacity),
                    hit.sum() / total_blocks if total_blocks else 0.0,
                    stream.tokens[hit].sum() / total_tokens if total_tokens else 0.0,
                )
            )
    return pd.DataFrame(rows, columns=["policy", "capacity_blocks", "hit_rate_blocks", "hit_rate_tokens"])


def block_reuse(block_hashes: Sequence[np.ndarray]) -> float:
    """Fraction of blocks, in arrival order, whose id was seen earlier (0 for no blocks)."""
    seen: set[int] = set()
    reused = total = 0
    for hashes in block_hashes:
        for h in np.asarray(hashes).tolist():
            reused += h in seen
            seen.add(h)
            total += 1
    return reused / total if total else 0.0


@dataclass(frozen=True)
class TraceBlocks:
    """A trace's prefix-block hashes per request (arrival order) and the stream a cache replays."""

    path: Path
    format: str
    requests: int
    block_tokens: int
    hashes: list[np.ndarray]
    stream: BlockStream

    @property
    def title(self) -> str:
        return (
            f"prefix cache on {self.path.name}: {self.requests:,} requests, {len(self.stream.keys):,} "
            f"blocks of {self.block_tokens} tokens, {self.stream.distinct_blocks:,} distinct"
        )


def trace_blocks(path: Path, format: str = "auto", knee_tokens: float = KNEE_TOKENS) -> TraceBlocks:
    """The block hashes of the trace at `path`; ValueError when its format has none."""
    layout = open_trace(path, format)
    rows = read_rows(layout)
    if rows.hash_values is None:
        raise ValueError(
            f"{path}: format {layout.format} has no prefix-block hashes; "
            "cache-curve needs a trace that has them (Mooncake's hash_ids)"
        )
    hashes = np.split(rows.hash_values, rows.hash_offsets[1:-1])
    stream = block_stream(hashes, rows.prompt_tokens, rows.block_tokens, knee_tokens)
    return TraceBlocks(path, layout.format, len(rows), rows.block_tokens, hashes, stream)


def trace_summary(blocks: TraceBlocks) -> dict:
    """The trace's counts, its block reuse and the hit rate of an unbounded LRU cache (the ceiling
    every policy approaches), as one JSON-ready mapping."""
    unbounded = cache_curve(blocks.stream, [max(blocks.stream.distinct_blocks, 1)], ["lru"])
    return {
        "trace": str(blocks.path),
        "format": blocks.format,
        "requests": blocks.requests,
        "blocks": len(blocks.stream.keys),
        "distinct_blocks": blocks.stream.distinct_blocks,
        "block_tokens": blocks.block_tokens,
        "block_reuse": block_reuse(blocks.hashes),
        "unbounded_hit_rate_blocks": float(unbounded.hit_rate_blocks.iloc[0]),
    }


def figure(curve: pd.DataFrame, title: str) -> go.Figure:
    """Hit rate against capacity, one colour per policy; solid by blocks, dotted by tokens."""
    fig = go.Figure()
    colors = dict(zip(POLICIES, ("#1f77b4", "#ff7f0e", "#2ca02c"), strict=True))
    for policy, rows in curve.groupby("policy", sort=False):
        for column, dash in (("hit_rate_blocks", "solid"), ("hit_rate_tokens", "dot")):
            fig.add_trace(
                go.Scatter(
                    x=rows["capacity_blocks"],
                    y=rows[column],
                    mode="lines+markers",
                    name=f"{policy} ({column.removeprefix('hit_rate_')})",
                    line={"color": colors[policy], "dash": dash},
                )
            )
    fig.update_layout(
        title=title,
        xaxis_title="cache capacity (blocks)",
        yaxis_title="prefix hit rate",
        xaxis_type="log",
        yaxis_rangemode="tozero",
    )
    return fig

