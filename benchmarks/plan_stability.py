"""Does the planner give the same answer whatever the seed and the sample size?

    python benchmarks/plan_stability.py            # chat example (Llama-3.1-8B) and the same with 70B
    python benchmarks/plan_stability.py --quick    # 8B only, seeds 1-3

For each model: `plan` at 40 req/s, TTFT p99 <= 2 s and TPOT p99 <= 50 ms over 3 hardware x 4 tp,
for seeds 1-5 and starting sample sizes of 2,000 and 10,000 requests. Prints each answer, the
wall time of each plan, and whether all answers agree. Target: one answer per model, each plan
converged in <= 60 s on 2 cores.
"""

import argparse
import time
from pathlib import Path

import yaml

from sim.studies.planner import Demand, SearchSpace, plan
from sim.studies.verdict import parse_slo

ROOT = Path(__file__).resolve().parents[1]
CHAT = yaml.safe_load((ROOT / "examples" / "chat-h100.yaml").read_text())
SPACE = SearchSpace(("h100-sxm", "h200", "a100-80g-sxm"), (1, 2, 4, 8), 64)
SLOS = (parse_slo("ttft_p99=2s"), parse_slo("tpot_p99=50ms"))
QPS = 40.0


def answers(model: str, seeds: range, sizes: tuple[int, ...]) -> set[tuple]:
    base = {**CHAT, "model": model}
    found = set()
    for requests in sizes:
        for seed in seeds:
            started = time.perf_counter()
            best = plan({**base, "seed": seed}, Demand(QPS, SLOS, requests), SPACE).best
            wall = time.perf_counter() - started
            answer = None if best is None else (best.hardware, best.tp, best.replicas)
            found.add(answer)
            judged = "-" if best is None else f"{best.verdict} on {best.requests:,} requests"
            print(f"{model:14s} seed {seed}  start {requests:>6,}  -> {answer}  ({judged})  {wall:5.1f} s")
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    models = ("llama-3.1-8b",) if args.quick else ("llama-3.1-8b", "llama-3.1-70b")
    seeds = range(1, 4) if args.quick else range(1, 6)
    for model in models:
        found = answers(model, seeds, (2000, 10_000))
        verdict = "stable" if len(found) == 1 else f"UNSTABLE: {len(found)} different answers"
        print(f"{model}: {verdict}\n")


if __name__ == "__main__":
    main()
