"""`run(scenario) -> Result`: the one function the CLI, sweeps and the dashboard call."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim import metrics
from sim.costmodel import RooflineCost, memory_plan
from sim.engine import REASONS, simulate
from sim.kvcache import KVLayout
from sim.scenario import Scenario
from workloads.requests import Requests
from workloads.spec import generate


@dataclass(frozen=True)
class Result:
    scenario: Scenario
    summary: dict
    requests: pd.DataFrame
    timeseries: pd.DataFrame
    classes: pd.DataFrame


def make_requests(scenario: Scenario) -> Requests:
    rng = np.random.default_rng(scenario.seed)
    return generate(scenario.workload, rng, scenario.stop.requests, scenario.stop.duration_s)


def run(scenario: Scenario, progress: Callable[[int], None] | None = None, skip: bool = True,
        requests: Requests | None = None) -> Result:
    """Simulate `scenario`. `progress(k)` is called as k more requests finish or are rejected;
    `skip=False` takes every decode step one at a time (the reference path for event skipping)."""
    wall = time.perf_counter()
    reqs = requests if requests is not None else make_requests(scenario)
    hw, sched = scenario.hardware, scenario.scheduler
    cost = RooflineCost(scenario.model, hw, scenario.par)
    plan = memory_plan(scenario.model, hw, scenario.par, sched.memory_fraction, sched.max_num_batched_tokens)
    layout = KVLayout(plan, sched.block_size)
    swap_bw, swap_blocks = 0.0, 0
    if hw.offload_tiers:
        tier = hw.offload_tiers[0]
        swap_bw = tier.bandwidth_bytes_per_s * scenario.par.devices
        swap_blocks = int(tier.capacity_bytes * scenario.par.devices // layout.block_bytes)
    result = simulate(reqs, cost, layout, sched, scenario.replicas, scenario.cluster.router, skip, swap_bw,
                      swap_blocks, progress)
    requests_df = metrics.requests_table(reqs, result.state, REASONS)
    timeseries = metrics.timeseries_table(result.recorder, result.capacity_blocks)
    acc = sum(r.acc for r in result.replicas)
    price = hw.price
    consts = metrics.RunConstants(
        replicas=scenario.replicas,
        devices_per_replica=scenario.par.devices,
        price_per_device_hour_usd=metrics.hourly_price(
            price.purchase_usd if price else None, price.per_hour_usd if price else None,
            scenario.cost.amortization_years),
        tdp_w=hw.power.tdp_w if hw.power else None,
        idle_fraction=hw.power.idle_fraction if hw.power else 0.0,
        busy_s=float(sum(r.busy_s for r in result.replicas)),
        compute_bound_s=float(acc[1]), memory_bound_s=float(acc[2]), link_s=float(acc[3]),
        electricity_usd_per_kwh=scenario.cost.electricity_usd_per_kwh,
        sim_wall_s=0.0, sim_events=result.stats.events,
    )
    class_slos = {c.name: c.slo for c in scenario.workload.classes}
    summary = metrics.summarize(requests_df, timeseries, consts, scenario.slo, class_slos)
    summary["sim_wall_s"] = time.perf_counter() - wall
    classes = metrics.per_class(requests_df, scenario.slo, class_slos)
    return Result(scenario, summary, requests_df, timeseries, classes)
