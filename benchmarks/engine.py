"""Simulated requests per wall-second (one core).

    python benchmarks/engine.py            # 100K chat requests on 8 replicas, the same with 4x outputs
    python benchmarks/engine.py --million  # also 1M requests (peak memory printed)

Targets: 100K-request wall time ratio (4x outputs / 1x) <= 1.3; 1M requests <= 60 s, <= 2 GB.
"""

import argparse
import resource
import time

from sim.api import make_requests, run
from sim.scenario import scenario_from_dict


def chat(requests: int, output_scale: float = 1.0, rate: float = 80.0) -> dict:
    return {
        "name": "bench-chat",
        "seed": 1,
        "hardware": "h100-sxm",
        "model": "llama-3.1-8b",
        "cluster": {"replicas": 8, "router": "round_robin"},
        "workload": {
            "arrivals": {"kind": "poisson", "rate_per_s": rate},
            "prompt_tokens": {"kind": "lognormal", "median": 1000, "sigma": 0.8, "max": 16000},
            "output_tokens": {
                "kind": "lognormal",
                "median": 200 * output_scale,
                "sigma": 0.7,
                "max": int(2000 * output_scale),
            },
        },
        "stop": {"requests": requests},
    }


def bench(label: str, data: dict) -> float:
    sc = scenario_from_dict(data)
    reqs = make_requests(sc)
    t0 = time.perf_counter()
    result = run(sc, requests=reqs)
    wall = time.perf_counter() - t0
    s = result.summary
    print(
        f"{label:34s} {len(reqs):>9,} requests  {wall:7.2f} s  {len(reqs) / wall:>9,.0f} req/s  "
        f"events {s.sim_events:>9,}  output tokens {int(result.requests.output_tokens.sum()):>12,}  "
        f"util {s.utilization:.2f}"
    )
    return wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--million", action="store_true")
    parser.add_argument("--requests", type=int, default=100_000)
    args = parser.parse_args()
    bench("warm-up (compile)", chat(2_000))
    base = bench("chat, 8 replicas", chat(args.requests))
    long = bench("chat, 8 replicas, outputs x4", chat(args.requests, 4.0, rate=80.0 / 4))
    print(f"wall-time ratio outputs x4 / x1: {long / base:.2f}  (target <= 1.3)")
    if args.million:
        wall = bench("1M chat requests, 8 replicas", chat(1_000_000))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        print(f"1M requests: {wall:.1f} s (target <= 60 s), peak RSS {peak:.2f} GB (target <= 2 GB)")


if __name__ == "__main__":
    main()
