"""Numba kernels for step costs over a batch and for event skipping. Mirrors sim/cost/_reference.py.

A step's cost is linear in a few batch features (tokens, sampled rows, attention pairs, KV tokens
read, touched-expert fraction, sequences, KV tokens past the KV tier), so each operator is a row of
FLOP and byte coefficients over the feature vector, and its time is the roofline of those two dot
products. An operator may carry efficiency curves (hardware.spec.Curve) for either leg, stored
inline in its `ops` row as knots in log10(work per kernel call); the leg's rate is then
peak x curve(work / calls).
"""

import numba
import numpy as np

from hardware._kernels import op_time
from hardware.spec import MAX_CURVE_KNOTS

N_FEATURES = 12
(ONE, TOKENS, SAMPLED, MOE_TOUCHED, PAIRS_FULL, KV_FULL, PAIRS_WINDOW, KV_WINDOW, SEQS, PAIRS_PREFILL,
 CTX_PREFILL, KV_SPILL) = range(N_FEATURES)
# PAIRS_PREFILL and CTX_PREFILL count only the sequences prefilling this step (more than one new token):
# their query-key pairs and their prior context. A decode span has none, so they stay 0 there.
# KV_SPILL is max(0, KV_FULL - spill_from): the batch's full-attention KV tokens past what the KV tier
# holds (spill_from is infinite when nothing spills).
# per-operator row of the `ops` array: rate_f, rate_b, overhead_s, count, is_link, kernel calls the
# operator stands for, then two curves (compute leg, memory leg), each [knots, log10 sizes..., values...],
# then the share of the device's dynamic power (TDP - idle) a fully active compute leg and a fully
# active memory leg draw, then the overhead paid per sequence of the batch (on top of overhead_s)
RATE_F, RATE_B, OVERHEAD, COUNT, IS_LINK, CALLS = range(6)
CURVE_WIDTH = 1 + 2 * MAX_CURVE_KNOTS
CURVE_F = 6
CURVE_B = CURVE_F + CURVE_WIDTH
POWER_C = CURVE_B + CURVE_WIDTH
POWER_M = POWER_C + 1
SEQ_OVERHEAD = POWER_M + 1
N_OP_COLS = SEQ_OVERHEAD + 1
# accumulator slots: seconds of the step in all, compute-bound, memory-bound and on links, and active
# seconds (each operator's time weighted by the share of dynamic power it draws, at most its time)
N_ACC = 5
TOTAL, COMPUTE, MEMORY, LINK, ACTIVE = range(N_ACC)


@numba.njit(cache=True, inline="always")
def window_pairs(n, c, w):
    """Sum over the n new tokens (positions c+1..c+n) of the keys each attends to, capped at w."""
    if w <= 0 or c + n <= w:
        return n * c + n * (n + 1) / 2.0
    if c >= w:
        return n * float(w)
    m = w - c
    return m * c + m * (m + 1) / 2.0 + (n - m) * float(w)


@numba.njit(cache=True)
def batch_features(new, ctx, sampled, window, moe_ratio, spill_from):
    x = np.zeros(N_FEATURES)
    x[ONE] = 1.0
    for i in range(new.shape[0]):
        n = float(new[i])
        c = float(ctx[i])
        x[TOKENS] += n
        x[PAIRS_FULL] += n * c + n * (n + 1) / 2.0
        x[KV_FULL] += c + n
        if n > 1:
            x[PAIRS_PREFILL] += n * c + n * (n + 1) / 2.0
            x[CTX_PREFILL] += c
        if window > 0:
            x[PAIRS_WINDOW] += window_pairs(n, c, window)
            x[KV_WINDOW] += min(c + n, float(window))
    x[SAMPLED] = sampled
    x[SEQS] = new.shape[0]
    if moe_ratio > 0:
        x[MOE_TOUCHED] = 1.0 - (1.0 - moe_ratio) ** x[TOKENS]
    x[KV_SPILL] = max(0.0, x[KV_FULL] - spill_from)
    return x


@numba.njit(cache=True, inline="always")
def curve_at(ops, o, start, size):
    """Efficiency of operator o's curve stored from column `start` at work `size` (1.0 if none)."""
    n = int(ops[o, start])
    if n == 0 or size <= 0:
        return 1.0
    lx = np.log10(size)
    xs = start + 1
    ys = start + 1 + MAX_CURVE_KNOTS
    if lx <= ops[o, xs]:
        return ops[o, ys]
    for i in range(1, n):
        if lx < ops[o, xs + i]:
            w = (lx - ops[o, xs + i - 1]) / (ops[o, xs + i] - ops[o, xs + i - 1])
            return ops[o, ys + i - 1] + w * (ops[o, ys + i] - ops[o, ys + i - 1])
    return ops[o, ys + n - 1]


@numba.njit(cache=True, inline="always")
def op_seconds(ops, o, f, b, seqs):
    """Operator o's time for f FLOPs and b bytes (all its instances) in a batch of `seqs` sequences
    (its fixed overhead is overhead_s + seqs x the per-sequence overhead), the accumulator slot it counts
    in (LINK, COMPUTE or MEMORY, or TOTAL for an operator with no work at all: a fixed per-step
    overhead counts in the total only), and its active seconds: min(time, power_c x compute leg +
    power_m x memory leg), so the dynamic power it draws never passes the TDP."""
    calls = ops[o, CALLS]
    rate_f = ops[o, RATE_F] * curve_at(ops, o, CURVE_F, f / calls)
    rate_b = ops[o, RATE_B] * curve_at(ops, o, CURVE_B, b / calls)
    t, c, m = op_time(f, b, rate_f, rate_b, ops[o, OVERHEAD] + seqs * ops[o, SEQ_OVERHEAD])
    active = min(t, ops[o, POWER_C] * c + ops[o, POWER_M] * m) * ops[o, COUNT]
    t *= ops[o, COUNT]
    if ops[o, IS_LINK] > 0:
        return t, LINK, active
    if c >= m and c > 0:
        return t, COMPUTE, active
    if m > 0:
        return t, MEMORY, active
    return t, TOTAL, active


EVERY_OP = np.zeros(0, np.bool_)
"""An empty `shared` mask: `ops_time_of` over every operator."""


@numba.njit(cache=True)
def ops_time_of(x, flops_coef, bytes_coef, ops, shared, want, acc):
    """`ops_time` over the operators whose `shared` flag equals `want` (every operator when
    `shared` is empty)."""
    total = 0.0
    for o in range(flops_coef.shape[0]):
        if shared.shape[0] and shared[o] != want:
            continue
        f = 0.0
        b = 0.0
        for k in range(N_FEATURES):
            f += flops_coef[o, k] * x[k]
            b += bytes_coef[o, k] * x[k]
        t, slot, active = op_seconds(ops, o, f, b, x[SEQS])
        total += t
        acc[ACTIVE] += active
        if slot != TOTAL:
            acc[slot] += t
    acc[TOTAL] += total
    return total


@numba.njit(cache=True)
def ops_time(x, flops_coef, bytes_coef, ops, acc):
    """Add each operator's roofline time for features x into acc[TOTAL, COMPUTE, MEMORY, LINK] and
    its active seconds into acc[ACTIVE]; return the step's total."""
    return ops_time_of(x, flops_coef, bytes_coef, ops, EVERY_OP, False, acc)


@numba.njit(cache=True)
def step_time(new, ctx, sampled, window, moe_ratio, spill_from, flops_coef, bytes_coef, ops):
    acc = np.zeros(N_ACC)
    x = batch_features(new, ctx, sampled, window, moe_ratio, spill_from)
    ops_time(x, flops_coef, bytes_coef, ops, acc)
    return acc


@numba.njit(cache=True)
def step_time_into(new, ctx, sampled, window, moe_ratio, spill_from, flops_coef, bytes_coef, ops, acc):
    """`step_time` added into acc; returns the step's total."""
    x = batch_features(new, ctx, sampled, window, moe_ratio, spill_from)
    return ops_time(x, flops_coef, bytes_coef, ops, acc)


@numba.njit(cache=True)
def decode_span(ctx, window, moe_ratio, spill_from, flops_coef, bytes_coef, ops, t0, t_stop, k_max, acc):
    """Advance up to k_max decode steps of a fixed batch (each sequence adds one token per step,
    starting from contexts `ctx`), stopping after the first step that ends at or past t_stop.
    Adds the time split into acc and returns (steps done, end time).

    In such a batch only the attention features change from step to step, and the full-attention
    ones grow by `seqs` each step, so every operator's FLOPs and bytes are affine in the step
    index (plus the windowed features, recomputed per step): the per-step work is two
    multiply-adds per operator instead of a dot product over all features; the spilled KV tokens,
    max(0, full KV tokens - spill_from), are recomputed per step like the windowed ones."""
    seqs = ctx.shape[0]
    x = np.zeros(N_FEATURES)
    x[ONE] = 1.0
    x[TOKENS] = seqs
    x[SAMPLED] = seqs
    x[SEQS] = seqs
    if moe_ratio > 0:
        x[MOE_TOUCHED] = 1.0 - (1.0 - moe_ratio) ** seqs
    ctx_sum = 0.0
    ctx_min = np.inf
    for i in range(seqs):
        ctx_sum += ctx[i]
        ctx_min = min(ctx_min, float(ctx[i]))
    x[PAIRS_FULL] = ctx_sum + seqs  # step 0; each later step adds seqs to both full features
    x[KV_FULL] = x[PAIRS_FULL]
    n_ops = flops_coef.shape[0]
    f0 = np.zeros(n_ops)  # work at step 0 without the windowed features
    b0 = np.zeros(n_ops)
    df = np.zeros(n_ops)  # growth per step
    db = np.zeros(n_ops)
    wf = np.zeros(n_ops)  # per windowed pair / KV token (the two windowed features are equal here)
    wb = np.zeros(n_ops)
    sf = np.zeros(n_ops)  # per spilled KV token
    sb = np.zeros(n_ops)
    for o in range(n_ops):
        for j in range(N_FEATURES):
            f0[o] += flops_coef[o, j] * x[j]
            b0[o] += bytes_coef[o, j] * x[j]
        df[o] = (flops_coef[o, PAIRS_FULL] + flops_coef[o, KV_FULL]) * seqs
        db[o] = (bytes_coef[o, PAIRS_FULL] + bytes_coef[o, KV_FULL]) * seqs
        wf[o] = flops_coef[o, PAIRS_WINDOW] + flops_coef[o, KV_WINDOW]
        wb[o] = bytes_coef[o, PAIRS_WINDOW] + bytes_coef[o, KV_WINDOW]
        sf[o] = flops_coef[o, KV_SPILL]
        sb[o] = bytes_coef[o, KV_SPILL]
    split = np.zeros(N_ACC)  # this span's [total, compute, memory, link, active], added to acc once
    t = t0
    k = 0
    while k < k_max:
        xw = 0.0
        if window > 0:
            if ctx_min + k + 1 >= window:
                xw = seqs * float(window)
            else:
                for i in range(seqs):
                    xw += min(float(ctx[i]) + k + 1, float(window))
        xs = max(0.0, x[KV_FULL] + k * seqs - spill_from)
        step = 0.0
        for o in range(n_ops):
            f = f0[o] + k * df[o] + xw * wf[o] + xs * sf[o]
            dt, slot, active = op_seconds(ops, o, f, b0[o] + k * db[o] + xw * wb[o] + xs * sb[o], seqs)
            step += dt
            split[ACTIVE] += active
            if slot != TOTAL:
                split[slot] += dt
        split[TOTAL] += step
        t += step
        k += 1
        if t >= t_stop:
            break
    for j in range(N_ACC):
        acc[j] += split[j]
    return k, t


@numba.njit(cache=True)
def group_decode_span(
    ctx, starts, ranks, window, moe_ratio, spill_from, flops_coef, bytes_coef, ops, shared, t0, t_stop, k_max,
    accs,
):
    """`decode_span` for attention ranks in step (`CostModel.group_step_into`): rank r decodes the
    sequences ctx[starts[r]:starts[r + 1]], and the other of the `ranks` ranks run empty batches.
    Each step lasts as long as the slowest rank's own operators plus the shared ones, taken on the
    mean rank's features. Adds rank r's time split into accs[r] (its total: the whole steps) and
    returns (steps done, end time)."""
    active = starts.shape[0] - 1
    x = np.zeros(N_FEATURES)
    mean = np.zeros(N_FEATURES)
    own = np.zeros((active, N_ACC))
    shared_acc = np.zeros(N_ACC)
    times = np.zeros(active)
    t = t0
    k = 0
    while k < k_max:
        mean[:] = 0.0
        own[:, :] = 0.0
        shared_acc[:] = 0.0
        for r in range(active):
            x[:] = 0.0
            seqs = starts[r + 1] - starts[r]
            x[ONE] = 1.0
            x[TOKENS] = seqs
            x[SAMPLED] = seqs
            x[SEQS] = seqs
            for i in range(starts[r], starts[r + 1]):
                c = float(ctx[i]) + k
                x[PAIRS_FULL] += c + 1.0
                if window > 0:
                    x[PAIRS_WINDOW] += min(c + 1.0, float(window))
            x[KV_FULL] = x[PAIRS_FULL]
            x[KV_WINDOW] = x[PAIRS_WINDOW]
            if moe_ratio > 0:
                x[MOE_TOUCHED] = 1.0 - (1.0 - moe_ratio) ** seqs
            x[KV_SPILL] = max(0.0, x[KV_FULL] - spill_from)
            for j in range(N_FEATURES):
                mean[j] += x[j]
            times[r] = ops_time_of(x, flops_coef, bytes_coef, ops, shared, False, own[r])
        for j in range(N_FEATURES):
            mean[j] /= ranks
        mean[ONE] = 1.0
        if moe_ratio > 0:
            mean[MOE_TOUCHED] = 1.0 - (1.0 - moe_ratio) ** mean[TOKENS]
        t_shared = ops_time_of(mean, flops_coef, bytes_coef, ops, shared, True, shared_acc)
        step = times.max() + t_shared
        for r in range(active):
            for j in range(N_ACC):
                accs[r, j] += own[r, j] + shared_acc[j]
            accs[r, TOTAL] += step - times[r] - t_shared
        t += step
        k += 1
        if t >= t_stop:
            break
    return k, t
