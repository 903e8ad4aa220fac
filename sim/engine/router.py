"""Which replica gets an arriving request. Policies are plain functions of replica snapshots:
`outstanding[i]` tokens on replica i, a request counter, and (for prefix affinity) `hits[i]`, the
leading prompt tokens of the request already cached on replica i."""

from __future__ import annotations

from collections.abc import Callable, Sequence


def round_robin(outstanding: Sequence[int], counter: int, hits: Sequence[int] | None) -> int:
    return counter % len(outstanding)


def least_tokens(outstanding: Sequence[int], counter: int, hits: Sequence[int] | None) -> int:
    """The replica with the fewest outstanding tokens (prompt + output of every request it holds
    that has not finished); ties go to the lowest index."""
    best = 0
    for i in range(1, len(outstanding)):
        if outstanding[i] < outstanding[best]:
            best = i
    return best


def prefix_affinity(outstanding: Sequence[int], counter: int, hits: Sequence[int] | None) -> int:
    """The replica where the request adds the least work: outstanding tokens minus the prompt
    tokens it already holds cached for this request. Following the longest prefix alone herds
    every request sharing a system prompt onto whichever replica cached it first; charging the
    queue keeps the load spread while conversations still return to their history."""
    best = 0
    for i in range(1, len(outstanding)):
        if outstanding[i] - hits[i] < outstanding[best] - hits[best]:
            best = i
    return best


ROUTERS: dict[str, Callable[[Sequence[int], int, Sequence[int] | None], int]] = {
    "round_robin": round_robin,
    "least_tokens": least_tokens,
    "prefix_affinity": prefix_affinity,
}
