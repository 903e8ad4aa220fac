"""The cluster around the replicas: arrivals (open loop, or closed-loop users who wait for their
answers), routing to the front pool, rejection of requests no replica could hold, and the KV
transfer that moves a sequence from a prefill replica to a decode replica."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import simpy

from sim.engine.batcher import dispatch
from sim.engine.config import ClusterConfig, SchedulerConfig
from sim.engine.context import RunContext
from sim.engine.recorder import CONTEXT_LIMIT, KV_CAPACITY, PROMPT_TOO_LONG
from sim.engine.replica import Replica
from sim.engine.router import ROUTERS, round_robin
from workloads.arrivals import ClosedLoop


class Cluster:
    """Routes arrivals to the front pool and moves KV from prefill to decode replicas. Replicas
    join `front` (mixed or prefill) or `back` (decode) before the cluster `open`s."""

    def __init__(
        self,
        ctx: RunContext,
        config: ClusterConfig,
        sched: SchedulerConfig,
        progress: Callable[[int], None] | None,
    ):
        self.env, self.reqs, self.state, self.stats = ctx.env, ctx.reqs, ctx.state, ctx.stats
        self.config, self.sched = config, sched
        self.max_context_tokens = config.max_context_tokens
        self.route = ROUTERS[config.router]
        self.transfer_s_per_token = config.transfer_s_per_token
        self.transfer_latency_s = config.transfer_latency_s
        self.progress = progress
        self.front: list[Replica] = []
        self.back: list[Replica] = []
        self.all_done = ctx.env.event()
        self.waiters: dict[int, simpy.Event] = {}  # closed-loop users waiting for their answer
        self.prompt = ctx.prompt
        self.work = (ctx.reqs.prompt_tokens + ctx.reqs.output_tokens).tolist()  # tokens a request brings
        self.fits_blocks: list[int] = []  # KV blocks each request needs, alone, at its end
        self.capacity_blocks = 0  # of the smallest KV pool a request passes through

    def open(self, fits_blocks: list[int], capacity_blocks: int) -> None:
        """Start the arrivals: a request needing more than `capacity_blocks` is rejected."""
        self.fits_blocks, self.capacity_blocks = fits_blocks, capacity_blocks
        loop = self.config.closed_loop
        if loop is None:
            self.arrivals()
        else:
            self.users(loop, np.random.default_rng([self.config.seed, 1]))

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

    def admit(self, r: int) -> None:
        """Route request r, arriving now, or reject it with a reason."""
        if self.accepts(r):
            self.enqueue(r, self.pick(r, r))

    def accepts(self, r: int) -> bool:
        """Whether request r can be served at all; if not, it is finished as rejected."""
        state, stats, sched = self.state, self.stats, self.sched
        stats.events += 1
        reason = None
        if self.max_context_tokens is not None and self.work[r] > self.max_context_tokens:
            reason = CONTEXT_LIMIT
        elif self.fits_blocks[r] > self.capacity_blocks:
            reason = KV_CAPACITY
        elif not sched.chunked_prefill and self.prompt[r] > sched.max_num_batched_tokens:
            reason = PROMPT_TOO_LONG
        if reason is not None:
            state.rejected[r] = reason
            self.done(1, (r,))
        return reason is None

    def pick(self, r: int, counter: int) -> Replica:
        """The front replica the router picks for request r, `counter` arrivals (or batches) in."""
        # round robin needs only the count of replicas, not their loads
        outstanding = (
            self.front if self.route is round_robin else [rep.outstanding_tokens for rep in self.front]
        )
        hits = (
            [rep.prefix_hits(r) for rep in self.front] if self.route is ROUTERS["prefix_affinity"] else None
        )
        return self.front[self.route(outstanding, counter, hits)]

    def enqueue(self, r: int, rep: Replica) -> None:
        self.stats.in_system += 1
        rep.enqueue(r)
        rep.record()

    def arrivals(self) -> None:
        """Open loop: requests arrive at their `arrival_s` (a chain of timeout callbacks, one
        outstanding at a time), or, behind a `batcher`, in batches at the times it sends them."""
        if self.config.batcher is not None:
            self.batches()
            return
        env = self.env
        times = self.reqs.arrival_s.tolist()
        nxt = [0]  # the next request to arrive

        def arrive(_event) -> None:
            r = nxt[0]
            if r:  # the timeout for request r - 1 fired
                self.admit(r - 1)
            while r < len(times):
                nxt[0] = r + 1
                if times[r] > env.now:
                    env.timeout(times[r] - env.now).callbacks.append(arrive)
                    return
                self.admit(r)
                r += 1

        env.timeout(0).callbacks.append(arrive)

    def batches(self) -> None:
        """Open loop behind the `batcher`: each batch reaches the replica the router picks for it
        (its first servable request decides; the batch's number is the round-robin counter) when
        the batcher sends it. Latencies still count from each request's arrival."""
        env = self.env
        release, number = dispatch(self.reqs.arrival_s, self.config.batcher)
        starts = [*np.flatnonzero(np.diff(number, prepend=-1)).tolist(), len(number)]

        def send(b: int):
            first, end = starts[b], starts[b + 1]
            yield env.timeout(release[first] - env.now)
            rep = None
            for r in range(first, end):
                if self.accepts(r):
                    if rep is None:
                        rep = self.pick(r, int(number[first]))
                    self.enqueue(r, rep)
            if b + 1 < len(starts) - 1:
                env.process(send(b + 1))

        if len(number):
            env.process(send(0))

    def users(self, loop: ClosedLoop, rng: np.random.Generator) -> None:
        """Closed loop: each user sends the next request, waits for its answer, thinks, repeats.
        Requests are taken in table order, so arrival times come out sorted."""
        next_request = iter(range(len(self.reqs)))
        think = rng.exponential(loop.think_time_s, len(self.reqs)) if loop.think_time_s > 0 else None

        def user():
            for r in next_request:
                self.reqs.arrival_s[r] = self.env.now
                answered = self.waiters[r] = self.env.event()
                self.admit(r)
                yield answered
                if think is not None:
                    yield self.env.timeout(think[r])

        for _ in range(loop.users):
            self.env.process(user())
