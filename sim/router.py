"""Which replica gets an arriving request. Policies are plain functions of replica snapshots."""

from __future__ import annotations

from collections.abc import Callable, Sequence


def round_robin(outstanding: Sequence[int], counter: int) -> int:
    return counter % len(outstanding)


def least_tokens(outstanding: Sequence[int], counter: int) -> int:
    """The replica with the fewest outstanding tokens (prompt + output of every request it holds
    that has not finished); ties go to the lowest index."""
    best = 0
    for i in range(1, len(outstanding)):
        if outstanding[i] < outstanding[best]:
            best = i
    return best


ROUTERS: dict[str, Callable[[Sequence[int], int], int]] = {"round_robin": round_robin, "least_tokens": least_tokens}
