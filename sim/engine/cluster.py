"""The cluster around the replicas: arrivals (open loop, or closed-loop users who wait for their
answers), routing to the front pool, rejection of requests no replica could hold, and the KV
transfer that moves a sequence from a prefill replica to a decode replica."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import simpy

from sim.engine.recorder import CONTEXT_LIMIT, KV_CAPACITY, PROMPT_TOO_LONG
from sim.engine.router import ROUTERS, round_robin
from sim.scenario import Scheduler
from workloads.arrivals import ClosedLoop

if TYPE_CHECKING:
    from sim.engine.replica import Replica


class Cluster:
    """Routes arrivals to the front pool and moves KV from prefill to decode replicas."""

    def __init__(self, env, reqs, state, stats, router, transfer_s_per_token, transfer_latency_s, progress):
        self.env, self.reqs, self.state, self.stats = env, reqs, state, stats
        self.max_context_tokens: int | None = None  # longest prompt + output admitted; None: no limit
        self.route = ROUTERS[router]
        self.transfer_s_per_token = transfer_s_per_token
        self.transfer_latency_s = transfer_latency_s
        self.progress = progress
        self.front: list[Replica] = []
        self.back: list[Replica] = []
        self.all_done = env.event()
        self.waiters: dict[int, simpy.Event] = {}  # closed-loop users waiting for their answer
        # per-request constants as Python ints: the hot paths read them one at a time
        self.prompt = reqs.prompt_tokens.tolist()
        self.output = reqs.output_tokens.tolist()
        self.work = (reqs.prompt_tokens + reqs.output_tokens).tolist()  # tokens a request brings

    def done(self, count: int, rids=()) -> None:
        if self.waiters:  # closed loop: answer the users
            for r in rids:
                waiter = self.waiters.pop(int(r), None)
                if waiter is not None:
                    waiter.succeed()
        self.stats.done += count
        if self.progress is not None:
            self.progress(count)
        if self.stats.done == len(self.reqs) and not self.all_done.triggered:
            self.all_done.succeed()

    def transfer(self, r: int, kv_tokens: int) -> None:
        self.stats.transfers += 1
        self.env.process(self._transfer(r, kv_tokens))

    def _transfer(self, r: int, kv_tokens: int):
        delay = self.transfer_latency_s + kv_tokens * self.transfer_s_per_token
        self.state.transfer_s[r] = delay
        yield self.env.timeout(delay)
        self.state.first_token_s[r] = self.env.now
        self.state.transferred_kv[r] = kv_tokens
        outstanding = [rep.outstanding_tokens for rep in self.back]
        rep = self.back[ROUTERS["least_tokens"](outstanding, r, None)]
        rep.enqueue(r)
        rep.record()

    def admit(self, r: int, fits_blocks, capacity_blocks: int, cfg: Scheduler) -> None:
        """Route request r, arriving now, or reject it with a reason."""
        state, stats = self.state, self.stats
        stats.events += 1
        if self.max_context_tokens is not None and self.work[r] > self.max_context_tokens:
            state.rejected[r] = CONTEXT_LIMIT
            self.done(1, (r,))
            return
        if fits_blocks[r] > capacity_blocks:
            state.rejected[r] = KV_CAPACITY
            self.done(1, (r,))
            return
        if not cfg.chunked_prefill and self.prompt[r] > cfg.max_num_batched_tokens:
            state.rejected[r] = PROMPT_TOO_LONG
            self.done(1, (r,))
            return
        # round robin needs only the count of replicas, not their loads
        outstanding = (
            self.front if self.route is round_robin else [rep.outstanding_tokens for rep in self.front]
        )
        hits = (
            [rep.prefix_hits(r) for rep in self.front] if self.route is ROUTERS["prefix_affinity"] else None
        )
        rep = self.front[self.route(outstanding, r, hits)]
        stats.in_system += 1
        rep.enqueue(r)
        rep.record()

    def arrivals(self, fits_blocks, capacity_blocks: int, cfg: Scheduler) -> None:
        """Open loop: requests arrive at their `arrival_s` (a chain of timeout callbacks, one
        outstanding at a time)."""
        env = self.env
        times = self.reqs.arrival_s.tolist()
        nxt = [0]  # the next request to arrive

        def arrive(_event) -> None:
            r = nxt[0]
            if r:  # the timeout for request r - 1 fired
                self.admit(r - 1, fits_blocks, capacity_blocks, cfg)
            while r < len(times):
                nxt[0] = r + 1
                if times[r] > env.now:
                    env.timeout(times[r] - env.now).callbacks.append(arrive)
                    return
                self.admit(r, fits_blocks, capacity_blocks, cfg)
                r += 1

        env.timeout(0).callbacks.append(arrive)

    def users(
        self, loop: ClosedLoop, rng: np.random.Generator, fits_blocks, capacity_blocks: int, cfg: Scheduler
    ):
        """Closed loop: each user sends the next request, waits for its answer, thinks, repeats.
        Requests are taken in table order, so arrival times come out sorted."""
        next_request = iter(range(len(self.reqs)))
        think = rng.exponential(loop.think_time_s, len(self.reqs)) if loop.think_time_s > 0 else None

        def user():
            for r in next_request:
                self.reqs.arrival_s[r] = self.env.now
                answered = self.waiters[r] = self.env.event()
                self.admit(r, fits_blocks, capacity_blocks, cfg)
                yield answered
                if think is not None:
                    yield self.env.timeout(think[r])

        for _ in range(loop.users):
            self.env.process(user())
