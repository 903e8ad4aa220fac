"""Prefix-cache eviction: accesses per second for each numba kernel and its Python oracle, one core.

    python benchmarks/cache.py [MOONCAKE_TRACE.jsonl]

Streams: 2M Zipf(1.1) accesses over 1M blocks (popularity unrelated to block index), and each
given Mooncake trace's block hashes in arrival order. Kernels replay the whole stream at a small
(1,000 blocks) and a large (10% of the distinct blocks) cache; the oracles replay its first 20,000
accesses at the small one (the LFU and cost oracles scan every resident block per eviction, so they
slow down with capacity). Each figure is the fastest of repeated runs.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

from sim.engine import _eviction_kernels as K
from sim.engine import _eviction_reference as R
from sim.studies.cachecurve import block_stream

ORACLE_ACCESSES = 20_000
SMALL_BLOCKS = 1_000


def rate(fn, accesses, min_s=0.5):
    """Accesses per second of the fastest of the runs made in `min_s` (other processes on a shared
    machine only ever slow a run down)."""
    fn()  # compile / warm
    best, t_end = np.inf, time.perf_counter() + min_s
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return accesses / best


def streams(argv):
    rng = np.random.default_rng(0)
    zipf = rng.permutation(1_000_000)[rng.zipf(1.1, 2_000_000) % 1_000_000]  # popular ids scattered
    yield "zipf 2M / 1M blocks", np.unique(zipf, return_inverse=True)[1].astype(np.int64), np.ones(len(zipf))
    for path in map(Path, argv):
        hashes = [np.array(json.loads(line)["hash_ids"], np.int64) for line in path.open()]
        s = block_stream(hashes)
        yield f"{path.name} ({len(s.keys) / 1e3:,.0f}k)", s.keys, s.costs


def bench(name, keys, costs):
    head, head_costs = keys[:ORACLE_ACCESSES].tolist(), costs[:ORACLE_ACCESSES].tolist()
    large = max(SMALL_BLOCKS, int(keys.max() + 1) // 10)
    runs = {
        "lru": (lambda c: K.simulate_lru(keys, c), lambda c: R.simulate_lru(head, c)),
        "lfu": (lambda c: K.simulate_lfu(keys, c), lambda c: R.simulate_lfu(head, c)),
        "cost": (lambda c: K.simulate_cost(keys, costs, c),
                 lambda c: R.simulate_cost(head, head_costs, c)),
    }
    for policy, (kernel, oracle) in runs.items():
        for capacity in (SMALL_BLOCKS, large):
            fast = rate(lambda k=kernel, c=capacity: k(c), len(keys))
            if capacity == SMALL_BLOCKS:
                slow = rate(lambda o=oracle, c=capacity: o(c), len(head), min_s=0.2)
                tail = f"{slow / 1e6:11.3f} {fast / slow:7.0f}x"
            else:
                tail = ""
            print(f"{name:32} {policy:5} {capacity:9,} {fast / 1e6:10.1f} {tail}")


def main(argv):
    print(f"{'stream':32} {'policy':5} {'capacity':>9} {'numba M/s':>10} {'python M/s':>11} {'ratio':>8}")
    for name, keys, costs in streams(argv):
        bench(name, keys, costs)


if __name__ == "__main__":
    main(sys.argv[1:])
