"""Which replica gets an arriving request. Policies are plain functions of replica snapshots:
`outstanding[i]` tokens on replica i, a request counter, and (for prefix affinity) `hits[i]`, the
leading prompt blocks of the request already cached on replica i."""

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
    """The replica holding the longest cached prefix of the request; among equals (no hits
    anywhere included), the one with the fewest outstanding tokens."""
    best = 0
    for i in range(1, len(outstanding)):
        if (hits[i], -outstanding[i]) > (hits[best], -outstanding[best]):
            best = i
    return best


ROUTERS: dict[str, Callable[[Sequence[int], int, Sequence[int] | None], int]] = {
    "round_robin": round_robin,
    "least_tokens": least_tokens,
    "prefix_affinity": prefix_affinity,
}
