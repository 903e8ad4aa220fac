"""Data-parallel attention ranks of one engine, stepping together.

An engine that runs attention data-parallel (`attention_dp` ranks, each with its own scheduler,
requests and KV) and shares its MoE layers between the ranks cannot step them apart: every MoE layer
exchanges tokens between all ranks (DeepEP's dispatch and combine, or SGLang's gather and scatter),
so each rank waits there for the others, and a rank with no requests runs an empty batch to take
part (SGLang's and vLLM's idle or dummy batches). One step of the engine is one step of every
rank: it lasts as long as the slowest rank's own operators plus the shared ones
(`CostModel.group_step_into`), so a rank prefilling a long prompt holds up the decodes of all the
others, which is why TensorRT-LLM delays context requests until every rank has one
(`_balance_adp_requests`).

The ranks are `Replica`s that plan and commit their own steps; the group asks each for its next
step, prices them together, and commits them all at the step's end. Ranks step one at a time (no
event skipping).
"""

from __future__ import annotations

from sim.cost.roofline import new_acc
from sim.engine import _kernels as K
from sim.engine.replica import Replica


class Lockstep:
    """The ranks of one engine and the step they run together."""

    def __init__(self, ranks: list[Replica]):
        self.ranks = ranks
        self.env = ranks[0].env
        self.cost = ranks[0].cost
        self.idle = True
        self.stepping: list[Replica] = []
        for rank in ranks:
            rank.group = self
            rank.skip = False

    def wake(self) -> None:
        """A rank got a request: start stepping if the engine was idle."""
        if self.idle:
            self.idle = False
            self.env.timeout(0).callbacks.append(self.advance)

    def advance(self, _event=None) -> None:
        batches, accs, stalls, self.stepping = [], [], [], []
        steps = []
        for rank in self.ranks:
            step = rank.next_step()
            if step is None:
                rank.idle = True
                continue
            rank.idle = False
            new, prefill, _ = step
            n = rank.n
            batches.append((new[:n], rank.kv[:n], K.sampled_count(rank.S, n, new)))
            accs.append(new_acc())
            stalls.append(rank.stall_s)
            steps.append((rank, new, prefill))
        if not steps:
            self.idle = True
            return
        dt = self.cost.group_step_into(batches, len(self.ranks), accs) + max(stalls)
        for (rank, new, prefill), acc in zip(steps, accs, strict=True):
            rank.acc += acc
            rank.stall_s = 0.0
            rank.begin_step(new, prefill, dt)
            self.stepping.append(rank)
        self.env.timeout(dt).callbacks.append(self.end_step)

    def end_step(self, _event) -> None:
        for rank in self.stepping:
            rank.commit_step(rank.step_new)
            rank.advance_window(1, rank.step_prefill)
        self.advance()


def rank_groups(replicas: list[Replica], size: int) -> list[Lockstep]:
    """Consecutive `size` replicas of a pool as the ranks of one engine each."""
    return [Lockstep(replicas[i : i + size]) for i in range(0, len(replicas), size)] if size > 1 else []
