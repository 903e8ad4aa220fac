"""Sweep throughput: points per minute for a 200-point sweep with 1 and 2 local worker processes.

    python benchmarks/sweep.py [--point-requests 200]

Each point is a small chat scenario (Llama-3.1-8B, 200 requests); the grid is 10 loads x 4 replica
counts x 5 HBM bandwidths. Timed from the first submitted point to the last stored row (worker start
included), the same path `ctxsim sweep` takes: `execute()` plus one parquet file per point.
Target: near-linear, i.e. 2 workers at close to twice the points per minute of 1 on 2 free cores.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

from sim.studies import store as sweep_store
from sim.studies.sweep import SweepSpec, build, execute

BASE = {"name": "bench-sweep", "seed": 3, "hardware": "h100-sxm", "model": "llama-3.1-8b",
        "workload": {"arrivals": {"kind": "poisson", "rate_per_s": 10},
                     "prompt_tokens": {"kind": "lognormal", "median": 1000, "sigma": 0.8, "max": 8000},
                     "output_tokens": {"kind": "lognormal", "median": 150, "sigma": 0.7, "max": 1000}},
        "stop": {"requests": 200}}
GRID = {"workload.arrivals.rate_per_s": [2.0 * (i + 1) for i in range(10)],
        "cluster.replicas": [1, 2, 3, 4],
        "hardware.memory.hbm.bandwidth_bytes_per_s": ["2 TB/s", "2.5 TB/s", "3.35 TB/s", "4 TB/s", "5 TB/s"]}


def timed(points, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        sweep_store.prepare(out, "bench", list(GRID), [p.point_id for p in points])
        started = time.perf_counter()
        for row in execute(points, workers):
            if row["error"] is not None:
                raise RuntimeError(row["error"])
            sweep_store.write_point(out, row)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--point-requests", type=int, default=200, help="requests simulated per point")
    args = parser.parse_args()
    base = {**BASE, "stop": {"requests": args.point_requests}}
    started = time.perf_counter()
    points = build(SweepSpec.model_validate({"base": base, "grid": GRID}), base).points
    print(f"{len(points)} points validated in {time.perf_counter() - started:.2f} s; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    rates = {}
    for workers in (1, 2):
        wall = timed(points, workers)
        rates[workers] = len(points) / wall * 60
        print(f"{workers} worker(s): {wall:6.1f} s, {rates[workers]:7.0f} points/min")
    print(f"speed-up with 2 workers: {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
