"""Scenarios that can run: well-formed (`sim.scenario`), fitting their hardware (the model split
across the devices it asks for, its weights leaving KV space on every pool) and fitting this
machine (`sim.limits.check_memory`: the tables a run will hold against the memory left). The fit
checks ask the cost model, so they sit above `sim.scenario`; the loaders here run them before a
caller simulates or writes anything, and `sim.api.run` runs the hardware checks again for
scenarios built in code."""

from __future__ import annotations

from pathlib import Path

from sim import scenario as schema
from sim.cost.memory import MemoryPlan, memory_plan
from sim.cost.ops import build_ops
from sim.cost.parallelism import ConfigError, Parallelism, check_parallelism
from sim.limits import LimitError, check_memory
from sim.scenario import Scenario, ScenarioError
from workloads.arrivals import ClosedLoop
from workloads.spec import streamable


def scenario_from_dict(data: dict, overrides: list[str] | tuple[str, ...] = ()) -> Scenario:
    """A scenario from a mapping (with `--set` style overrides), refused with a `ScenarioError`
    naming the field when it is malformed or cannot run on its hardware."""
    scenario = schema.scenario_from_dict(data, overrides)
    _check_here(scenario)
    return scenario


def load_scenario(
    path: str | Path, overrides: list[str] | tuple[str, ...] = (), streamed: bool = False
) -> Scenario:
    """A scenario file, read as `sim.scenario.load_scenario` reads it and refused like
    `scenario_from_dict`; `streamed` checks it for a streamed run (`sim.stream`) instead, whose
    memory does not grow with its length."""
    scenario = schema.load_scenario(path, overrides)
    if streamed:
        check_runnable(scenario)
        check_streamable(scenario)
    else:
        _check_here(scenario)
    return scenario


def _check_here(scenario: Scenario) -> None:
    """`check_runnable`, then refuse a run this machine's memory cannot hold."""
    check_runnable(scenario)
    try:
        check_memory(scenario)
    except LimitError as exc:
        raise ScenarioError(str(exc)) from None


def check_streamable(scenario: Scenario) -> None:
    """Raise a `ScenarioError` naming the field a streamed run cannot honour: closed-loop users and
    the prefix cache need every request at once, sessions, documents and traces are laid out over
    the whole run, and a run that stops `until: converged` is rerun from the start."""
    if isinstance(scenario.workload.arrivals, ClosedLoop):
        raise ScenarioError("workload.arrivals: closed-loop users cannot be streamed; use open-loop arrivals")
    if scenario.kv_cache.prefix_caching:
        raise ScenarioError("kv_cache.prefix_caching: a streamed run has no prefix cache; turn it off")
    if scenario.stop.until is not None:
        raise ScenarioError("stop.until: a streamed run is one pass; give stop.requests or stop.duration_s")
    if (reason := streamable(scenario.workload)) is not None:
        raise ScenarioError(
            f"workload: {reason}; only classes drawn from length distributions can be streamed"
        )


def check_runnable(scenario: Scenario) -> None:
    """Raise a `ScenarioError` naming the field when the scenario cannot run on its hardware."""
    spec = scenario.parallelism
    _splits(scenario, spec.split, "parallelism")
    dis = scenario.cluster.disaggregated
    if dis is not None:
        for role, pool in (("prefill", dis.prefill), ("decode", dis.decode)):
            where = f"cluster.disaggregated.{role}"
            _splits(scenario, pool.split, where)
            if not _plan(scenario, pool.split).fits:
                raise ScenarioError(f"{where}: weights leave no KV space at tp={pool.tp}")
    _weights_fit(scenario, spec.split)
    _balanced(scenario)


def _balanced(scenario: Scenario) -> None:
    """Attention-DP balancing needs attention ranks that step together: a MoE model with
    attention_dp above 1 (in some pool)."""
    if not scenario.scheduler.adp_timeout_iters:
        return
    dis = scenario.cluster.disaggregated
    splits = [scenario.parallelism] if dis is None else [dis.prefill, dis.decode]
    if scenario.model.moe is None or all(s.attention_dp == 1 for s in splits):
        raise ScenarioError(
            "scheduler.adp_timeout_iters balances the attention ranks of a MoE engine: it needs a MoE "
            "model and parallelism.attention_dp above 1"
        )


def _splits(scenario: Scenario, par: Parallelism, where: str) -> None:
    """The split must suit the model and the hardware's topology (a group wider than its scale-up
    domain needs a scale-out network)."""
    try:
        check_parallelism(scenario.model, par)
        build_ops(scenario.model, scenario.hardware, par)
    except ConfigError as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def _plan(scenario: Scenario, par: Parallelism) -> MemoryPlan:
    sched = scenario.scheduler
    hw = scenario.hardware
    return memory_plan(
        scenario.model, hw, par, sched.memory_fraction, sched.max_num_batched_tokens, scenario.placement
    )


def _weights_fit(scenario: Scenario, par: Parallelism) -> None:
    plan = _plan(scenario, par)
    if not plan.fits:
        hw, sched = scenario.hardware, scenario.scheduler
        why = plan.shortfall or (
            f"{sched.memory_fraction:.0%} of {plan.capacity_bytes_per_device / 1e9:.0f} GB"
        )
        raise ScenarioError(
            f"hardware: {scenario.model.name} weights "
            f"({plan.weights_bytes_per_device / 1e9:.1f} GB per device) "
            f"leave no KV space on {par.devices} x {hw.name} ({why}); "
            "raise parallelism.tp, pp or, for MoE models, attention_dp with ep; lower "
            "scheduler.max_num_batched_tokens or change placement"
        )
