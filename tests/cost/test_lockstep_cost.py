"""The step of data-parallel attention ranks that step together (`CostModel.group_step_into`): each
rank pays its own operators on its own batch, the shared MoE operators are paid once on every rank's
tokens, and the step lasts as long as the slowest rank."""

import numpy as np
import pytest

from hardware import load_hardware
from sim.cost import _kernels as K
from sim.cost.parallelism import Parallelism
from sim.cost.roofline import RooflineCost, new_acc
from workloads import load_model

RANKS = 8


@pytest.fixture(scope="module")
def cost():
    model = load_model("deepseek-v3").with_dtypes(weight_dtype="fp8")
    return RooflineCost(model, load_hardware("b200"), Parallelism(attention_dp=RANKS, ep=RANKS))


def decode(seqs, ctx):
    return np.ones(seqs, np.int64), np.full(seqs, ctx, np.int64), seqs


def prefill(tokens):
    return np.array([tokens], np.int64), np.array([0], np.int64), 1


def group(cost, batches):
    accs = [new_acc() for _ in batches]
    return cost.group_step_into(batches, RANKS, accs), accs


def test_only_the_routed_experts_and_their_exchange_are_shared(cost):
    shared = {n for n, s in zip(cost.table.names, cost.table.shared, strict=True) if s}
    assert shared == {"Lattention/moe.experts", "Lattention/moe.dispatch_combine"}


def test_ranks_with_equal_batches_step_as_one_rank_priced_alone(cost):
    """Each rank's table already prices the shared operators as if every rank brought its batch."""
    b = decode(64, 3000)
    dt, accs = group(cost, [b] * RANKS)
    assert dt == pytest.approx(cost.step(*b).total_s, rel=1e-12)
    assert all(acc[K.TOTAL] == pytest.approx(dt, rel=1e-12) for acc in accs)


def test_a_prefilling_rank_holds_up_the_decoding_ones(cost):
    """The step is the prefilling rank's own operators plus the shared ones on all tokens: slower
    than any decode step, faster than that prefill priced as if every rank prefilled as much."""
    ranks = [prefill(8000)] + [decode(64, 3000)] * (RANKS - 1)
    dt, accs = group(cost, ranks)
    assert cost.step(*decode(64, 3000)).total_s < dt < cost.step(*prefill(8000)).total_s
    assert all(acc[K.TOTAL] == pytest.approx(dt, rel=1e-12) for acc in accs)
    # the decoding ranks' own work is the same as alone; the rest of their step is waiting
    assert accs[1][K.COMPUTE] + accs[1][K.MEMORY] + accs[1][K.LINK] < accs[0][K.COMPUTE] + accs[0][K.MEMORY]


def test_shared_operators_see_the_mean_ranks_tokens(cost):
    """Hand check on the routed experts' FLOPs: the shared part of a step where one rank brings T
    tokens and the others none equals the part of a rank bringing T / ranks alone (equal load)."""
    one = group(cost, [prefill(8000)])[0]
    alone = cost.breakdown(*prefill(8000))
    own = alone[~cost.table.shared]["time_s"].sum()
    mean = cost.breakdown(*prefill(1000))  # 8000 tokens over 8 ranks
    assert one == pytest.approx(own + mean[cost.table.shared]["time_s"].sum(), rel=1e-9)


def test_one_rank_is_the_plain_step():
    model = load_model("llama-3.1-8b")
    plain = RooflineCost(model, load_hardware("h100-sxm"), Parallelism())
    b = decode(32, 1500)
    dt = plain.group_step_into([b], 1, [new_acc()])
    assert dt == pytest.approx(plain.step(*b).total_s, rel=1e-12)
