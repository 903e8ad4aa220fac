"""Pipeline parallelism in closed form: micro-batches flowing through stages like cars through a
car wash with several bays in a row. The first car leaves after every bay and every move between
bays; after that a car leaves each time the slowest bay and one move are done. With fewer cars than
bays some bays always stand empty: the bubble.

The engine gets the same behaviour from `Parallelism.engines`: a replica with pp stages runs pp
schedulers, each stepping one micro-batch through every stage; this module is the formula the
tests hold that to and the analytic estimate reports."""

from __future__ import annotations

from collections.abc import Sequence


def pipeline_s(stage_s: Sequence[float], hop_s: float, micro_batches: int) -> float:
    """Seconds for `micro_batches` micro-batches through stages taking `stage_s` each, with `hop_s`
    between consecutive stages: sum(stage_s) + (stages - 1)·hop_s for the first, then
    max(stage_s) + hop_s for each one after."""
    if micro_batches < 1 or not stage_s:
        raise ValueError("a pipeline needs at least one stage and one micro-batch")
    first = sum(stage_s) + (len(stage_s) - 1) * hop_s
    return first + (micro_batches - 1) * (max(stage_s) + hop_s)


def steady_interval_s(stage_s: Sequence[float], hop_s: float) -> float:
    """Seconds between micro-batches leaving a full pipeline: the slowest stage plus one hop."""
    return max(stage_s) + hop_s


def bubble_fraction(stages: int, micro_batches: int) -> float:
    """Share of stage-time idle in a pipeline of equal stages (and no hops) running
    `micro_batches` micro-batches once: (stages - 1) / (micro_batches + stages - 1)."""
    return (stages - 1) / (micro_batches + stages - 1)
