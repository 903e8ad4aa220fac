"""Numba kernels for the per-operator roofline. Mirrors hardware/_reference.py; arrays and floats only."""

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def op_time(flops, nbytes, flops_per_s, bytes_per_s, overhead_s):
    """(time, compute_s, memory_s) of one operator: max of the two roofline legs plus a fixed overhead."""
    compute_s = flops / flops_per_s
    memory_s = nbytes / bytes_per_s
    return max(compute_s, memory_s) + overhead_s, compute_s, memory_s


@numba.njit(cache=True)
def roofline(flops, nbytes, flops_per_s, bytes_per_s, overhead_s, times, compute_bound):
    """Fill `times[i]` and `compute_bound[i]` for every operator i; return the summed time."""
    total = 0.0
    for i in range(flops.shape[0]):
        t, c, m = op_time(flops[i], nbytes[i], flops_per_s[i], bytes_per_s[i], overhead_s[i])
        times[i] = t
        compute_bound[i] = c >= m
        total += t
    return total


def empty_like(flops):
    return np.empty_like(flops), np.empty(flops.shape[0], dtype=np.bool_)
