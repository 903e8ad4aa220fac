"""Limits a scenario must stay inside before anything is allocated, each refused with the number.

Validation says whether a scenario means something; these say whether this machine can run it.
`check_numbers` refuses integers too large to survive float or int64 arithmetic (the field named);
`check_memory` estimates the memory a run will hold (a row per request across the workload, the
engine and the result tables, plus each replica's state) and compares it with the memory this
process may still take, so `stop.requests=1e12` fails in a millisecond instead of dying of
MemoryError a minute later.
"""

from __future__ import annotations

import math
import os
import resource
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sim.format import si
from workloads.arrivals import Burst, ClosedLoop, Diurnal
from workloads.lengths import Empirical, Fixed, LogNormal, Uniform

if TYPE_CHECKING:
    from sim.scenario import Scenario, Stop

MAX_INT = 2**53
"""Largest integer magnitude a field may hold: beyond it floats lose whole numbers."""
REQUEST_BYTES = 1536
"""Memory per request over a whole run (requests, engine state, timeseries and result tables):
about 760 bytes measured on examples/chat-h100.yaml at 200,000 requests and 1.32 KB at a million
(`benchmarks/engine.py --million`, peak RSS), rounded up."""
REPLICA_BYTES = 64 * 1024
"""Memory per replica (its KV block tables, queues and process); about 47 KB measured."""
TRACE_ROW_BYTES = 8
"""Fewest bytes a trace row takes in its file ("1,1,1\\n"), for bounding a trace's row count."""


class LimitError(ValueError):
    """A scenario this machine cannot hold, or a number out of range; the message names the field."""


def _leaves(data: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every scalar in nested mappings and lists, without recursion."""
    stack = [(where, data)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in node.items())
        elif isinstance(node, list | tuple):
            stack.extend((f"{path}.{i}" if path else str(i), v) for i, v in enumerate(node))
        else:
            yield path, node


def check_numbers(data: Any) -> None:
    """Refuse any integer in `data` (a raw scenario mapping) larger in magnitude than MAX_INT."""
    for path, value in _leaves(data):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            raise LimitError(f"{path}: {value} is out of range (at most {MAX_INT:,} in magnitude)")


def length_bound(length) -> float:
    """A length distribution's largest likely draw (its cap, or the 99.9th percentile)."""
    if isinstance(length, Fixed):
        return length.tokens
    if isinstance(length, Uniform):
        return length.high
    if isinstance(length, LogNormal):
        return length.max or length.median * math.exp(3.1 * length.sigma)
    if isinstance(length, Empirical) and length.values:
        return max(length.values)
    return 1


def expected_requests(scenario: Scenario) -> float:
    """About how many requests the workload will hold at its largest (arrivals times turns)."""
    workload, stop = scenario.workload, scenario.stop
    drawn = [c for c in workload.classes if c.trace is None or not c.trace.replay_timestamps]
    timed = [c for c in workload.classes if c not in drawn]
    weight = sum(c.weight for c in drawn) or 1.0
    turns = sum(c.weight * (length_bound(c.session.turns) if c.session else 1) for c in drawn) / weight
    if stop.most_requests is not None:
        return stop.most_requests * max(turns, 1.0)
    arrivals = workload.arrivals
    rows = sum(_trace_rows(c.trace) for c in timed)
    if not drawn or isinstance(arrivals, Burst | ClosedLoop):
        return rows
    return rows + _peak_rate(arrivals) * stop.duration_s * turns


def _peak_rate(arrivals) -> float:
    if isinstance(arrivals, Diurnal):
        if arrivals.rates_per_s is not None:
            return max(arrivals.rates_per_s)
        return arrivals.mean_rate_per_s * (1 + arrivals.amplitude)
    return arrivals.rate_per_s


def _trace_rows(trace) -> float:
    try:
        size = os.path.getsize(trace.path)
    except OSError:
        return 0.0
    return size / TRACE_ROW_BYTES * math.ceil(trace.rate_multiplier)


def replica_count(scenario: Scenario) -> int:
    dis = scenario.cluster.disaggregated
    if dis is not None:
        return dis.prefill.replicas + dis.decode.replicas
    return scenario.replicas


def available_bytes() -> float:
    """Memory this process may still take: the system's available memory, lowered to what is
    left under an address-space limit (`ulimit -v`) when one is set."""
    free = _meminfo_bytes("MemAvailable")
    if free is None:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        used = _status_bytes("VmSize") or 0
        free = min(free, max(soft - used, 0))
    return float(free)


def _meminfo_bytes(key: str) -> int | None:
    return _kb_field("/proc/meminfo", key)


def _status_bytes(key: str) -> int | None:
    return _kb_field("/proc/self/status", key)


def _kb_field(path: str, key: str) -> int | None:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(scenario: Scenario, available: float | None = None) -> None:
    """Refuse a scenario whose estimated run memory exceeds `available` (default: what this
    process may still take), naming the field that drives the estimate and both numbers."""
    requests = expected_requests(scenario)
    replicas = replica_count(scenario)
    request_bytes, replica_bytes = requests * REQUEST_BYTES, replicas * REPLICA_BYTES
    need = request_bytes + replica_bytes
    free = available_bytes() if available is None else available
    if need <= free:
        return
    advice = "simulate fewer"
    if replica_bytes > request_bytes:
        field = "cluster.disaggregated" if scenario.cluster.disaggregated else "cluster.replicas"
        cause = f"{replicas:,} replicas"
    else:
        field = _request_field(scenario.stop)
        cause = f"about {requests:,.0f} requests"
        advice += ", or stream the run (run --stream)"
    raise LimitError(
        f"{field}: {cause} need about {si(need, 'B')} of memory to simulate, and "
        f"{si(free, 'B')} is available; {advice}"
    )


def _request_field(stop: Stop) -> str:
    """The stop field that sets how many requests a run holds at most."""
    if stop.until == "converged":
        return "stop.max_requests"
    return "stop.requests" if stop.requests is not None else "stop.duration_s"
