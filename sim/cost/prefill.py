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


class PrefillClock:
    """Device time a run's prefill took, for splitting its cost between input and output tokens.

    In a mixed step a prefill chunk shares the weight reads with the decodes beside it, so what a
    prompt token adds to the device's time is its share of a full chunk's step, not a step of its own:
    token i of a prompt, in chunk k = i // C, is charged step([C], [k·C], 0) / C, the chunk it sits in
    at the position it sits at (quadratic attention included). `seconds(start, end)` sums that over the
    tokens [start, end) of each request (a prompt's cached prefix is not prefilled), in replica-seconds;
    times `devices` for device-seconds. The table of chunk steps grows as longer prompts come."""

    def __init__(self, cost: CostModel, chunk: int, devices: int = 1) -> None:
        if chunk < 1:
            raise ValueError(f"chunk ({chunk}) must be at least 1 token")
        self.cost, self.chunk, self.devices = cost, chunk, devices
        self._rate = np.zeros(0)  # seconds per token in chunk k
        self._before = np.zeros(1)  # seconds of the chunks before chunk k

    def _grow(self, chunks: int) -> None:
        have = len(self._rate)
        if chunks <= have:
            return
        c = self.chunk
        more = [self.cost.step([c], [k * c], 0).total_s / c for k in range(have, chunks)]
        self._rate = np.concatenate([self._rate, more])
        self._before = np.concatenate([[0.0], np.cumsum(self._rate * c)])

    def _upto(self, tokens: np.ndarray) -> np.ndarray:
        """Seconds of the first `tokens[i]` tokens of a prompt."""
        full, rest = np.divmod(np.maximum(tokens, 0), self.chunk)
        self._grow(int(full.max()) + 1 if len(full) else 0)
        return self._before[full] + rest * self._rate[full] if len(full) else np.zeros(0)

    def seconds(self, start: np.ndarray, end: np.ndarray) -> float:
        """Replica-seconds of prefilling tokens [start[i], end[i]) of each request."""
        start = np.asarray(start, np.int64)
        end = np.asarray(end, np.int64)
        if not len(end):
            return 0.0
        return float((self._upto(end) - self._upto(start)).sum())

    def device_seconds(self, start: np.ndarray, end: np.ndarray) -> float:
        return self.seconds(start, end) * self.devices
