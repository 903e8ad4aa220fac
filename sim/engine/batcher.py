"""A front-end batcher: the harness between the load generator and the replicas holds arriving
requests and sends them on in batches, each batch to one replica.

This is what AMD's MLPerf Inference v4.1 Llama-2-70B Server harness does with `--enable-batcher`
(github.com/mlcommons/inference_results_v4.1 at commit 198fc46,
closed/AMD/code/llama2-70b-99/VllmFp8/sync_sut.py, `batch_samples_loop`): after a batch goes out
it waits for arrivals, each wait at most `window_s`, and sends what it holds (at most
`max_requests`) at the first arrival or timeout that finds `window_s` passed since that batch, or
as soon as `max_requests` are held; `send_samples` gives each batch to the next replica, round
robin. A request's latencies still count from its arrival, so the wait shows in its TTFT, and a
replica receives a burst of prompts to prefill at once instead of a stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Batcher:
    """Hold arrivals until `window_s` has passed since the last batch left or `max_requests` wait."""

    window_s: float
    max_requests: int

    def __post_init__(self) -> None:
        if not self.window_s > 0:
            raise ValueError(f"batcher window_s must be positive, got {self.window_s}")
        if self.max_requests < 1:
            raise ValueError(f"batcher max_requests must be at least 1, got {self.max_requests}")


def dispatch(arrival_s: np.ndarray, batcher: Batcher) -> tuple[np.ndarray, np.ndarray]:
    """For arrivals sorted by time, when each request leaves the batcher and the number of its
    batch (0, 1, ...), following the harness loop: the clock moves to the next arrival if it comes
    within `window_s` of the last wait's start, else by `window_s` (a timeout); after each move,
    what is held leaves (at most `max_requests`, oldest first) if `max_requests` are held or
    `window_s` has passed since the last batch left. The first batch's clock starts at the first
    arrival."""
    times = np.asarray(arrival_s, dtype=float).tolist()
    n = len(times)
    release = np.empty(n)
    batch = np.empty(n, dtype=np.int64)
    if n == 0:
        return release, batch
    window, cap = batcher.window_s, batcher.max_requests
    held: list[int] = [0]
    now = stamp = times[0]
    nxt, number = 1, 0
    while held or nxt < n:
        if held and (len(held) >= cap or now >= stamp + window):
            out, held = held[:cap], held[cap:]
            release[out] = now
            batch[out] = number
            number += 1
            stamp = now
        if nxt < n and times[nxt] <= now + window:
            now = max(now, times[nxt])
            held.append(nxt)
            nxt += 1
        elif held:
            now += window  # the wait times out
        elif nxt < n:  # nothing held: the wait lasts until the next arrival, however far
            now = times[nxt]
            held.append(nxt)
            nxt += 1
    return release, batch
