"""Runs of the cost model's step-time kernels and their Python oracle on the same op table, shared by
the tests that hold one to the other (plain tables, and tables with efficiency curves)."""

import numpy as np

from sim.cost import _kernels as K
from sim.cost import _reference as R


def table_args(table) -> tuple:
    """The op table's columns in the order the step-time functions take them."""
    return table.kernel_args


def step_times(batch: list[tuple[int, int]], table) -> tuple[float, float]:
    """The step time of `batch` ((new, context) tokens per sequence) from the kernel and from the
    oracle, which gets the table as plain lists."""
    new, ctx = (np.array(v, np.int64) for v in zip(*batch, strict=True))
    got = K.step_time(new, ctx, float(len(new)), *table_args(table))
    plain = (a.tolist() if isinstance(a, np.ndarray) else a for a in table_args(table))
    return got, R.step_time(list(new), list(ctx), len(new), *plain)


def decode_spans(ctx: list[int], table, t_stop: float, k_max: int) -> tuple[tuple, tuple]:
    """(steps, time, accumulated legs) of one decode span from the kernel and from the oracle."""
    acc = np.zeros(K.N_ACC)
    k, t = K.decode_span(np.array(ctx, np.int64), *table_args(table), 0.0, t_stop, k_max, acc)
    return (k, t, acc), R.decode_span(ctx, *table_args(table), 0.0, t_stop, k_max)
