"""Simulated requests per wall-second (one core).

    python benchmarks/engine.py            # 100K chat requests on 8 replicas, the same with 4x outputs
    python benchmarks/engine.py --million  # also 1M requests (peak memory printed)
    python benchmarks/engine.py --day      # a streamed day: 8.64M requests, then sketch vs exact on 1M

Targets: 100K-request wall time ratio (4x outputs / 1x) <= 1.3; 1M requests <= 60 s, <= 2 GB; a
streamed day of traffic (100 requests/s for 24 h, diurnal) <= 6 min and <= 3 GB peak RSS, its
percentiles within the sketch's stated relative accuracy of the exact ones.
"""

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sim.api import make_requests, run
from sim.engine.online import RELATIVE_ACCURACY
from sim.scenario import scenario_from_dict
from sim.stream import run_streamed

DAY_REQUESTS = 8_640_000


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


def day(requests: int) -> dict:
    """A day of chat traffic: a diurnal rate of 100 requests/s on average (50 at night, 150 at the
    2 pm peak) on 8 replicas of Llama 3.1 8B on H100, the cluster `chat` sizes for 150 requests/s
    (TTFT p99 about 0.3 s at the peak)."""
    data = chat(requests)
    arrivals = {"kind": "diurnal", "mean_rate_per_s": 100.0, "amplitude": 0.5, "peak_s": 50_400.0}
    data["workload"]["arrivals"] = arrivals
    return data


def streamed(label: str, requests: int, folder: Path) -> tuple[float, float, object]:
    """Wall and CPU seconds of a streamed run: the CPU time is what one core spent, which is the
    wall time of an otherwise idle core even when other work shared this one."""
    t0, c0 = time.perf_counter(), time.process_time()
    result = run_streamed(scenario_from_dict(day(requests)), folder)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    s = result.summary
    print(
        f"{label:34s} {s.requests_total:>9,} requests  {wall:7.1f} s wall  {cpu:7.1f} s CPU  "
        f"{s.requests_total / cpu:>9,.0f} req/CPU-s  "
        f"ttft p99 {s.ttft_p99_s * 1e3:.0f} ms  overloaded {s.overloaded}"
    )
    return wall, cpu, result


def sketch_check(folder: Path, summary) -> None:
    """The streamed summary's percentiles against the exact ones of the rows it wrote."""
    table = pd.read_parquet(folder / "requests.parquet", columns=["ttft_s", "tpot_s", "e2e_s"])
    worst = 0.0
    for m in ("ttft", "tpot", "e2e"):
        values = np.sort(table[f"{m}_s"].dropna().to_numpy())
        for q in (50, 90, 99):
            exact = values[int(q / 100 * (len(values) - 1))]
            sketch = summary.metric(f"{m}_p{q}_s")
            error = abs(sketch - exact) / exact
            worst = max(worst, error)
            print(f"  {m} p{q}: sketch {sketch:.6f} s, exact {exact:.6f} s, error {error:.3%}")
    print(f"worst relative error {worst:.3%} (stated bound {RELATIVE_ACCURACY:.1%})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--million", action="store_true")
    parser.add_argument("--day", action="store_true", help="a streamed day of traffic, and the sketch check")
    parser.add_argument("--requests", type=int, default=100_000)
    args = parser.parse_args()
    if args.day:
        with tempfile.TemporaryDirectory() as tmp:
            streamed("warm-up (compile)", 20_000, Path(tmp))
        with tempfile.TemporaryDirectory() as tmp:
            wall, cpu, _ = streamed("a day, streamed", DAY_REQUESTS, Path(tmp))
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
            print(
                f"a day: {cpu / 60:.1f} min of one core (target <= 6 min; wall {wall / 60:.1f} min), "
                f"peak RSS {peak:.2f} GB (target <= 3 GB)"
            )
        with tempfile.TemporaryDirectory() as tmp:
            *_, result = streamed("1M streamed, sketch vs exact", 1_000_000, Path(tmp))
            sketch_check(Path(tmp), result.summary)
        return
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
