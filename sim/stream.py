"""`run_streamed(scenario, folder)`: a run too long to hold in memory, such as a day of production
traffic (8.64 million requests at 100 per second).

The requests are drawn a chunk at a time (`workloads.spec.generate_chunks`), served through the
engine's ring (`sim.engine.stream`), and each chunk of finished rows is appended to
`requests.parquet` and summarised online (`sim.engine.online`); the timeseries goes to
`timeseries.parquet` the same way. Memory holds the ring and a few chunks, not the run: about
0.5 GB whatever the request count (`benchmarks/engine.py --day`).

What a streamed run cannot do, it refuses up front, naming the field (`sim.runnable.check_streamable`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hardware.stacks import load_stack, served_by
from sim.api import (
    build_pools,
    cluster_config,
    model_intervals,
    prefill_clock,
    prefilled_tokens,
    run_constants,
    scheduler_config,
)
from sim.cost.prefill import PrefillClock
from sim.engine import metrics
from sim.engine.online import OnlineSummary
from sim.engine.recorder import REASONS, RequestState, column
from sim.engine.simulate import smallest_layout
from sim.engine.stream import RingFull, simulate_stream
from sim.engine.summary import Summary
from sim.runnable import check_runnable, check_streamable
from sim.scenario import Scenario, ScenarioError
from workloads.requests import Requests
from workloads.spec import generate_chunks

CHUNK = 32_768
"""Requests drawn, written and summarised at a time."""
RING = 32 * CHUNK
"""Rows of the engine's ring: a request may stay in the system while this many others arrive
(about three hours at 100 requests/s); about 0.35 GB."""


@dataclass(frozen=True)
class StreamedRun:
    scenario: Scenario
    summary: Summary
    classes: pd.DataFrame
    rejected: dict[str, int]  # requests rejected, by reason


def run_streamed(
    scenario: Scenario,
    folder: Path,
    progress: Callable[[int], None] | None = None,
    chunk: int = CHUNK,
    ring: int = RING,
) -> StreamedRun:
    """Simulate `scenario` a chunk at a time, writing `requests.parquet` and `timeseries.parquet`
    into `folder` (which must exist) and returning the online summary."""
    check_runnable(scenario)
    check_streamable(scenario)
    wall = time.perf_counter()
    stop = scenario.stop
    chunks = generate_chunks(scenario.workload, scenario.seed, stop.requests, stop.duration_s, chunk)
    names = tuple(c.name for c in scenario.workload.classes)
    pools, transfer_s_per_token, transfer_latency_s = build_pools(scenario)
    class_slos = {c.name: c.slo for c in scenario.workload.classes}
    smallest = smallest_layout(pools)
    online = OnlineSummary(scenario.slo, class_slos, smallest.capacity_blocks)
    clock = prefill_clock(scenario, pools)
    with _ParquetSink(folder, online, smallest.capacity_blocks, names, clock) as sink:
        try:
            result = simulate_stream(
                chunks,
                names,
                pools,
                scheduler_config(scenario.scheduler),
                cluster_config(scenario, transfer_s_per_token, transfer_latency_s),
                sink,
                chunk=chunk,
                ring=ring,
                progress=progress,
            )
        except RingFull as exc:
            raise ScenarioError(
                f"cluster.replicas: {exc}. Arrivals outrun the cluster; add replicas or lower the rate"
            ) from None
    if online.requests == 0:
        raise ScenarioError("stop: the workload produced no requests before the stop condition")
    consts = run_constants(scenario, result.replicas, result.stats.events, sink.prefill_device_s)
    fields = online.summary(consts)
    counters = {
        "cache_evictions": 0,
        "offload_writes": 0,
        "offload_evictions": 0,
        "offload_bytes_read": float(sum(r.offload_bytes for r in result.replicas)),
        "kv_transfers": result.stats.transfers,
    }
    fields.update(online.cache_fields(len(result.replicas), counters))
    fields["sim_wall_s"] = time.perf_counter() - wall
    stack = served_by(scenario.hardware, load_stack(scenario.stack))
    fields.update(model_intervals(fields, stack, scenario.hardware.vendor))
    return StreamedRun(scenario, Summary(**fields), online.per_class(), dict(online.reasons))


class _ParquetSink:
    """Appends each chunk of finished rows to requests.parquet and feeds the online summary; the
    timeseries rows go to timeseries.parquet. One row group a chunk, so readers can page through."""

    def __init__(
        self,
        folder: Path,
        online: OnlineSummary,
        capacity_blocks: int,
        names: tuple[str, ...],
        clock: PrefillClock,
    ) -> None:
        self.folder, self.online, self.capacity_blocks, self.names = folder, online, capacity_blocks, names
        self.clock, self.prefill_device_s = clock, 0.0  # device time of the prefill, for the cost split
        self.requests_writer: pq.ParquetWriter | None = None
        self.events_writer: pq.ParquetWriter | None = None

    def __enter__(self) -> _ParquetSink:
        return self

    def __exit__(self, *_exc) -> None:
        for writer in (self.requests_writer, self.events_writer):
            if writer is not None:
                writer.close()

    def requests(self, first_id: int, reqs: Requests, state: RequestState) -> None:
        table = metrics.requests_table(reqs, state, REASONS)
        table["request_id"] += first_id
        self.online.add(table)
        self.prefill_device_s += self.clock.device_seconds(*prefilled_tokens(table))
        table["rejected_reason"] = table["rejected_reason"].astype("string")  # one type in every chunk
        arrow = pa.Table.from_pandas(table, preserve_index=False)
        if self.requests_writer is None:
            self.requests_writer = pq.ParquetWriter(self.folder / "requests.parquet", arrow.schema)
        self.requests_writer.write_table(arrow)

    def events(self, rows: np.ndarray) -> None:
        self.online.add_events(rows)
        arrow = pa.Table.from_pandas(
            metrics.timeseries_table(_Rows(rows), self.capacity_blocks), preserve_index=False
        )
        if self.events_writer is None:
            self.events_writer = pq.ParquetWriter(self.folder / "timeseries.parquet", arrow.schema)
        self.events_writer.write_table(arrow)


class _Rows:
    """Timeseries rows as `metrics.timeseries_table` reads a `Recorder`: column by name."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows

    def column(self, name: str) -> np.ndarray:
        return column(self.rows, name)
