"""The cheapest cluster that meets latency SLOs at a given load.

A configuration is a hardware preset, a tensor-parallel degree and a replica count. For each
(hardware, tp) pair the planner:
1. drops it when the model's weights leave no KV space, tp does not divide the heads, or there is
   no price to rank it by;
2. bounds what one replica can carry with `estimate()`: the mean request, batched as large as the
   KV pool and the scheduler allow, prefilled at once and decoded together. The engine can overlap
   a prefill chunk with a decode step, and a roofline max of two terms is at least half their sum,
   so a replica carries at most `ROOFLINE_SLACK` times that bound: fewer replicas than
   ceil(load / (slack x bound)) cannot keep up, and pairs that would need more than `max_devices`
   devices are dropped without simulating;
3. simulates the workload at the start guess ceil(load / bound) replicas, doubles until the SLOs
   hold, then binary-searches the fewest replicas that meet them (latency falls as replicas grow).
Pairs are searched cheapest lower bound first; once `top` configurations are found, a pair is
searched only up to the replica count that still costs less than the `top`-th, and dropped
unsimulated when its lower bound costs more. A plan `per_hardware` also answers for each hardware
type on its own: a pair is pruned only against the dearer of the `top`-th and the cheapest found on
its own hardware, so every type searched gets its cheapest configuration (`Plan.per_hardware`), and
every configuration found is kept (`Plan.found`: a tie with the best, beyond the `top`, too).

Price per hour is devices x the device-hour on the scenario's `cost:` basis (cloud on-demand rent,
or total cost of ownership with electricity at TDP, or the user's own price; `sim.cost.pricing`), a
figure that does not depend on the run. A
configuration "meets" the SLOs when each percentile's confidence interval lies within its limit
and nothing is rejected or overloaded (`sim.studies.verdict`); a configuration whose interval
straddles a limit is simulated again with twice the requests until it is decided or reaches the
cap, where its point estimates decide and it stays marked borderline. So the answer does not hang
on the seed or on how many requests the first simulation used.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from hardware.spec import Accelerator
from sim.api import make_requests
from sim.api import run as run_scenario
from sim.cost import pricing
from sim.cost.estimate import Memory, estimate
from sim.engine.summary import Summary
from sim.runnable import scenario_from_dict
from sim.scenario import CostAssumptions, Scenario, ScenarioError, format_error, set_path
from sim.studies.verdict import (
    DEFAULT_REQUESTS,
    PlanError,
    SloTarget,
    Verdict,
    meets_at_cap,
    next_requests,
    verdict,
)

ROOFLINE_SLACK = 2.0
RATE_ARRIVALS = ("poisson", "gamma")


def device_hour_usd(hw: Accelerator, cost: CostAssumptions) -> float | None:
    """USD per device-hour on the scenario's cost basis, electricity at TDP (see
    `sim.cost.pricing`); None when the hardware has no price on it."""
    return pricing.device_hour_at_tdp_usd(hw, cost)


@dataclass(frozen=True)
class Demand:
    """What a configuration must serve: `qps` requests/s within every one of `slos`, checked over
    `requests` simulated requests (more make the check stricter)."""

    qps: float
    slos: tuple[SloTarget, ...]
    requests: int = DEFAULT_REQUESTS

    def __post_init__(self) -> None:
        object.__setattr__(self, "slos", tuple(self.slos))


@dataclass(frozen=True)
class SearchSpace:
    """Which configurations a plan may try: `hardware` presets (empty: the base scenario's own), the
    tensor-parallel degrees `tps`, with each every combination of expert-parallel, data-parallel
    attention, pipeline and context-parallel degrees in `eps`, `attention_dps`, `pps` and `cps`, at
    most `max_devices` devices, and with `disaggregated` each also as prefill and decode pools."""

    hardware: tuple[str, ...] = ()
    tps: tuple[int, ...] = (1, 2, 4, 8)
    max_devices: int = 64
    disaggregated: bool = False
    eps: tuple[int, ...] = (1,)
    attention_dps: tuple[int, ...] = (1,)
    pps: tuple[int, ...] = (1,)
    cps: tuple[int, ...] = (1,)

    def __post_init__(self) -> None:
        for name in ("hardware", "tps", "eps", "attention_dps", "pps", "cps"):
            object.__setattr__(self, name, tuple(getattr(self, name) or ()))

    def splits(self) -> list[dict[str, int]]:
        """The degrees beyond tp to try with each tp: every ep x attention_dp x pp x cp given (an
        empty mapping for the base's own)."""
        out = []
        for ep, dp, pp, cp in itertools.product(self.eps, self.attention_dps, self.pps, self.cps):
            degrees = {"ep": ep, "attention_dp": dp, "pp": pp, "cp": cp}
            out.append({k: v for k, v in degrees.items() if v > 1})
        return out


def candidate_scenario(
    base: dict,
    demand: Demand,
    hardware: str | None,
    tp: int,
    replicas: int,
    *,
    prefill_replicas: int = 0,
    split: dict[str, int] | None = None,
) -> Scenario:
    """The base scenario on `replicas` x `tp` x `hardware` (None keeps the base's), with the other
    parallel degrees in `split` (ep, attention_dp, pp, cp), offered the demand's load for its number
    of requests, with its SLO thresholds set for goodput. With `prefill_replicas`, that many of the
    replicas form a prefill pool and the rest a decode pool."""
    data = set_path(base, "hardware", hardware) if hardware is not None else base
    data = set_path(data, "parallelism.tp", tp)
    for key, degree in (split or {}).items():
        data = set_path(data, f"parallelism.{key}", degree)
    cluster = {
        k: v
        for k, v in (data.get("cluster") or {}).items()
        if k not in ("devices", "replicas", "disaggregated")
    }
    if prefill_replicas:
        pools = {
            "prefill": {"replicas": prefill_replicas, "tp": tp, **(split or {})},
            "decode": {"replicas": replicas - prefill_replicas, "tp": tp, **(split or {})},
        }
        data = set_path(data, "cluster", {**cluster, "disaggregated": pools})
    else:
        data = set_path(data, "cluster", {**cluster, "replicas": replicas})
    data = set_path(data, "workload.arrivals.rate_per_s", demand.qps)
    data = set_path(data, "stop", {"requests": demand.requests})
    limits = {f"{s.metric}_s": s.limit_s for s in demand.slos}
    data = set_path(data, "slo", {**limits, "percentile": max(s.percentile for s in demand.slos)})
    return scenario_from_dict(data)


def scenario_memory(scenario: Scenario) -> Memory:
    """The scenario's scheduler budget, memory fraction and placement, as `estimate` takes them."""
    sched = scenario.scheduler
    return Memory(sched.max_num_batched_tokens, sched.memory_fraction, scenario.placement)


def replica_bound_rps(scenario: Scenario, prompt_tokens: float, output_tokens: float) -> float:
    """Requests/s one replica of `scenario` carries at best (see the module docstring, step 2)."""
    sched = scenario.scheduler
    memory = scenario_memory(scenario)
    plan = memory.plan(scenario.model, scenario.hardware, scenario.par, sched.max_num_batched_tokens)
    prompt, output = max(1, math.ceil(prompt_tokens)), max(1, math.ceil(output_tokens))
    par = scenario.par
    running = sched.max_num_seqs * par.pp * par.engines  # every scheduler, pp batches in flight each
    batch = max(1, min(running, plan.kv_capacity_tokens // prompt))
    est = estimate(scenario.model, scenario.hardware, par, prompt, output, batch, memory)
    return batch / est.e2e_s


def prefill_share(scenario: Scenario, prompt_tokens: float, output_tokens: float) -> float:
    """Share of a request's replica time spent in prefill: its prompt's prefill alone against its
    part of a full decode batch. Disaggregated candidates give the prefill pool this share."""
    sched = scenario.scheduler
    memory = scenario_memory(scenario)
    plan = memory.plan(scenario.model, scenario.hardware, scenario.par, sched.max_num_batched_tokens)
    prompt, output = max(1, math.ceil(prompt_tokens)), max(1, math.ceil(output_tokens))
    batch = max(1, min(sched.max_num_seqs, plan.kv_capacity_tokens // prompt))
    prefill_s = estimate(scenario.model, scenario.hardware, scenario.par, prompt, 1, 1, memory).prefill_s
    decoded = estimate(scenario.model, scenario.hardware, scenario.par, prompt, output, batch, memory)
    decode_s = (decoded.e2e_s - decoded.prefill_s) / batch
    return prefill_s / (prefill_s + decode_s)


def split(replicas: int, share: float) -> int:
    """Prefill replicas out of `replicas` for a prefill `share`: at least one of each pool."""
    return min(replicas - 1, max(1, round(replicas * share)))


@dataclass(frozen=True)
class Candidate:
    """One simulated configuration; `headroom` maps each SLO name to 1 - observed / limit;
    `verdict` is meets, borderline or misses (`sim.studies.verdict`), judged on `requests`
    simulated requests (more than the demand's when the first run was borderline)."""

    hardware: str
    tp: int
    pp: int
    replicas: int
    devices: int
    cost_per_hour_usd: float
    cost_per_1m_input_tokens_usd: float | None
    cost_per_1m_output_tokens_usd: float | None
    meets: bool
    headroom: dict[str, float | None]
    summary: Summary = field(repr=False)
    prefill_replicas: int = 0  # > 0: disaggregated, that many replicas prefill and the rest decode
    verdict: str = Verdict.misses.value
    requests: int = 0
    split: dict[str, int] = field(default_factory=dict)  # degrees beyond tp: ep, attention_dp, pp, cp
    cost_basis: str = ""  # what its dollars are on (`sim.cost.pricing.DevicePrice.label`)

    @property
    def label(self) -> str:
        if self.prefill_replicas:
            decode = self.replicas - self.prefill_replicas
            return f"{self.hardware} disaggregated {self.prefill_replicas}P+{decode}D"
        return self.hardware


@dataclass(frozen=True)
class Skipped:
    hardware: str
    tp: int
    reason: str


@dataclass(frozen=True)
class Plan:
    """`ranked`: the fewest replicas meeting the SLOs for each (hardware, tp) searched, cheapest
    first; `below`: for each of those, the simulated run one replica short (None when the bound
    proved it cannot keep up); `misses`: pairs that miss even at the most devices allowed;
    `found` (a plan made `per_hardware`, else empty): every configuration found meeting the SLOs,
    ranked or not, cheapest first, whose cheapest on each hardware type is `per_hardware`."""

    qps: float
    slos: tuple[SloTarget, ...]
    requests: int
    max_devices: int
    ranked: tuple[Candidate, ...]
    below: tuple[Candidate | None, ...]
    misses: tuple[Candidate, ...]
    skipped: tuple[Skipped, ...]
    simulations: int
    wall_s: float
    found: tuple[Candidate, ...] = ()

    @property
    def best(self) -> Candidate | None:
        return self.ranked[0] if self.ranked else None

    @property
    def per_hardware(self) -> tuple[Candidate, ...]:
        """The cheapest of `found` on each hardware type, cheapest first."""
        each: dict[str, Candidate] = {}
        for c in self.found:
            each.setdefault(c.hardware, c)
        return tuple(each.values())

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["slos"] = [{**s.model_dump(), "name": s.name} for s in self.slos]
        out["best"] = out["ranked"][0] if self.ranked else None
        cheapest = {id(c) for c in self.per_hardware}
        out["per_hardware"] = [d for c, d in zip(self.found, out["found"], strict=True) if id(c) in cheapest]
        return out


@dataclass(frozen=True)
class _Pair:
    hardware: str | None
    name: str
    tp: int
    pp: int
    devices_per_replica: int
    replica_hour_usd: float
    lo: int
    guess: int
    rmax: int
    prefill_share: float | None = None  # set: disaggregated pools split by this share
    split: tuple[tuple[str, int], ...] = ()  # degrees beyond tp

    @property
    def label(self) -> str:
        return f"{self.name} disaggregated" if self.prefill_share is not None else self.name

    def prefill_replicas(self, replicas: int) -> int:
        return split(replicas, self.prefill_share) if self.prefill_share is not None else 0

    @property
    def floor_cost(self) -> float:
        return self.lo * self.replica_hour_usd


def _mean_lengths(scenario: Scenario) -> tuple[float, float, Any]:
    reqs = make_requests(scenario)
    if len(reqs) == 0:
        raise PlanError("the workload produced no requests")
    return float(reqs.prompt_tokens.mean()), float(reqs.output_tokens.mean()), reqs


def _check_request(base: dict, demand: Demand) -> None:
    """PlanError for a load, SLO list or arrival process a plan cannot search."""
    if demand.qps <= 0:
        raise PlanError(f"--qps {demand.qps}: must be positive")
    if not demand.slos:
        raise PlanError("give at least one --slo, e.g. ttft_p99=2s")
    try:
        CostAssumptions.model_validate(base.get("cost") or {})
    except ValidationError as exc:  # else every candidate would be skipped for it
        raise PlanError("; ".join(f"cost.{part}" for part in format_error(exc).split("; "))) from None
    kind = (base.get("workload") or {}).get("arrivals", {}).get("kind", "poisson")
    if kind not in RATE_ARRIVALS:
        raise PlanError(
            f"workload.arrivals.kind: {kind} has no rate to set; plan needs "
            f"{' or '.join(RATE_ARRIVALS)} arrivals"
        )


def _pairs(base: dict, demand: Demand, space: SearchSpace) -> tuple[list[_Pair], list[Skipped], Any]:
    """Every (hardware, tp) of `space` worth searching, with replica bounds from the roofline (and as
    pools when disaggregated); those skipped and why; the workload's (mean prompt, mean output,
    requests)."""
    skipped: list[Skipped] = []
    pairs: list[_Pair] = []
    workload = None
    qps, max_devices = demand.qps, space.max_devices
    hardware: Sequence[str | None] = space.hardware or (None,)
    for hw, tp, degrees in itertools.product(hardware, space.tps, space.splits()):
        try:
            one = candidate_scenario(base, demand, hw, tp, 1, split=degrees)
        except ScenarioError as exc:
            skipped.append(Skipped(hw or "base", tp, _with_split(str(exc), degrees)))
            continue
        name = one.hardware.name
        price = device_hour_usd(one.hardware, one.cost)
        if price is None:
            why = pricing.no_price_reason(one.hardware, one.cost)
            skipped.append(Skipped(name, tp, _with_split(why, degrees)))
            continue
        per = one.par.devices
        if per > max_devices:
            why = f"one replica needs {per} devices, over --max-devices {max_devices}"
            skipped.append(Skipped(name, tp, _with_split(why, degrees)))
            continue
        if workload is None:
            workload = _mean_lengths(one)
        bound = replica_bound_rps(one, workload[0], workload[1])
        lo = max(1, math.ceil(qps / (ROOFLINE_SLACK * bound)))
        rmax = max_devices // per
        if lo > rmax:
            why = (
                f"roofline bound {bound:.3g} req/s per replica: {qps:g} req/s needs at least {lo} "
                f"replica(s) ({lo * per} devices), over --max-devices {max_devices}"
            )
            skipped.append(Skipped(name, tp, _with_split(why, degrees)))
            continue
        guess = min(rmax, max(lo, math.ceil(qps / bound)))
        key = tuple(sorted(degrees.items()))
        pairs.append(_Pair(hw, name, tp, one.par.pp, per, price * per, lo, guess, rmax, None, key))
        if space.disaggregated and one.par.pp == 1 and rmax >= 2:
            share = prefill_share(one, workload[0], workload[1])
            lo2, guess2 = max(2, lo), max(2, guess)
            pairs.append(_Pair(hw, name, tp, 1, per, price * per, lo2, guess2, rmax, share, key))
    pairs.sort(key=lambda p: (p.floor_cost, p.name, p.tp))
    return pairs, skipped, workload


def _with_split(reason: str, degrees: dict[str, int]) -> str:
    """A skip reason naming the degrees beyond tp it was tried with."""
    if not degrees:
        return reason
    return f"with {', '.join(f'{k} {v}' for k, v in degrees.items())}: {reason}"


def _search_pairs(
    pairs: Sequence[_Pair],
    top: int,
    simulate: Callable[[_Pair, int], Candidate],
    per_hardware: bool = False,
) -> tuple[list[tuple[Candidate, Candidate | None]], list[Candidate], list[Skipped]]:
    """Search each pair, cheapest floor first, for its fewest replicas meeting the SLOs; once `top`
    are found, a pair is searched only up to the replicas that could still beat the `top`-th (and,
    `per_hardware`, the cheapest found on its own hardware, a pair of hardware with none found yet
    being searched in full). Returns (found with the failing count just below, misses, skipped)."""
    found: list[tuple[Candidate, Candidate | None]] = []
    misses: list[Candidate] = []
    skipped: list[Skipped] = []
    for pair in pairs:
        cap = pair.rmax
        bar, beaten = _bar(found, top, pair.name, per_hardware)
        if bar is not None:
            cap = min(cap, int(bar / pair.replica_hour_usd + 1e-9))
            if cap < pair.lo:
                why = (
                    f"at least ${pair.floor_cost:,.2f}/h ({pair.lo} replica(s) by the roofline bound), "
                    f"dearer than {beaten}"
                )
                skipped.append(Skipped(pair.label, pair.tp, why))
                continue
        good, bad = _search(pair, cap, simulate)
        if good is not None:
            found.append((good, bad))
        elif cap < pair.rmax:
            why = f"misses the SLOs with {cap} replica(s); more cost more than {beaten}"
            skipped.append(Skipped(pair.label, pair.tp, why))
        else:
            misses.append(bad)
    return found, misses, skipped


def _bar(
    found: list[tuple[Candidate, Candidate | None]], top: int, hardware: str, per_hardware: bool
) -> tuple[float | None, str]:
    """The $/hour a pair on `hardware` must stay within to be worth searching, and what sets it (None:
    no bar yet): the `top`-th cheapest found, or with `per_hardware` the dearer of that and the
    cheapest found on `hardware` (no bar while that hardware has none)."""
    costs = sorted(c.cost_per_hour_usd for c, _ in found)
    if len(costs) < top:
        return None, ""
    beaten = f"the {top} cheapest found"
    if not per_hardware:
        return costs[top - 1], beaten
    own = [c.cost_per_hour_usd for c, _ in found if c.hardware == hardware]
    if not own:
        return None, ""
    if min(own) > costs[top - 1]:
        return min(own), f"the cheapest found on {hardware}"
    return costs[top - 1], beaten


def _rank_key(c: Candidate) -> tuple:
    return (c.cost_per_hour_usd, c.hardware, c.tp, c.prefill_replicas)


def _rank(
    found: list[tuple[Candidate, Candidate | None]], top: int
) -> tuple[list[tuple[Candidate, Candidate | None]], list[Skipped]]:
    """The `top` cheapest of `found`, and the rest as skipped (dearer than those)."""
    found = sorted(found, key=lambda cb: _rank_key(cb[0]))
    dearer = [
        Skipped(
            c.label,
            c.tp,
            f"meets the SLOs with {c.replicas} replica(s) at ${c.cost_per_hour_usd:,.2f}/h, dearer than "
            f"the {top} cheapest",
        )
        for c, _ in found[top:]
    ]
    return found[:top], dearer


def plan(
    base: dict,
    demand: Demand,
    space: SearchSpace = SearchSpace(),
    *,
    top: int = 3,
    progress: Callable[[str], None] | None = None,
    per_hardware: bool = False,
) -> Plan:
    """Search the hardware x tp x replicas of `space` for the cheapest configuration of the `base`
    scenario mapping that meets `demand`; `top` configurations are ranked, and with `per_hardware`
    the cheapest on each hardware type is found too (see the module docstring). Disaggregated pools
    are split by the analytic prefill share. `progress(text)` is called before each simulation."""
    started = time.perf_counter()
    _check_request(base, demand)
    pairs, skipped, workload = _pairs(base, demand, space)
    simulations = 0

    # the same requests for every configuration (none to draw when every configuration was skipped)
    streams = {demand.requests: workload[2]} if workload is not None else {}

    def simulate(pair: _Pair, replicas: int) -> Candidate:
        nonlocal simulations
        count: int | None = demand.requests
        while count is not None:
            simulations += 1
            if progress:
                progress(f"{pair.label} tp={pair.tp} x {replicas} replicas, {count:,} requests")
            sized = replace(demand, requests=count)
            split = pair.prefill_replicas(replicas)
            sc = candidate_scenario(
                base, sized, pair.hardware, pair.tp, replicas, prefill_replicas=split, split=dict(pair.split)
            )
            if count not in streams:
                streams[count] = make_requests(sc)
            summary = run_scenario(sc, requests=streams[count]).summary
            candidate = _candidate(pair, replicas, summary, demand.slos, count)
            count = next_requests(count) if candidate.verdict == Verdict.borderline else None
        return candidate

    found, misses, search_skipped = _search_pairs(pairs, top, simulate, per_hardware)
    kept = tuple(c for c, _ in sorted(found, key=lambda cb: _rank_key(cb[0]))) if per_hardware else ()
    found, dearer = _rank(found, top)
    return Plan(
        qps=demand.qps,
        slos=demand.slos,
        requests=demand.requests,
        max_devices=space.max_devices,
        ranked=tuple(c for c, _ in found),
        below=tuple(b for _, b in found),
        misses=tuple(misses),
        skipped=tuple(skipped + search_skipped + dearer),
        simulations=simulations,
        wall_s=time.perf_counter() - started,
        found=kept,
    )


def _search(
    pair: _Pair, cap: int, simulate: Callable[[_Pair, int], Candidate]
) -> tuple[Candidate | None, Candidate | None]:
    """(fewest replicas up to `cap` that meet the SLOs, the run one replica short of it); (None,
    the run with `cap` replicas) when even that misses."""
    runs: dict[int, Candidate] = {}

    def meets(r: int) -> bool:
        runs[r] = simulate(pair, r)
        return runs[r].meets

    r = min(pair.guess, cap)
    if meets(r):
        good, bad = r, pair.lo - 1
    else:
        while True:
            bad = r
            if r == cap:
                return None, runs[r]
            r = min(2 * r, cap)
            if meets(r):
                good = r
                break
    while good - bad > 1:
        mid = (good + bad) // 2
        if meets(mid):
            good = mid
        else:
            bad = mid
    return runs[good], runs.get(bad)


def _candidate(
    pair: _Pair, replicas: int, summary: Summary, slos: Sequence[SloTarget], requests: int
) -> Candidate:
    per_hour = pair.replica_hour_usd * replicas
    headroom = {s.name: s.headroom(summary) for s in slos}
    slos = tuple(slos)
    judged = verdict(summary, slos)
    at_cap = next_requests(requests) is None
    decided_at_cap = judged == Verdict.borderline and at_cap and meets_at_cap(summary, slos)
    meets = judged == Verdict.meets or decided_at_cap

    share = summary.prefill_cost_share if summary.prefill_cost_share is not None else 0.0
    per_1m_input, per_1m_output = pricing.token_split_usd_per_1m(
        per_hour, share, summary.input_tokens_per_s * 3600, summary.output_tokens_per_s * 3600
    )

    return Candidate(
        pair.name,
        pair.tp,
        pair.pp,
        replicas,
        replicas * pair.devices_per_replica,
        per_hour,
        per_1m_input,
        per_1m_output,
        meets,
        headroom,
        summary,
        pair.prefill_replicas(replicas),
        judged.value,
        requests,
        dict(pair.split),
        summary.cost_basis or "",
    )
