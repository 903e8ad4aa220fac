"""What every part of one simulated run shares: the simpy environment, the requests and their
per-request constants, the columns the engine fills in, and the one way back from a replica to its
cluster (`Downstream`), so replicas never import the cluster that holds them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import simpy

from sim.engine.recorder import EngineStats, Recorder, RequestState
from workloads.requests import Requests


class Downstream(Protocol):
    """Where a replica sends what leaves it: finished (or rejected) requests, and sequences whose KV
    moves to the decode pool."""

    def done(self, count: int, rids: Sequence[int] = ()) -> None: ...

    def transfer(self, r: int, kv_tokens: int) -> None: ...


class RunContext:
    """One run's shared state. `skip` turns event skipping on (decode spans in one kernel call)."""

    def __init__(self, env: simpy.Environment, reqs: Requests, skip: bool) -> None:
        self.env, self.reqs, self.skip = env, reqs, skip
        self.state, self.recorder, self.stats = RequestState(len(reqs)), Recorder(), EngineStats()
        # per-request constants as Python ints: the hot paths read them one at a time
        self.prompt = reqs.prompt_tokens.tolist()
        self.output = reqs.output_tokens.tolist()
        self.work = (reqs.prompt_tokens + reqs.output_tokens).tolist()  # tokens a request brings
