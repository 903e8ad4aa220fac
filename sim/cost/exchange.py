"""What a layer exchanges between devices beyond the tensor-parallel all-reduce, and how context
parallelism splits a step's work: the operators `sim.cost.ops.build_ops` adds for expert, attention
data and context parallelism (see `sim.cost.parallelism` for the layout).

One step's table is what one scheduler's batch costs a device (an attention rank's requests). The
MoE layers are shared by all attention ranks of a stage; each rank is assumed to bring a batch like
this one (equal load), so an expert device works on attention_dp times the rank's tokens.

- Expert parallelism: each MoE layer dispatches every token to the devices holding its experts and
  combines the results back, two all-to-alls over the ep groups (DeepEP's dispatch, in fp8 when the
  experts run fp8, and combine, in bf16), one row. A device sends its 1/tp of the rank's tokens, each
  once to every distinct device its `active` experts
  sit on, ep·(1 - (1 - 1/ep)^active) of them under uniform routing; the busiest receiver, `imbalance`
  times the mean, sets the pace. Experts split moe_tp ways inside a group all-reduce their outputs.
- Attention data parallelism: a MoE layer the ranks share without expert parallelism (its experts
  tensor-split over all tp x attention_dp devices) gathers every rank's tokens and scatters the
  results back (SGLang's all-gather and reduce-scatter around DP attention), costed as an all-reduce
  of all ranks' tokens over those devices. Dense FFN layers stay with their rank (data parallel).
- Context parallelism: each of the cp ranks holds 1/cp of every sequence (load-balanced, so 1/cp of
  the tokens, query-key pairs and KV a device handles) and runs ring attention: the new tokens' K and V
  pass around the ring (pass-KV, what a full prefill needs) and each sequence's latest query meets the
  other ranks' cached KV and brings its partial output back (pass-Q, what decode needs), (cp-1)/cp of
  each per device; a chunk after the first is charged pass-KV for its own tokens and pass-Q for one
  query, a lower bound when its earlier chunks are long. The ring overlaps each block's
  transfer with the attention of the block before (Yang et al. 2024, arXiv:2411.01783), so the
  exchange joins the attention kernel's memory leg at its link-time equivalent: the kernel takes
  max(compute, KV reads + exchange) and the exchange hides under compute as far as compute allows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hardware.spec import BYTES_PER_ELEMENT
from sim.cost import _kernels as K
from sim.cost.collectives import add_collective, all_reduce, all_to_all, send, span
from sim.cost.legs import ACT_BYTES, kernel_legs
from sim.cost.optable import OpBuilder

if TYPE_CHECKING:
    from sim.cost.ops import Placement
    from workloads.model import LayerGroup

UNSPLIT = (K.ONE, K.SAMPLED, K.SEQS, K.MOE_TOUCHED)
"""Features context parallelism does not divide: weights read once a step, the sampled rows (the
rank holding a sequence's last token samples it), per-sequence state and the touched-expert share
(recomputed per rank by `moe_ratio`)."""


def spreads_ffn(c: Placement, g: LayerGroup) -> bool:
    """Whether this layer's FFN exchanges more than the tensor-parallel all-reduce."""
    par = c.par
    return g.ffn == "moe" and (par.ep > 1 or par.attention_dp > 1)


def destinations(experts_per_token: int, ep: int) -> float:
    """Distinct expert-parallel groups a token's experts sit on, under uniform routing."""
    return ep * (1.0 - (1.0 - 1.0 / ep) ** experts_per_token)


def dispatch_bytes(weight_dtype: str) -> float:
    """Bytes an element of a dispatched token takes: fp8 where the experts run fp8 GEMMs (DeepEP
    dispatches in FP8 and combines in BF16 for DeepSeek-V3, deepseek-ai/DeepEP README), else bf16."""
    return BYTES_PER_ELEMENT["fp8"] if weight_dtype == "fp8" else ACT_BYTES


def emit_ffn_exchange(bld: OpBuilder, c: Placement, g: LayerGroup, tag: str) -> None:
    """Dispatch and combine around an expert-parallel MoE layer, or the gather and scatter around a
    tensor-split MoE layer that attention ranks share (see the module docstring)."""
    par, hw, h = c.par, c.hw, c.h
    if par.ep > 1 and g.ffn == "moe":
        moe = c.model.moe
        both = dispatch_bytes(c.model.weight_dtype) + ACT_BYTES  # one element there, one back
        sent = destinations(moe.active, par.ep) * h * both * par.imbalance / par.tp
        where = f"ep ({par.ep})"
        legs = all_to_all(hw, par.ep, par.moe_tp, where)
        add_collective(bld, hw, f"{tag}.dispatch_combine", g.count, legs, {K.TOKENS: sent}, shared=True)
        if par.moe_tp > 1:
            pairs = moe.active * par.attention_dp * par.imbalance / par.ep
            legs = all_reduce(hw, par.moe_tp, where=f"moe tp ({par.moe_tp})")
            outputs = {K.TOKENS: pairs * h * ACT_BYTES}
            add_collective(bld, hw, f"{tag}.expert_allreduce", g.count, legs, outputs, shared=True)
        return
    where = f"attention_dp ({par.attention_dp})"
    legs = all_reduce(hw, par.ffn_group, where=where)
    gathered = par.attention_dp * h * ACT_BYTES
    add_collective(bld, hw, f"{tag}.dp_gather_scatter", g.count, legs, {K.TOKENS: gathered}, shared=True)


def moe_ratio(c: Placement) -> float:
    """The touched-expert feature's per-token ratio for this device's share of tokens: attention_dp
    ranks' tokens meet in the MoE, a context-parallel rank sees 1/cp of them (1 - (1 - a/E)^(dp/cp))."""
    moe, par = c.model.moe, c.par
    return 1.0 - (1.0 - moe.active / moe.experts) ** (par.attention_dp / par.cp)


def shard_sequences(bld: OpBuilder, cp: int) -> None:
    """Context parallelism's split of every sequence over cp ranks: every per-token, per-pair and
    per-KV-token coefficient of every operator divided by cp."""
    split = np.ones(K.N_FEATURES)
    split[[i for i in range(K.N_FEATURES) if i not in UNSPLIT]] = 1.0 / cp
    bld.f = [f * split for f in bld.f]
    bld.b = [b * split for b in bld.b]


def fold_ring_exchange(bld: OpBuilder, c: Placement) -> None:
    """Add ring attention's exchange to each attention kernel's memory leg at its link-time
    equivalent, and its cp - 1 ring steps' latency to the kernel's overhead."""
    par, model, hw = c.par, c.model, c.hw
    stride = par.ffn_group
    where = f"cp ({par.cp})"
    leg = send(hw, span(hw.scale_up, par.cp, stride).domains > 1, where)
    base_link = hw.link()
    link_rate = kernel_legs(hw, "link").rate_b * leg.bandwidth_bytes_per_s / base_link.bandwidth_bytes_per_s
    head = model.mla.kv_lora_rank + model.mla.qk_rope_head_dim if model.mla else model.head_dim
    q_width = model.num_heads * head
    share = (par.cp - 1) / par.cp
    kv = share * model.kv_bytes_per_token_layer(par.tp)
    queries = share * 2 * ACT_BYTES * q_width / par.tp
    for i, name in enumerate(bld.names):
        if name.endswith(".attention"):
            row = bld.ops[i]
            bld.b[i][K.TOKENS] += kv * row[K.RATE_B] / link_rate
            bld.b[i][K.SEQS] += queries * row[K.RATE_B] / link_rate
            row[K.OVERHEAD] += (par.cp - 1) * leg.latency_s
