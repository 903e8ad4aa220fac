"""The engine's fast path equals the cost model's per-operator breakdown.

The engine never looks at operators: it asks `CostModel.step_into` for a step's time and split, and
`CostModel.decode_span` to jump over runs of decode steps. Reports, the estimate's bound and the
dashboard read `CostModel.breakdown`, one row per operator. These are separate code paths over the
same operator table, so on random batches (prefill chunks mixed with decodes, across the layer kinds
of the catalog and tp 1, 2 and 8) the fast path must add up to the breakdown, and a decode span of k
steps must equal k single decode steps."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardware import load_hardware
from hardware.spec import Curve, Curves, Efficiency
from sim.cost import _kernels as K
from sim.cost.parallelism import Parallelism
from sim.cost.roofline import CostModel, RooflineCost
from workloads import load_model

REL = 1e-9
MODELS = {
    "llama-3.1-8b": "GQA attention, dense FFN",
    "mixtral-8x7b": "MoE",
    "deepseek-v3": "MLA attention, MoE with a shared expert",
    "jamba-v0.1": "SSM/attention hybrid with MoE",
    "mamba2-2.7b": "SSM only",
    "gemma-3-27b": "sliding-window and full attention",
    "llama-4-scout": "chunked attention as a window, MoE",
    "deepseek-v3.2-exp": "MLA with DeepSeek sparse attention and its indexer",
    "qwen3-next-80b-a3b": "gated-DeltaNet linear attention hybrid",
    "gpt-oss-120b": "sliding and full attention, MXFP4 experts",
}


def _curve(lo: float) -> Curve:
    return Curve(size=(lo, lo * 1e3, lo * 1e6), efficiency=(0.2, 0.6, 0.9))


def _measured(hw):
    """`hw` with every efficiency knob and curve set, so the test covers the curve and overhead paths
    the datasheet presets leave unused."""
    eff = Efficiency(
        compute=0.8,
        memory=0.85,
        link=0.9,
        op_overhead_s=4e-6,
        step_overhead_s=1.5e-3,
        seq_overhead_s=20e-6,
        moe_gemm=0.6,
        collective=0.7,
        curves=Curves(
            gemm=_curve(1e6),
            gemm_fp8=_curve(1e6),
            attention=_curve(1e5),
            memory=_curve(1e4),
            attention_memory=_curve(1e4),
            link=_curve(1e3),
        ),
    )
    return hw.model_copy(update={"efficiency": eff})


def _costs() -> dict[tuple[str, str, int], CostModel]:
    h100 = load_hardware("h100-sxm")
    devices = {"h100-sxm": h100, "h100-sxm measured": _measured(h100)}
    return {
        (model, device, tp): RooflineCost(load_model(model), hw, Parallelism(tp))
        for model in MODELS
        for device, hw in devices.items()
        for tp in (1, 2, 8)
    }


COSTS = _costs()
KEYS = sorted(COSTS)

contexts = st.one_of(st.integers(0, 9000), st.integers(0, 200_000))
decodes = st.tuples(st.just(1), contexts)
prefill_chunks = st.tuples(st.integers(2, 4096), contexts)
mixed_batches = st.lists(st.one_of(decodes, prefill_chunks), min_size=1, max_size=48)


def _fast(cost: CostModel, new: np.ndarray, ctx: np.ndarray, sampled: int) -> np.ndarray:
    acc = np.zeros(K.N_ACC)
    total = cost.step_into(new, ctx, sampled, acc)
    assert total == acc[0]
    return acc


@settings(deadline=None, max_examples=300)
@given(mixed_batches, st.sampled_from(KEYS), st.data())
def test_step_into_equals_breakdown(batch, key, data):
    cost = COSTS[key]
    new, ctx = (np.array(v, np.int64) for v in zip(*batch, strict=True))
    sampled = data.draw(st.integers(0, len(new)), label="sampled")
    acc = _fast(cost, new, ctx, sampled)
    rows = cost.breakdown(new, ctx, sampled)
    by_bound = rows.groupby("bound")["time_s"].sum()
    assert acc[0] == pytest.approx(rows["time_s"].sum(), rel=REL)
    for slot, bound in ((1, "compute"), (2, "memory"), (3, "link")):
        assert acc[slot] == pytest.approx(by_bound.get(bound, 0.0), rel=REL, abs=1e-15)
    assert acc[4] == pytest.approx(rows["active_s"].sum(), rel=REL, abs=1e-15)
    step = cost.step(new, ctx, sampled)
    assert (step.total_s, step.compute_bound_s, step.memory_bound_s, step.link_s, step.active_s) == tuple(acc)


@settings(deadline=None, max_examples=150)
@given(st.lists(contexts, min_size=1, max_size=32), st.integers(1, 64), st.sampled_from(KEYS))
def test_decode_span_equals_single_steps(ctx, k, key):
    cost = COSTS[key]
    ctx = np.array(ctx, np.int64)
    ones = np.ones(len(ctx), np.int64)
    span = np.zeros(K.N_ACC)
    steps_done, end_s = cost.decode_span(ctx, 0.0, np.inf, k, span)
    single = sum(_fast(cost, ones, ctx + i, len(ctx)) for i in range(k))
    assert steps_done == k
    assert end_s == pytest.approx(single[0], rel=REL)
    assert span == pytest.approx(single, rel=REL, abs=1e-15)
