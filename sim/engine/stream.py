"""`simulate_stream`: serve a run too long to hold in memory, a chunk of requests at a time.

The engine addresses a request by its row in the request table. A streamed run gives it a ring of
`ring` rows instead of one row per request: chunk i of the stream fills the ring's segment
i mod (ring / chunk), and the requests that held that segment before must all have left by then.
When every request of the oldest segment has left, its rows go to the sink (to be written out and
summarised) and the segment is free again. Memory holds the ring, whatever the run's length.

Everything else (scheduling, event skipping, the kernels, routing, disaggregated pools) is the
ordinary engine, so a streamed run fed an ordinary run's requests gives the same rows
(tests/engine/test_stream.py). Closed-loop users and the prefix cache need every request's row at
once; a streamed run has neither.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import simpy

from sim.engine.cluster import Cluster
from sim.engine.config import ClusterConfig, Pool, SchedulerConfig
from sim.engine.context import RunContext
from sim.engine.recorder import EngineStats, Recorder, RequestState
from sim.engine.replica import Replica
from sim.engine.simulate import build_replicas, smallest_layout
from workloads.requests import Requests


class RingFull(RuntimeError):
    """A request still in the system holds the rows the next chunk needs."""


class Sink(Protocol):
    """Where a streamed run's finished rows go, oldest first."""

    def requests(self, first_id: int, reqs: Requests, state: RequestState) -> None:
        """Requests `first_id`, `first_id` + 1, ... have all left: their inputs and engine columns."""

    def events(self, rows: np.ndarray) -> None:
        """Timeseries rows recorded since the last call, a row per event (`Recorder.COLUMNS`)."""


@dataclass
class StreamResult:
    stats: EngineStats
    replicas: list[Replica]
    capacity_blocks: int


@dataclass
class _Segment:
    index: int  # which segment of the ring
    first_id: int  # the run-wide id of its first request
    reqs: Requests


class StreamCluster(Cluster):
    """The cluster of an open-loop run whose requests come in chunks: it loads each chunk into a
    free ring segment as the previous one runs out of arrivals, and hands a segment to the sink
    once all its requests have left."""

    def __init__(
        self,
        ctx: RunContext,
        config: ClusterConfig,
        sched: SchedulerConfig,
        progress: Callable[[int], None] | None,
        chunks: Iterator[Requests],
        chunk: int,
        fits_blocks: Callable[[Requests], list[int]],
        sink: Sink,
    ):
        super().__init__(ctx, config, sched, progress)
        self.chunks, self.chunk, self.blocks_needed, self.sink = chunks, chunk, fits_blocks, sink
        self.segments = len(ctx.reqs) // chunk
        self.pending = [0] * self.segments  # requests of each segment still to leave
        self.held: deque[_Segment] = deque()  # loaded and not yet sunk, oldest first
        self.loaded = 0  # requests loaded so far (the next chunk's first id)
        self.chunks_loaded = 0
        self.output, self.ctx_work = ctx.output, ctx.work  # the replicas' views of the ring's rows
        self.exhausted = False
        self.times: list[float] = []  # arrival times of the chunk now arriving
        self.base = 0  # its first ring row
        self.cursor = 0  # its next request to arrive
        self.due: int | None = None  # the ring row whose arrival timeout is pending

    def open(self, fits_blocks: list[int], capacity_blocks: int) -> None:
        self.fits_blocks, self.capacity_blocks = fits_blocks, capacity_blocks
        self.arrivals()

    def load(self) -> bool:
        """Put the next chunk into the next ring segment; False when the stream has ended."""
        reqs = next(self.chunks, None)
        if reqs is None:
            self.exhausted = True
            return False
        n = len(reqs)
        if not 0 < n <= self.chunk:
            raise ValueError(f"a streamed chunk holds 1 to {self.chunk} requests, not {n}")
        index = self.chunks_loaded % self.segments
        if any(s.index == index for s in self.held):
            raise RingFull(
                f"more than {self.segments * self.chunk:,} requests arrived while request "
                f"{self.held[0].first_id:,} was still in the system"
            )
        a, b = index * self.chunk, index * self.chunk + n
        ring = self.reqs
        ring.arrival_s[a:b], ring.prompt_tokens[a:b] = reqs.arrival_s, reqs.prompt_tokens
        ring.output_tokens[a:b], ring.cls[a:b] = reqs.output_tokens, reqs.cls
        work = (reqs.prompt_tokens + reqs.output_tokens).tolist()
        self.prompt[a:b] = reqs.prompt_tokens.tolist()
        self.output[a:b] = reqs.output_tokens.tolist()
        self.ctx_work[a:b] = work
        self.work[a:b] = work
        self.fits_blocks[a:b] = self.blocks_needed(reqs)
        self.state.clear(a, b)
        self.pending[index] = n
        self.held.append(_Segment(index, self.loaded, reqs))
        self.loaded += n
        self.chunks_loaded += 1
        self.times, self.base, self.cursor = reqs.arrival_s.tolist(), a, 0
        return True

    def arrivals(self) -> None:
        """Requests arrive at their `arrival_s`, chunk after chunk (one timeout outstanding at a time)."""
        env = self.env

        def arrive(_event) -> None:
            if self.due is not None:
                r, self.due = self.due, None
                self.admit(r)
            while True:
                if self.cursor == len(self.times) and not self.load():
                    self.finish_if_done()
                    return
                t = self.times[self.cursor]
                r = self.base + self.cursor
                self.cursor += 1
                if t > env.now:
                    self.due = r
                    env.timeout(t - env.now).callbacks.append(arrive)
                    return
                self.admit(r)

        env.timeout(0).callbacks.append(arrive)

    def done(self, count: int, rids=()) -> None:
        self.stats.done += count
        if self.progress is not None:
            self.progress(count)
        pending, chunk = self.pending, self.chunk
        for r in rids:
            pending[r // chunk] -= 1
        held = self.held  # a segment's count reaches 0 only once all its requests arrived and left
        while held and pending[held[0].index] == 0:
            segment = held.popleft()
            a = segment.index * chunk
            self.sink.requests(segment.first_id, segment.reqs, self.state.rows(a, a + len(segment.reqs)))
        self.finish_if_done()

    def finish_if_done(self) -> None:
        if self.exhausted and not self.held and not self.all_done.triggered:
            self.all_done.succeed()


def flush_events(recorder: Recorder, sink: Sink) -> None:
    """Hand the timeseries rows recorded so far to the sink and forget them."""
    if len(recorder.rows):
        rows = np.frombuffer(recorder.rows, np.float64).reshape(-1, len(Recorder.COLUMNS)).copy()
        del recorder.rows[:]
        sink.events(rows)


def simulate_stream(
    chunks: Iterator[Requests],
    class_names: tuple[str, ...],
    pools: list[Pool],
    cfg: SchedulerConfig,
    cluster: ClusterConfig,
    sink: Sink,
    *,
    chunk: int,
    ring: int,
    skip: bool = True,
    progress: Callable[[int], None] | None = None,
) -> StreamResult:
    """Serve the requests of `chunks` (each at most `chunk` requests, in arrival order, arrivals
    continuing from chunk to chunk) on the replicas of `pools` through a ring of `ring` rows (a
    multiple of `chunk`). Finished rows go to `sink.requests` oldest first and timeseries rows to
    `sink.events` as segments finish. Raises `RingFull` when a request is still in the system
    `ring` arrivals later."""
    if cluster.closed_loop is not None:
        raise ValueError("a streamed run has open-loop arrivals only")
    if ring % chunk or ring < 2 * chunk:
        raise ValueError(f"ring ({ring}) must be a multiple of chunk ({chunk}), at least two chunks")
    ones = np.ones(ring, np.int64)
    rows = Requests(np.zeros(ring), ones, ones.copy(), np.zeros(ring, np.int32), class_names)
    ctx = RunContext(simpy.Environment(), rows, skip)
    smallest = smallest_layout(pools)

    def fits_blocks(reqs: Requests) -> list[int]:
        return np.asarray(smallest.blocks_for(reqs.prompt_tokens + reqs.output_tokens - 1)).tolist()

    flushing = _FlushingSink(sink, ctx.recorder)
    hub = StreamCluster(ctx, cluster, cfg, progress, chunks, chunk, fits_blocks, flushing)
    replicas = build_replicas(pools, cfg, None, ctx, hub)
    hub.open([0] * ring, smallest.capacity_blocks)
    ctx.env.run(until=hub.all_done)
    flush_events(ctx.recorder, sink)
    return StreamResult(ctx.stats, replicas, smallest.capacity_blocks)


class _FlushingSink:
    """Passes finished rows on, and with each segment the timeseries rows recorded so far."""

    def __init__(self, sink: Sink, recorder: Recorder) -> None:
        self.sink, self.recorder = sink, recorder

    def requests(self, first_id: int, reqs: Requests, state: RequestState) -> None:
        self.sink.requests(first_id, reqs, state)
        flush_events(self.recorder, self.sink)

    def events(self, rows: np.ndarray) -> None:
        self.sink.events(rows)
