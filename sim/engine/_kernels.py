"""Numba kernels for a replica's per-event bookkeeping. Mirrors sim/engine/_reference.py.

A replica's running batch is one int64 matrix `S` with a row per field (request id, KV tokens,
prefill target, tokens generated, output length, private blocks, shared blocks) and a column per
slot; `n` slots are live. `L` describes the KV layout as floats: [simple, block_size, kv bytes per
token, windowed kv bytes per token, window, state bytes per sequence, block bytes].
"""

import math

import numba
import numpy as np

RID, KV, TARGET, GEN, OUT, BLOCKS, SHARED = range(7)
N_ROWS = 7


@numba.njit(cache=True, inline="always")
def blocks_for(tokens, L):
    """Mirrors sim.engine.kvcache.KVLayout.blocks_for for one sequence."""
    if tokens <= 0:
        return 0
    if L[0] > 0:
        bs = int(L[1])
        return (tokens + bs - 1) // bs
    if L[6] == 0:
        return 0
    windowed = min(float(tokens), L[4]) if L[4] > 0 else 0.0
    seq_bytes = L[2] * tokens + L[3] * windowed + L[5]
    return math.ceil(seq_bytes / L[6] - 1e-9)


@numba.njit(cache=True)
def decode_needs(S, n, L, need):
    """Blocks each decoding slot needs for one more token (into `need`); returns (total, decoding)."""
    total = 0
    decoding = 0
    for i in range(n):
        if S[KV, i] >= S[TARGET, i]:
            decoding += 1
            extra = blocks_for(S[KV, i] + 1, L) - S[BLOCKS, i] - S[SHARED, i]
            need[i] = extra if extra > 0 else 0
            total += need[i]
        else:
            need[i] = 0
    return total, decoding


@numba.njit(cache=True)
def span_need(S, n, L, k):
    total = 0
    for i in range(n):
        extra = blocks_for(S[KV, i] + k, L) - S[BLOCKS, i] - S[SHARED, i]
        if extra > 0:
            total += extra
    return total


@numba.njit(cache=True)
def reserve_span(S, n, L, k):
    """Give every slot the blocks for k more tokens of KV (its contexts still as at the start of a
    span); returns the blocks newly taken. Repeating it, or a later `commit_span` up to k steps,
    takes nothing more for those tokens."""
    taken = 0
    for i in range(n):
        extra = blocks_for(S[KV, i] + k, L) - S[BLOCKS, i] - S[SHARED, i]
        if extra > 0:
            S[BLOCKS, i] += extra
            taken += extra
    return taken


@numba.njit(cache=True)
def span_length(S, n, L, available):
    """Decode steps until a sequence finishes or the next one would lack a block."""
    k = S[OUT, 0] - S[GEN, 0]
    for i in range(1, n):
        k = min(k, S[OUT, i] - S[GEN, i])
    if span_need(S, n, L, k) <= available:
        return k
    lo, hi = 1, k
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if span_need(S, n, L, mid) <= available:
            lo = mid
        else:
            hi = mid - 1
    return lo


@numba.njit(cache=True)
def plan_decode(S, n, L, need, new, available):
    """The plan of a step with no waiting request: if every slot is decoding and the blocks for one
    more token each fit in `available`, grant them (blocks, new[i] = 1) and return (blocks taken,
    decode steps until the batch must change); otherwise change nothing and return (-1, 0)."""
    total, decoding = decode_needs(S, n, L, need)
    if decoding < n or total > available:
        return -1, 0
    grant_decodes(S, n, need, new)
    return total, span_length(S, n, L, available - total)


@numba.njit(cache=True)
def commit_span(S, n, k, L):
    """Every slot decoded k tokens; returns (blocks newly taken, slots now finished)."""
    taken = 0
    ended = 0
    for i in range(n):
        S[KV, i] += k
        S[GEN, i] += k
        S[TARGET, i] = S[KV, i]
        extra = blocks_for(S[KV, i], L) - S[BLOCKS, i] - S[SHARED, i]
        if extra > 0:
            S[BLOCKS, i] += extra
            taken += extra
        if S[GEN, i] >= S[OUT, i]:
            ended += 1
    return taken, ended


@numba.njit(cache=True)
def finished(S, n):
    """Slots whose request has all its output tokens."""
    out = np.empty(n, np.int64)
    m = 0
    for i in range(n):
        if S[GEN, i] >= S[OUT, i]:
            out[m] = i
            m += 1
    return out[:m]


@numba.njit(cache=True)
def compact(S, n, drop):
    """Remove the slots in `drop` (sorted), keeping the others in order; returns the new n."""
    j = 0
    d = 0
    for i in range(n):
        if d < drop.shape[0] and drop[d] == i:
            d += 1
            continue
        if j != i:
            for r in range(N_ROWS):
                S[r, j] = S[r, i]
        j += 1
    return j


@numba.njit(cache=True)
def retire(S, n):
    """Remove the finished slots (all output tokens generated), keeping the others in order.
    Returns (their slots, request ids, tokens generated, private blocks they held, the new n)."""
    slots = finished(S, n)
    m = slots.shape[0]
    rids = np.empty(m, np.int64)
    gens = np.empty(m, np.int64)
    freed = 0
    for d in range(m):
        rids[d] = S[RID, slots[d]]
        gens[d] = S[GEN, slots[d]]
        freed += S[BLOCKS, slots[d]]
    return slots, rids, gens, freed, compact(S, n, slots)


@numba.njit(cache=True)
def sampled_count(S, n, new):
    """Slots that sample a token this step: their new tokens reach the prefill target."""
    count = 0
    for i in range(n):
        if new[i] > 0 and S[KV, i] + new[i] >= S[TARGET, i]:
            count += 1
    return count


@numba.njit(cache=True)
def commit_step(S, n, new, prefilled, first_token_s, now, mark_first):
    """Apply a step: KV grows by the new tokens, a slot reaching its target samples a token (the
    first one stamps `first_token_s` when `mark_first`). Returns (the slots whose prefill ended,
    slots now finished)."""
    completed = np.empty(n, np.int64)
    m = 0
    ended = 0
    for i in range(n):
        t = new[i]
        if t > 0:
            was_prefill = S[KV, i] < S[TARGET, i]
            if was_prefill:
                prefilled[S[RID, i]] += t
            S[KV, i] += t
            if S[KV, i] >= S[TARGET, i]:
                S[GEN, i] += 1
                if mark_first and S[GEN, i] == 1:
                    first_token_s[S[RID, i]] = now
                if was_prefill:
                    completed[m] = i
                    m += 1
        if S[KV, i] > S[TARGET, i]:
            S[TARGET, i] = S[KV, i]
        if S[GEN, i] >= S[OUT, i]:
            ended += 1
    return completed[:m], ended


@numba.njit(cache=True)
def grant_decodes(S, n, need, new):
    """Give every decoding slot its token this step (new[i] = 1) and the blocks `need` holds for
    it; returns how many slots decode."""
    count = 0
    for i in range(n):
        if S[KV, i] >= S[TARGET, i]:
            S[BLOCKS, i] += need[i]
            new[i] = 1
            count += 1
    return count
