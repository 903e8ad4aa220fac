"""Data-parallel attention ranks of one engine, stepping together.

An engine that runs attention data-parallel (`attention_dp` ranks, each with its own scheduler,
requests and KV) and shares its MoE layers between the ranks cannot step them apart: every MoE layer
exchanges tokens between all ranks (DeepEP's dispatch and combine, or SGLang's gather and scatter),
so each rank waits there for the others, and a rank with no requests runs an empty batch to take
part (SGLang's and vLLM's idle or dummy batches). One step of the engine is one step of every
rank: it lasts as long as the slowest rank's own operators plus the shared ones
(`CostModel.group_step_into`), so a rank prefilling a long prompt holds up the decodes of all the
others, which is why TensorRT-LLM holds context requests back until every rank has one
(`_balance_adp_requests`).

The ranks are `Replica`s that plan and commit their own steps; the group asks each for its next
step, prices them together and commits them all at the step's end. When every rank with work can
run a decode span, the group runs one span of the fewest steps any of them may take
(`CostModel.group_decode_span`), cut short, as a replica's is, by an arrival that could join its
rank's batch; with the prefix cache on, the group steps one step at a time (a span would have to
take its steps' blocks for routing mid-span, `Replica.reserve_span`).
"""

from __future__ import annotations

import math

import numpy as np

from sim.cost.roofline import new_acc
from sim.engine import _kernels as K
from sim.engine.replica import Replica


class Lockstep:
    """The ranks of one engine and the step or decode span they run together."""

    def __init__(self, ranks: list[Replica]):
        self.ranks = ranks
        self.env = ranks[0].env
        self.cost = ranks[0].cost
        cfg = ranks[0].cfg
        timeout = cfg.adp_timeout_iters
        self.balance = Balance(timeout, cfg.adp_batching_wait_iters) if timeout else None
        self.spans = ranks[0].skip and ranks[0].cache is None
        self.idle = True
        self.stepping: list[Replica] = []
        self.timer = None
        self.span: tuple | None = None  # (start, k_max, steps, accs, contexts) of the span in flight
        self.reading: tuple[bool, bool] | None = None  # the balancing counts' reading during the span
        self.cuts: set[int] = set()  # ranks whose arrival would join their batch, cutting the span
        for rank in ranks:
            rank.group = self

    def wake(self, rank: Replica) -> None:
        """`rank` got a request: start stepping if the engine was idle, or end the span in flight
        after its current step if the request could join the rank's batch."""
        if self.idle:
            self.idle = False
            self.env.timeout(0).callbacks.append(self.advance)
        elif self.span is not None and rank.index in self.cuts:
            self.cuts.clear()
            self.cut_span()

    def advance(self, _event=None) -> None:
        if self.balance is not None:
            held = not self.balance.admit(self.ranks)
            for rank in self.ranks:
                rank.held = held
        steps = []
        for rank in self.ranks:
            step = rank.next_step()
            if step is not None:
                steps.append((rank, *step))
        self.stepping = [rank for rank, *_ in steps]
        if not steps:
            self.idle = True
            return
        k_max = min(k for *_, k in steps)
        if self.balance is not None:
            k_max = min(k_max, self.balance.quiet(self.ranks))
        if self.spans and k_max > 1:
            self.start_span(k_max)
            return
        batches = [(new[: r.n], r.kv[: r.n], K.sampled_count(r.S, r.n, new)) for r, new, _, _ in steps]
        accs = [new_acc() for _ in steps]
        stall = max(r.stall_s for r in self.stepping)
        dt = self.cost.group_step_into(batches, len(self.ranks), accs) + stall
        for (rank, new, prefill, _), acc in zip(steps, accs, strict=True):
            rank.acc += acc
            rank.stall_s = 0.0
            rank.begin_step(new, prefill, dt)
        self.after(dt, self.end_step)

    def after(self, delay: float, callback) -> None:
        self.timer = self.env.timeout(delay)
        self.timer.callbacks.append(callback)

    def end_step(self, _event) -> None:
        for rank in self.stepping:
            rank.commit_step(rank.step_new)
            rank.advance_window(1, rank.step_prefill)
        self.advance()

    # ---- decode spans -----------------------------------------------------------------------------
    def start_span(self, k_max: int) -> None:
        t0 = self.env.now
        self.reading = None if self.balance is None else self.balance.reading(self.ranks)
        contexts = [rank.kv[: rank.n].copy() for rank in self.stepping]
        accs = np.zeros((len(contexts), len(new_acc())))
        k, t_end = self.cost.group_decode_span(contexts, len(self.ranks), t0, np.inf, k_max, accs)
        self.span = (t0, k_max, k, accs, contexts)
        self.cuts = {
            rank.index
            for rank in self.ranks
            # under balancing any arrival may change whether requests join, on every rank
            if self.balance is not None
            or rank.n == 0
            or (not rank.waiting and rank.n < rank.cfg.max_num_seqs and rank.available() > 0)
        }
        for rank in self.stepping:
            rank.stats.spans += 1
        self.after(t_end - t0, self.end_span)

    def cut_span(self) -> None:
        """End the span with the step in flight now; the waiting request joins the step after."""
        t0, k_max, _, _, contexts = self.span
        accs = np.zeros((len(contexts), len(new_acc())))
        k, t_end = self.cost.group_decode_span(contexts, len(self.ranks), t0, self.env.now, k_max, accs)
        self.timer.callbacks.remove(self.end_span)  # the old end fires with nobody listening
        self.span = (t0, k_max, k, accs, contexts)
        self.after(t_end - self.env.now, self.end_span)

    def end_span(self, _event) -> None:
        _, _, k, accs, _ = self.span
        self.span = None
        self.cuts.clear()
        if self.balance is not None:
            self.balance.count(k - 1, self.reading)
        for rank, acc in zip(self.stepping, accs, strict=True):
            rank.acc += acc
            rank.busy_s += acc[0]
            rank.commit_span(k)
            rank.advance_window(k, False)
        self.advance()


class Balance:
    """TensorRT-LLM's attention-DP balancing (`attention_dp_config: {enable_balance: true}`;
    `_balance_adp_requests` in tensorrt_llm/_torch/pyexecutor/py_executor.py): each iteration the
    ranks share what they would schedule, and new requests join every rank at once or none. When
    every rank has a free slot and a request waiting, they join, after `batching_wait_iters` more
    iterations if every rank is also decoding; otherwise they wait, until `timeout_iters`
    iterations have passed (the count restarts when they join) or at once when some rank has
    nothing to decode. A decode span counts its iterations too: it ends before the iteration that
    would let waiting requests in (`quiet`), and nothing it does changes what the counts read
    (an arrival ends it; a finishing sequence ends it)."""

    def __init__(self, timeout_iters: int, batching_wait_iters: int):
        self.timeout_iters, self.batching_wait_iters = timeout_iters, batching_wait_iters
        self.waited = 0  # iterations since requests last joined, while not every rank had one
        self.batched = 0  # iterations every rank has had one waiting, while all decode

    def admit(self, ranks: list[Replica]) -> bool:
        """Whether this iteration's waiting requests may join (counting the iteration)."""
        return self.decide(*self.reading(ranks))

    @staticmethod
    def reading(ranks: list[Replica]) -> tuple[bool, bool]:
        """What the ranks' gathered counts say: every rank has a free slot and a request waiting;
        every rank is decoding."""
        every_waits = all(rank.waiting and rank.n < rank.cfg.max_num_seqs for rank in ranks)
        return every_waits, all(rank.n > 0 for rank in ranks)

    def decide(self, every_waits: bool, decoding: bool) -> bool:
        if every_waits:
            self.waited = 0
            if decoding and self.batched < self.batching_wait_iters:
                self.batched += 1
                return False
            self.batched = 0
            return True
        self.waited += 1
        if self.waited >= self.timeout_iters or not decoding:
            self.waited = 0
            return True
        return False

    def quiet(self, ranks: list[Replica]) -> int | float:
        """Iterations from this one (`admit` counted) before requests waiting now could join, if
        nothing changes meanwhile: infinite when none waits."""
        if not any(rank.waiting for rank in ranks):
            return math.inf
        if self.reading(ranks)[0]:
            return 1 + self.batching_wait_iters - self.batched
        return self.timeout_iters - self.waited

    def count(self, iterations: int, reading: tuple[bool, bool]) -> None:
        """`admit` for `iterations` more iterations in which the counts read `reading` (a decode
        span within `quiet`, whose arrivals and finishing sequences end it)."""
        for _ in range(iterations):
            self.decide(*reading)


def rank_groups(replicas: list[Replica], size: int) -> list[Lockstep]:
    """Consecutive `size` replicas of a pool as the ranks of one engine each."""
    return [Lockstep(replicas[i : i + size]) for i in range(0, len(replicas), size)] if size > 1 else []
