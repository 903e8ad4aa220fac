"""Plain-Python oracles for sim/engine/_kernels.py: one obvious loop per quantity, written against
the same state matrix and layout vector, and against sim.engine.kvcache.KVLayout for block counts."""

from sim.engine._kernels import BLOCKS, GEN, KV, N_ROWS, OUT, RID, SHARED, TARGET


def blocks_for(tokens, layout):
    """`layout` is a sim.engine.kvcache.KVLayout: the arithmetic the kernel's float vector encodes."""
    return int(layout.blocks_for(int(tokens)))


def decode_needs(S, n, layout):
    need = []
    for i in range(n):
        decoding = S[KV][i] >= S[TARGET][i]
        extra = blocks_for(S[KV][i] + 1, layout) - S[BLOCKS][i] - S[SHARED][i]
        need.append(max(extra, 0) if decoding else 0)
    decoding = sum(1 for i in range(n) if S[KV][i] >= S[TARGET][i])
    return sum(need), decoding, need


def span_need(S, n, layout, k):
    return sum(max(blocks_for(S[KV][i] + k, layout) - S[BLOCKS][i] - S[SHARED][i], 0) for i in range(n))


def reserve_span(S, n, layout, k):
    taken = 0
    for i in range(n):
        extra = blocks_for(S[KV][i] + k, layout) - S[BLOCKS][i] - S[SHARED][i]
        if extra > 0:
            S[BLOCKS][i] += extra
            taken += extra
    return taken


def span_length(S, n, layout, available):
    """The largest k up to the first finish whose blocks fit, by trying every k."""
    k_finish = min(S[OUT][i] - S[GEN][i] for i in range(n))
    best = 1
    for k in range(1, k_finish + 1):
        if span_need(S, n, layout, k) <= available:
            best = k
        else:
            break
    return best


def plan_decode(S, n, layout, new, available):
    total, decoding, need = decode_needs(S, n, layout)
    if decoding < n or total > available:
        return -1, 0
    grant_decodes(S, n, need, new)
    return total, span_length(S, n, layout, available - total)


def commit_span(S, n, k, layout):
    taken = 0
    for i in range(n):
        S[KV][i] += k
        S[GEN][i] += k
        S[TARGET][i] = S[KV][i]
        extra = blocks_for(S[KV][i], layout) - S[BLOCKS][i] - S[SHARED][i]
        if extra > 0:
            S[BLOCKS][i] += extra
            taken += extra
    return taken, len(finished(S, n))


def finished(S, n):
    return [i for i in range(n) if S[GEN][i] >= S[OUT][i]]


def compact(S, n, drop):
    kept = [[S[r][i] for i in range(n) if i not in set(drop)] for r in range(N_ROWS)]
    for r in range(N_ROWS):
        S[r][: len(kept[r])] = kept[r]
    return len(kept[0])


def retire(S, n):
    done = finished(S, n)
    rids, gens = [S[RID][i] for i in done], [S[GEN][i] for i in done]
    freed = sum(S[BLOCKS][i] for i in done)
    return done, rids, gens, freed, compact(S, n, done)


def sampled_count(S, n, new):
    return sum(1 for i in range(n) if new[i] > 0 and S[KV][i] + new[i] >= S[TARGET][i])


def commit_step(S, n, new, prefilled, first_token_s, now, mark_first):
    """The step written as the engine's earlier numpy code did it: masks over all live slots."""
    rid = [S[RID][i] for i in range(n)]
    prefill = [new[i] > 0 and S[KV][i] < S[TARGET][i] for i in range(n)]
    for i in range(n):
        if prefill[i]:
            prefilled[rid[i]] += new[i]
        S[KV][i] += new[i]
    sampled = [new[i] > 0 and S[KV][i] >= S[TARGET][i] for i in range(n)]
    for i in range(n):
        S[GEN][i] += int(sampled[i])
        if mark_first and sampled[i] and S[GEN][i] == 1:
            first_token_s[rid[i]] = now
        S[TARGET][i] = max(S[TARGET][i], S[KV][i])
    return [i for i in range(n) if prefill[i] and sampled[i]], len(finished(S, n))


def grant_decodes(S, n, need, new):
    decoding = [i for i in range(n) if S[KV][i] >= S[TARGET][i]]
    for i in decoding:
        S[BLOCKS][i] += need[i]
        new[i] = 1
    return len(decoding)
