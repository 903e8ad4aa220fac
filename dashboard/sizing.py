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
from sim.studies.verdict import DEFAULT_REQUESTS, SloTarget

TPS = [1, 2, 4, 8]


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


def slo_targets(ttft_s: float | None, tpot_s: float | None, e2e_s: float | None) -> list[SloTarget]:
    """p99 targets for the limits that are set (an empty field or 0: no target)."""
    return [
        SloTarget(metric=m, percentile=99, limit_s=v)
        for m, v in (("ttft", ttft_s), ("tpot", tpot_s), ("e2e", e2e_s))
        if v
    ]


def plan_job(
    base: dict,
    qps: float | None,
    requests: int | None,
    slo_s: list[float | None],
    hardware: list[str] | None,
    tps: list[int] | None,
    max_devices: int | None,
    *,
    progress: Callable[[float | None, str], None],
) -> dict:
    """A background job (`dashboard.jobs`): the sizing page's form, as it reads it (empty fields
    take the CLI's defaults), planned by `size_cluster`; each simulation it starts is reported.
    `slo_s` is the TTFT, TPOT and e2e p99 limits."""
    plan_dict, chosen = size_cluster(
        base,
        Demand(float(qps or 0), slo_targets(*slo_s), int(requests or DEFAULT_REQUESTS)),
        SearchSpace(hardware, sorted(tps or TPS), int(max_devices or 64)),
        progress=lambda text: progress(None, f"simulating {text}"),
    )
    progress(100, f"{plan_dict['simulations']} simulations in {plan_dict['wall_s']:.1f} s")
    return {"plan": plan_dict, "chosen": chosen}


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
