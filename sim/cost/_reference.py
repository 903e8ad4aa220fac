"""Plain-Python oracles for sim/cost/_kernels.py: one obvious loop per quantity, no numba, no numpy tricks.

The decode-span oracle is literally "take one step at a time", which is also what the engine's
step-by-step mode does; the tests hold the kernels to these within 1e-9.
"""

import math

from hardware._reference import op_time
from hardware.spec import MAX_CURVE_KNOTS

CURVE_F = 6
CURVE_B = CURVE_F + 1 + 2 * MAX_CURVE_KNOTS
POWER_C = CURVE_B + 1 + 2 * MAX_CURVE_KNOTS
POWER_M = POWER_C + 1
SEQ_OVERHEAD = POWER_M + 1


def curve_at(row, start, size):
    """Efficiency at `size` from the curve stored in `row` from column `start`: the two knots around
    log10(size) joined by a straight line, the end values outside the knots; 1.0 without a curve."""
    n = int(row[start])
    if n == 0 or size <= 0:
        return 1.0
    xs = list(row[start + 1 : start + 1 + n])
    ys = list(row[start + 1 + MAX_CURVE_KNOTS : start + 1 + MAX_CURVE_KNOTS + n])
    lx = math.log10(size)
    if lx <= xs[0]:
        return ys[0]
    if lx >= xs[-1]:
        return ys[-1]
    i = next(i for i in range(1, n) if lx < xs[i])
    return ys[i - 1] + (lx - xs[i - 1]) / (xs[i] - xs[i - 1]) * (ys[i] - ys[i - 1])


def window_pairs(n, c, w):
    """Sum over the new tokens j=1..n of min(c+j, w) (w <= 0 means no window), by brute force."""
    return float(sum(c + j if w <= 0 else min(c + j, w) for j in range(1, n + 1)))


def batch_features(new, ctx, sampled, window, moe_ratio, spill_from):
    tokens = float(sum(new))
    kv_tokens = float(sum(c + n for n, c in zip(new, ctx, strict=True)))
    return [
        1.0,
        tokens,
        float(sampled),
        1.0 - (1.0 - moe_ratio) ** tokens if moe_ratio > 0 else 0.0,
        sum(window_pairs(n, c, 0) for n, c in zip(new, ctx, strict=True)),
        float(sum(c + n for n, c in zip(new, ctx, strict=True))),
        sum(window_pairs(n, c, window) for n, c in zip(new, ctx, strict=True)) if window > 0 else 0.0,
        float(sum(min(c + n, window) for n, c in zip(new, ctx, strict=True))) if window > 0 else 0.0,
        float(len(new)),
        sum(window_pairs(n, c, 0) for n, c in zip(new, ctx, strict=True) if n > 1),
        float(sum(c for n, c in zip(new, ctx, strict=True) if n > 1)),
        max(0.0, kv_tokens - spill_from),
    ]


def step_time(new, ctx, sampled, window, moe_ratio, spill_from, flops_coef, bytes_coef, ops):
    """[total, compute-bound, memory-bound, link, active] seconds of one step."""
    x = batch_features(new, ctx, sampled, window, moe_ratio, spill_from)
    acc = [0.0, 0.0, 0.0, 0.0, 0.0]
    for f_row, b_row, row in zip(flops_coef, bytes_coef, ops, strict=True):
        rate_f, rate_b, overhead, count, is_link, calls = row[:6]
        f = sum(a * b for a, b in zip(f_row, x, strict=True))
        b = sum(a * b for a, b in zip(b_row, x, strict=True))
        rate_f *= curve_at(row, CURVE_F, f / calls)
        rate_b *= curve_at(row, CURVE_B, b / calls)
        t, c, m = op_time(f, b, rate_f, rate_b, overhead + len(new) * row[SEQ_OVERHEAD])
        acc[4] += min(t, row[POWER_C] * c + row[POWER_M] * m) * count
        t *= count
        acc[0] += t
        if is_link:
            acc[3] += t
        elif c > 0 or m > 0:
            acc[1 if c >= m else 2] += t
    return acc


def decode_span(ctx, window, moe_ratio, spill_from, flops_coef, bytes_coef, ops, t0, t_stop, k_max):
    """Steps one at a time; returns (steps, end time, [total, compute, memory, link, active])."""
    ctx = list(ctx)
    t, k, acc = t0, 0, [0.0, 0.0, 0.0, 0.0, 0.0]
    while k < k_max:
        step = step_time(
            [1] * len(ctx), ctx, len(ctx), window, moe_ratio, spill_from, flops_coef, bytes_coef, ops
        )
        acc = [a + s for a, s in zip(acc, step, strict=True)]
        t += step[0]
        ctx = [c + 1 for c in ctx]
        k += 1
        if t >= t_stop:
            break
    return k, t, acc
