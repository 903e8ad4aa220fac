"""Cluster sizing for the dashboard: `sim.studies.planner.plan` (the same search `ctxsim plan` runs), then
one more simulation of the winner so its latency CDFs can be drawn (the planner keeps summaries
only), and the candidates as one table."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from dashboard.runs import compact
from sim.api import run
from sim.engine.summary import Summary
from sim.studies.planner import Demand, SearchSpace, candidate_scenario, plan


def size_cluster(
    base: dict, demand: Demand, space: SearchSpace, *, progress: Callable[[str], None] | None = None
) -> tuple[dict, dict | None]:
    """(the plan as a mapping, the chosen configuration's run kept by `dashboard.runs.compact`, or
    None when nothing met the SLOs). A space without hardware searches the scenario's own."""
    answer = plan(base, demand, space, progress=progress)
    best = answer.best
    if best is None:
        return answer.to_dict(), None
    if progress:
        progress(f"latency of the chosen {best.hardware} tp={best.tp} x {best.replicas} replicas")
    hardware = best.hardware if space.hardware else None
    scenario = candidate_scenario(
        base, demand, hardware, best.tp, best.replicas, prefill_replicas=best.prefill_replicas
    )
    label = f"{best.replicas} x {best.devices // best.replicas} x {best.label}"
    return answer.to_dict(), compact(run(scenario), label, scenario.model_dump(mode="json"))


def candidates_table(plan_dict: dict) -> pd.DataFrame:
    """Ranked configurations, then those that missed even at the most devices, then the skipped."""
    rows = []
    for status, key in (("meets SLOs", "ranked"), ("misses at the most devices", "misses")):
        for c in plan_dict[key]:
            s = Summary(**c["summary"])
            rows.append(
                {
                    "status": status,
                    "verdict": c["verdict"],
                    "judged on (requests)": c["requests"],
                    "hardware": c["hardware"],
                    "tp": c["tp"],
                    "pp": c["pp"],
                    "replicas": c["replicas"],
                    "devices": c["devices"],
                    "$/hour": c["cost_per_hour_usd"],
                    "$/1M output tokens": c["cost_per_1m_output_tokens_usd"],
                    "$/1M input tokens": c["cost_per_1m_input_tokens_usd"],
                    "TTFT p99 (s)": s.ttft_p99_s,
                    "TPOT p99 (s)": s.tpot_p99_s,
                    "rejected": s.requests_rejected,
                    "note": "",
                }
            )
    for sk in plan_dict["skipped"]:
        rows.append({"status": "skipped", "hardware": sk["hardware"], "tp": sk["tp"], "note": sk["reason"]})
    return pd.DataFrame(rows)


def borderline_rows(frame: pd.DataFrame) -> pd.Series:
    """Which rows of `candidates_table` are borderline, for the table to flag."""
    if "verdict" not in frame:
        return pd.Series(False, index=frame.index)
    return frame["verdict"].eq("borderline")
