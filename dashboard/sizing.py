"""Cluster sizing for the dashboard: the planner's answer to a `dashboard.question.Question`, read for
a person: the best configuration overall and on each hardware type, configurations of equal cost and
better latency, each SLO's achieved p99 against its limit, and thin headroom.

The search is `sim.studies.planner.plan` (the one `ctxsim plan` runs) made `per_hardware`, which
finds the cheapest configuration on every hardware type as well as the overall best; its overall
best is the CLI's. One more simulation of the winner gives its latency CDFs (the planner keeps
summaries only). Nothing here draws or knows about Dash; `dashboard.pages.sizing` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from dashboard.question import question_from_mapping
from dashboard.runs import compact
from sim.api import run
from sim.format import percent, seconds, usd
from sim.studies.planner import Demand, SearchSpace, candidate_scenario, plan

THIN_HEADROOM = 0.10
"""Headroom under which an SLO is flagged: a p99 within 10% of its limit."""
SAME_COST = 1e-6
"""Relative difference in $/hour under which two configurations cost the same."""


# ---- the search --------------------------------------------------------------------------------------
def size_cluster(
    base: dict, demand: Demand, space: SearchSpace, *, progress: Callable[[str], None] | None = None
) -> tuple[dict, dict | None]:
    """(the plan as a mapping, the chosen configuration's run kept by `dashboard.runs.compact`, or
    None when nothing met the SLOs). A space without hardware searches the scenario's own."""
    answer = plan(base, demand, space, progress=progress, per_hardware=True)
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


def plan_job(
    base: dict, question: dict, asked: dict, *, progress: Callable[[float | None, str], None]
) -> dict:
    """A background job (`dashboard.jobs`): the question (`Question` as a mapping) planned on the
    `base` scenario mapping by `size_cluster`, each simulation it starts reported. `asked` is the
    question in words (`describe`), kept with the answer so it always says what it answers."""
    q = question_from_mapping(question)
    plan_dict, chosen = size_cluster(
        base, q.demand(), q.space(), progress=lambda text: progress(None, f"simulating {text}")
    )
    progress(100, f"{plan_dict['simulations']} simulations in {plan_dict['wall_s']:.1f} s")
    return {"plan": plan_dict, "chosen": chosen, "asked": asked}


# ---- the answer, read for a person ---------------------------------------------------------------------
def layout_text(c: dict) -> str:
    """'3 x 4 x h200 (tp 4, pp 1)': replicas x devices each x hardware, with any degrees beyond tp
    and the prefill and decode pools."""
    per = c["devices"] // c["replicas"]
    extra = "".join(f", {k} {v}" for k, v in (c.get("split") or {}).items() if k != "pp")
    pools = ""
    if c.get("prefill_replicas"):
        pools = f", {c['prefill_replicas']} prefill + {c['replicas'] - c['prefill_replicas']} decode"
    return f"{c['replicas']} x {per} x {c['hardware']} (tp {c['tp']}, pp {c['pp']}{extra}{pools})"


def cost_basis_text(c: dict) -> str:
    """What a configuration's dollars are on (`sim.cost.pricing.DevicePrice.label`)."""
    return f"$ on {c.get('cost_basis') or 'no stated basis'}"


def slo_rows(c: dict, slos: list[dict]) -> list[dict]:
    """Each target of the plan against what the configuration achieved: the target's name, limit,
    the achieved value and headroom (1 - achieved / limit), and whether that headroom is thin."""
    rows = []
    for s in slos:
        achieved = c["summary"].get(f"{s['name']}_s")
        headroom = c["headroom"].get(s["name"])
        rows.append(
            {
                "target": _metric(s["name"]),
                "limit_s": s["limit_s"],
                "achieved_s": achieved,
                "headroom": headroom,
                "thin": headroom is not None and headroom < THIN_HEADROOM,
            }
        )
    return rows


def thin_headroom(c: dict, slos: list[dict]) -> list[str]:
    """Warnings for each target the configuration meets with less than `THIN_HEADROOM` to spare."""
    return [
        f"{r['target']} {seconds(r['achieved_s'])} is within {percent(r['headroom'], 0)} of its "
        f"{seconds(r['limit_s'])} limit: a little more load or a longer prompt tail misses it"
        for r in slo_rows(c, slos)
        if r["thin"]
    ]


def _same_cost(a: dict, b: dict) -> bool:
    return math.isclose(a["cost_per_hour_usd"], b["cost_per_hour_usd"], rel_tol=SAME_COST)


def _key(c: dict) -> tuple:
    return (c["hardware"], c["tp"], c["pp"], c["replicas"], c.get("prefill_replicas", 0))


def known_candidates(plan_dict: dict) -> list[dict]:
    """Every configuration the plan found meeting the SLOs (ranked, and the rest it found), once."""
    seen: dict[tuple, dict] = {}
    for c in (*plan_dict["ranked"], *plan_dict.get("found", ())):
        seen.setdefault(_key(c), c)
    return list(seen.values())


def equal_cost(c: dict, plan_dict: dict) -> list[dict]:
    """The other configurations found that cost the same per hour as `c`, each with the targets on
    which its p99 is lower (`better`) and higher (`worse`): a tie the ranking broke by name and tp,
    and whether the other side of it has the better latency."""
    out = []
    for other in known_candidates(plan_dict):
        if _key(other) == _key(c) or not _same_cost(other, c):
            continue
        better, worse = [], []
        for s in plan_dict["slos"]:
            mine, theirs = c["summary"].get(f"{s['name']}_s"), other["summary"].get(f"{s['name']}_s")
            if mine is None or theirs is None or theirs == mine:
                continue
            (better if theirs < mine else worse).append(s["name"])
        out.append({"candidate": other, "better": better, "worse": worse})
    return out


def tie_notes(c: dict, plan_dict: dict) -> list[str]:
    """`equal_cost` in words: each tie, and what it does better and worse."""
    notes = []
    for tie in equal_cost(c, plan_dict):
        other = tie["candidate"]
        head = f"tie: {layout_text(other)} costs the same ({usd(other['cost_per_hour_usd'], cents=True)}/h)"
        parts = []
        for name in tie["better"]:
            parts.append(f"lower {_metric(name)} ({_achieved(other, name)} vs {_achieved(c, name)})")
        for name in tie["worse"]:
            parts.append(f"higher {_metric(name)} ({_achieved(other, name)} vs {_achieved(c, name)})")
        better = " with better latency" if tie["better"] and not tie["worse"] else ""
        notes.append(f"{head}{better}: {', '.join(parts)}" if parts else head)
    return notes


def _metric(name: str) -> str:
    metric, pct = name.split("_")
    return f"{metric.upper()} {pct}"


def _achieved(c: dict, name: str) -> str:
    return seconds(c["summary"].get(f"{name}_s"))


def per_hardware(plan_dict: dict) -> list[dict]:
    """One row per hardware type the plan looked at, cheapest first: its cheapest configuration
    meeting the SLOs (`candidate`, None where none did) and, where none did, why (`why`)."""
    best = {c["hardware"]: c for c in plan_dict.get("per_hardware", ())}
    reasons: dict[str, list[str]] = {}
    for c in plan_dict["misses"]:
        why = f"misses the SLOs even with {layout_text(c)}"
        reasons.setdefault(c["hardware"], []).append(why)
    skips: dict[str, list[tuple[int, str]]] = {}
    for s in plan_dict["skipped"]:
        skips.setdefault(s["hardware"].split(" ")[0], []).append((s["tp"], s["reason"]))
    for h, found in skips.items():
        same = len({why for _, why in found}) == 1  # one reason for every tp: say it once
        reasons.setdefault(h, []).extend([found[0][1]] if same else [f"tp {tp}: {why}" for tp, why in found])
    rows = [{"hardware": h, "candidate": c, "why": ""} for h, c in best.items()]
    for h, why in reasons.items():
        if h not in best:
            rows.append({"hardware": h, "candidate": None, "why": "; ".join(dict.fromkeys(why))})
    return rows


def candidates_table(plan_dict: dict) -> pd.DataFrame:
    """Ranked configurations, then the others found meeting the SLOs, those that missed even at the
    most devices, and the skipped (less those found): the verdict (meets, borderline, misses,
    skipped), the layout and price, each target's achieved p99 and headroom, and a note in full (the
    best, ties, thin headroom, why it missed or was skipped); then the rest of the run's figures."""
    slos = plan_dict["slos"]
    best = plan_dict["best"]
    each = {_key(c) for c in plan_dict.get("per_hardware", ())}
    rows = []
    for met, group in ((True, known_candidates(plan_dict)), (False, plan_dict["misses"])):
        for c in group:
            row = {
                "verdict": c["verdict"],
                "hardware": c["hardware"],
                "tp": c["tp"],
                "replicas": c["replicas"],
                "devices": c["devices"],
                "$/hour": c["cost_per_hour_usd"],
            }
            for r in slo_rows(c, slos):
                row[f"{r['target']} (s)"] = r["achieved_s"]
                row[f"{r['target']} headroom"] = r["headroom"]
            note = _note(c, plan_dict, best, _key(c) in each) if met else "misses even at the most devices"
            row |= {
                "note": note,
                "$/1M output tokens": c["cost_per_1m_output_tokens_usd"],
                "$/1M input tokens": c["cost_per_1m_input_tokens_usd"],
                "pp": c["pp"],
                "rejected": c["summary"].get("requests_rejected"),
                "judged on (requests)": c["requests"],
            }
            rows.append(row)
    for sk in plan_dict["skipped"]:
        if plan_dict.get("found") and sk["reason"].startswith("meets the SLOs"):
            continue  # found, and in the rows above
        rows.append({"verdict": "skipped", "hardware": sk["hardware"], "tp": sk["tp"], "note": sk["reason"]})
    return pd.DataFrame(rows)


def _note(c: dict, plan_dict: dict, best: dict | None, cheapest_here: bool) -> str:
    notes = []
    if best is not None and _key(c) == _key(best):
        notes.append("best overall")
    elif cheapest_here:
        notes.append(f"cheapest on {c['hardware']}")
    notes += tie_notes(c, plan_dict)
    notes += [f"thin headroom: {w}" for w in thin_headroom(c, plan_dict["slos"])]
    return "; ".join(notes)
