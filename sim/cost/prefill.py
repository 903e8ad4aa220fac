"""What prefilling the first tokens of a prompt costs, at the positions they sit at.

A prompt of L tokens prefills in chunks of C tokens (the scheduler's budget); chunk k attends to the
k·C tokens before it, so its step grows with k and the whole prefill grows as L² at long context
(the causal pairs sum to L(L+1)/2 however the prompt is chunked). The value of a cached prefix is the
prefill it saves: this sum, not L times the cost of a first chunk, which undervalues a 1M-token
prefix by an order of magnitude.
"""

from __future__ import annotations

import numpy as np

from sim.cost.roofline import CostModel


def prefill_s(cost: CostModel, tokens: np.ndarray, chunk: int) -> np.ndarray:
    """Seconds to prefill the first `tokens[i]` tokens of a prompt from an empty cache, in chunks of
    `chunk` tokens, no token sampled: the sum over chunks of `cost.step([n], [position], 0)`."""
    if chunk < 1:
        raise ValueError(f"chunk ({chunk}) must be at least 1 token")
    tokens = np.asarray(tokens, np.int64)
    out = np.zeros(len(tokens))
    if not len(tokens) or tokens.max() <= 0:
        return out
    full, rest = np.divmod(np.maximum(tokens, 0), chunk)
    steps = [cost.step([chunk], [k * chunk], 0).total_s for k in range(int(full.max()))]
    out += np.concatenate([[0.0], np.cumsum(steps)])[full]
    tails = {(f, r) for f, r in zip(full.tolist(), rest.tolist(), strict=True) if r}
    tail_s = {(f, r): cost.step([r], [f * chunk], 0).total_s for f, r in tails}
    out += [tail_s.get((f, r), 0.0) for f, r in zip(full.tolist(), rest.tolist(), strict=True)]
    return out
