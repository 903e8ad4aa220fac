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
    return ops_time(x, flops_coef, bytes_coef, ops, [True] * len(ops))


def ops_time(x, flops_coef, bytes_coef, ops, which):
    """[total, compute-bound, memory-bound, link, active] seconds of the operators `which` marks,
    for features x."""
    acc = [0.0, 0.0, 0.0, 0.0, 0.0]
    for f_row, b_row, row, keep in zip(flops_coef, bytes_coef, ops, which, strict=True):
        if not keep:
            continue
        rate_f, rate_b, overhead, count, is_link, calls = row[:6]
        f = sum(a * b for a, b in zip(f_row, x, strict=True))
        b = sum(a * b for a, b in zip(b_row, x, strict=True))
        rate_f *= curve_at(row, CURVE_F, f / calls)
        rate_b *= curve_at(row, CURVE_B, b / calls)
        t, c, m = op_time(f, b, rate_f, rate_b, overhead + x[8] * row[SEQ_OVERHEAD])
        acc[4] += min(t, row[POWER_C] * c + row[POWER_M] * m) * count
        t *= count
        acc[0] += t
        if is_link:
            acc[3] += t
        elif c > 0 or m > 0:
            acc[1 if c >= m else 2] += t
    return acc


def group_step(batches, ranks, window, moe_ratio, spill_from, flops_coef, bytes_coef, ops, shared):
    """One step of `ranks` attention ranks in step, `batches` holding (new, ctx, sampled) of those
    with work: (its seconds, each such rank's [total, compute, memory, link, active]). Each rank's
    own operators take its batch, the shared ones the mean rank's features; the step lasts as long
    as the slowest rank's own operators plus the shared ones."""
    own = [batch_features(*b, window, moe_ratio, spill_from) for b in batches]
    mean = [sum(x[j] for x in own) / ranks for j in range(len(own[0]))]
    mean[0] = 1.0
    mean[3] = 1.0 - (1.0 - moe_ratio) ** mean[1] if moe_ratio > 0 else 0.0
    shared_acc = ops_time(mean, flops_coef, bytes_coef, ops, list(shared))
    own_accs = [ops_time(x, flops_coef, bytes_coef, ops, [not s for s in shared]) for x in own]
    dt = max(a[0] for a in own_accs) + shared_acc[0]
    accs = [[a + s for a, s in zip(acc, shared_acc, strict=True)] for acc in own_accs]
    for acc in accs:
        acc[0] = dt
    return dt, accs


def group_decode_span(
    ctxs, ranks, window, moe_ratio, spill_from, flops_coef, bytes_coef, ops, shared, t0, t_stop, k_max
):
    """`group_step` of decoding ranks (`ctxs`: each rank's contexts) one step at a time; returns
    (steps, end time, each rank's [total, compute, memory, link, active])."""
    ctxs = [list(c) for c in ctxs]
    t, k, accs = t0, 0, [[0.0] * 5 for _ in ctxs]
    while k < k_max:
        batches = [([1] * len(c), c, len(c)) for c in ctxs]
        dt, step = group_step(
            batches, ranks, window, moe_ratio, spill_from, flops_coef, bytes_coef, ops, shared
        )
        accs = [[a + s for a, s in zip(acc, st, strict=True)] for acc, st in zip(accs, step, strict=True)]
        t += dt
        ctxs = [[c + 1 for c in cs] for cs in ctxs]
        k += 1
        if t >= t_stop:
            break
    return k, t, accs


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
