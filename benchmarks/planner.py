"""Planner wall time for a 4-hardware x 4-TP search.

    python benchmarks/planner.py [--requests 2000]

Llama-3.1-70B chat traffic at 20 requests/s with TTFT p99 <= 2 s and TPOT p99 <= 50 ms, over
h100-sxm, h200, a100-80g-sxm and mi300x at tp 1, 2, 4 and 8, up to 64 devices: prints the wall
time, the number of simulations, how many configurations the roofline bounds dropped unsimulated,
and the answer. Target: minutes, not hours.
"""

import argparse
import os
import time
from pathlib import Path

import yaml

from sim.studies.planner import Demand, SearchSpace, plan
from sim.studies.verdict import parse_slo

HARDWARE = ("h100-sxm", "h200", "a100-80g-sxm", "mi300x")
TPS = (1, 2, 4, 8)
BASE = yaml.safe_load((Path(__file__).resolve().parents[1] / "examples" / "chat-h100.yaml").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests simulated per configuration")
    args = parser.parse_args()
    base = {**BASE, "model": "llama-3.1-70b"}
    slos = [parse_slo("ttft_p99=2s"), parse_slo("tpot_p99=50ms")]
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    started = time.perf_counter()
    answer = plan(base, Demand(20.0, slos, args.requests), SearchSpace(HARDWARE, TPS, max_devices=64))
    wall = time.perf_counter() - started
    print(f"{len(HARDWARE)} hardware x {len(TPS)} tp: {wall:.1f} s wall, {answer.simulations} simulations "
          f"of {args.requests:,} requests")
    for rank, c in enumerate(answer.ranked, start=1):
        margins = ", ".join(f"{k} headroom {v:+.0%}" for k, v in c.headroom.items())
        print(f"  #{rank} {c.replicas} x {c.hardware} tp={c.tp}: {c.devices} devices, "
              f"${c.cost_per_hour_usd:.2f}/h, {margins}")
    for c in answer.misses:
        print(f"  misses with {c.devices} devices: {c.hardware} tp={c.tp}")
    for s in answer.skipped:
        print(f"  not ranked: {s.hardware} tp={s.tp}: {s.reason}")


if __name__ == "__main__":
    main()
