"""Which operators one forward pass of a model runs, per device of a replica (`sim.cost.parallelism`).

Each layer kind has its own emitter that appends its operators to an `OpBuilder`: the token mixer
(GQA/MHA attention, full or sliding-window; MLA attention, dense or with DeepSeek sparse attention;
linear attention; an SSM), the norms, the channel mixer (a
dense FFN; a mixture of experts) and the tensor-parallel all-reduces; then the embedding, the LM head,
the point-to-point hops between pipeline stages and the per-step framework overhead. `build_ops`
composes them in that order, layer group by layer group.

Each operator's FLOPs and bytes are linear in the batch features of sim/cost/_kernels.py (tokens,
sampled rows, attention pairs, KV tokens read, touched-expert fraction, sequences). Modelling choices:
- MLA attention is costed as serving engines run it: sequences that prefill (more than one new token)
  in the non-absorbed, compute-friendly form (the latent of their prior context up-projected to
  per-head K and V, then 2·H·(nope + rope) + 2·H·v FLOPs per query-key pair), decoding sequences in
  the absorbed, data-movement-friendly form (scores over the latent, 2·H·(2·r + rope) FLOPs per pair),
  as vLLM's MLA backends choose by the scheduler's prefill/decode label
  (vllm-project/vllm vllm/v1/attention/backends/mla/common.py, module docstring);
- a quantised KV cache (fp8, int4, int2, ...) costs its dequantisation on every KV byte read
  (`dequant_flops_per_kv_byte`), so low-bit KV trades bandwidth for vector compute;
- each operator's memory leg reads at the bandwidth of the tier its bytes sit on (the memory plan's
  placement): GEMMs at the weights' tier, attention at the KV tier, the rest at the activations'
  tier; KV spilled to a lower tier is read at that tier's bandwidth on every step that reads it
  (`emit_kv_spill`);
- chunked attention (Llama 4) is costed as a sliding window of the chunk size: an upper bound;
- a step is one scheduler's batch passing every pipeline stage: the sum of the stages plus a hop
  after each (the last carries the sampled tokens back to the first stage, latency only). A replica
  runs `pp` such schedulers at once (`Parallelism.engines`, vLLM's virtual engines), so in steady
  state each stage is busy with one micro-batch while the others are elsewhere in the pipeline
  (`sim.cost.pipeline` has the closed form);
- expert parallelism, attention data parallelism and context parallelism change what a device
  computes and holds here, and add what `sim.cost.exchange` describes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from hardware.spec import Accelerator, Link
from sim.cost import _kernels as K
from sim.cost.collectives import add_collective, all_reduce, boundaries_across, send
from sim.cost.exchange import emit_ffn_exchange, fold_ring_exchange, moe_ratio, shard_sequences, spreads_ffn
from sim.cost.legs import ACT_BYTES, KernelLegs, kernel_legs, overhead_only
from sim.cost.memory import MemoryPlan, memory_plan
from sim.cost.optable import OpBuilder, OpTable
from sim.cost.parallelism import ConfigError, Parallelism, check_parallelism
from workloads.model import LayerGroup, ModelArch

SSM_SCAN_FLOPS_PER_STATE = 6.0  # multiply-adds per state element per token in a selective scan (approx.)
DEQUANT_OPS_PER_ELEMENT = 2.0
"""Vector operations to dequantise one element of a quantised KV cache as it is read: one fused
multiply-add, x = s·q + z with a per-group scale s and zero point z, the form QServe's KV4 attention
reduces dequantisation to ("subtraction after multiplication"; Lin et al. 2024, arXiv:2405.04532,
which also shows this work on CUDA cores can make decode attention compute-bound)."""
T, S, SEQ = K.TOKENS, K.SAMPLED, K.SEQS


@dataclass(frozen=True)
class Placement:
    """A model on a replica's devices: what every emitter reads (per-device quantities), with the
    memory plan that says which tier (and so which bandwidth) each operator's bytes come from."""

    model: ModelArch
    hw: Accelerator
    par: Parallelism
    plan: MemoryPlan
    gemm: KernelLegs
    attn: KernelLegs
    mem: KernelLegs

    @classmethod
    def of(cls, model: ModelArch, hw: Accelerator, par: Parallelism, plan: MemoryPlan) -> Placement:
        return cls(
            model,
            hw,
            par,
            plan,
            kernel_legs(hw, "gemm", model.weight_dtype, plan.weights_bandwidth_bytes_per_s),
            kernel_legs(hw, "attention", bw=plan.kv_bandwidth_bytes_per_s),
            kernel_legs(hw, "memory", bw=plan.activations_bandwidth_bytes_per_s),
        )

    @property
    def tp(self) -> int:
        return self.par.tp

    @property
    def w(self) -> float:
        """Bytes per weight."""
        return self.model.weight_bytes_per_param

    @property
    def h(self) -> int:
        return self.model.hidden_size


def dequant_flops_per_kv_byte(model: ModelArch, hw: Accelerator) -> float:
    """Attention-rate FLOPs that dequantising one byte of a quantised KV cache costs (0 for a bf16,
    fp16 or fp32 cache): `DEQUANT_OPS_PER_ELEMENT` per element, elements per byte from the KV dtype,
    run on the vector units and so weighted by the matrix-to-vector peak ratio (1 where the device
    gives no vector rate, a lower bound). int4 KV on an H100 SXM: 2 x 2 x 989 / 133.8 = 29.6 per byte;
    int2: 59.1."""
    width = model.kv_bytes_per_element
    if width >= 2:
        return 0.0
    peaks = hw.peak_flops
    ratio = peaks.bf16 / peaks.vector if peaks.vector else 1.0
    return DEQUANT_OPS_PER_ELEMENT / width * ratio


def _projections(bld: OpBuilder, c: Placement, g: LayerGroup, tag: str, proj_out: int) -> None:
    """The attention projections (QKV + O, two kernels), their weights read once a step."""
    tp, a, h = c.tp, ACT_BYTES, c.h
    p = c.model.attention_params()
    bld.add_kernel(
        f"{tag}.attn_proj",
        g.count,
        c.gemm,
        2,
        flops={T: 2.0 * p / tp},
        nbytes={K.ONE: p * c.w / tp, T: a * (2 * h + proj_out / tp)},
    )


def _attention(
    bld: OpBuilder, c: Placement, g: LayerGroup, tag: str, q_width: int, pair_flops: float, proj_out: int
) -> None:
    """The projections and the attention kernel over the KV cache; a windowed group reads the
    windowed pair and KV features."""
    model, tp, a = c.model, c.tp, ACT_BYTES
    pairs, kv = (K.PAIRS_WINDOW, K.KV_WINDOW) if g.window else (K.PAIRS_FULL, K.KV_FULL)
    kvb = model.kv_bytes_per_token_layer(tp)
    _projections(bld, c, g, tag, proj_out)
    bld.add_kernel(
        f"{tag}.attention",
        g.count,
        c.attn,
        1,
        flops={pairs: pair_flops / tp, kv: kvb * dequant_flops_per_kv_byte(model, c.hw)},
        nbytes={kv: kvb, T: kvb + 2 * a * q_width / tp},
    )


def emit_gqa_attention(bld: OpBuilder, c: Placement, g: LayerGroup, tag: str) -> None:
    """Grouped-query (or multi-head) attention, full or sliding-window: 4·H·d FLOPs per query-key pair
    (scores and values), projections out to Q, O and the K, V heads."""
    m = c.model
    q_width = m.num_heads * m.head_dim
    pair_flops = 4.0 * m.num_heads * m.head_dim
    proj_out = 2 * q_width + 2 * m.num_kv_heads * m.head_dim
    _attention(bld, c, g, tag, q_width, pair_flops, proj_out)


def mla_pair_flops(model: ModelArch) -> tuple[float, float]:
    """FLOPs per query-key pair of MLA attention, (absorbed, non-absorbed), over all heads.

    Absorbed (decode): scores and values over the latent of rank r plus the rope key,
    2·H·(r + rope) + 2·H·r. Non-absorbed (prefill): per-head scores over nope + rope dimensions
    and values over v, 2·H·(nope + rope) + 2·H·v. DeepSeek-V3 (H 128, r 512, rope 64, nope 128,
    v 128): 278,528 against 81,920, 3.4x."""
    mla, heads = model.mla, model.num_heads
    absorbed = 2.0 * heads * (2 * mla.kv_lora_rank + mla.qk_rope_head_dim)
    expanded = 2.0 * heads * (mla.qk_nope_head_dim + mla.qk_rope_head_dim) + 2.0 * heads * mla.v_head_dim
    return absorbed, expanded


def emit_mla_attention(bld: OpBuilder, c: Placement, g: LayerGroup, tag: str) -> None:
    """Multi-head latent attention: decoding sequences in the absorbed form, prefilling ones in the
    non-absorbed form (`mla_pair_flops`). A prefilling sequence's prior context is read as latent
    and up-projected (2·r·H·(nope + v) FLOPs a token), and the per-head K and V it becomes are
    written and read once (2·H·(nope + rope + v) activations a token)."""
    model, tp, a = c.model, c.tp, ACT_BYTES
    mla, heads = model.mla, model.num_heads
    absorbed, expanded = mla_pair_flops(model)
    q_width = heads * (mla.kv_lora_rank + mla.qk_rope_head_dim)
    proj_out = heads * (mla.qk_nope_head_dim + mla.qk_rope_head_dim + mla.v_head_dim)
    kvb = model.kv_bytes_per_token_layer(tp)
    up_flops = 2.0 * mla.kv_lora_rank * heads * (mla.qk_nope_head_dim + mla.v_head_dim)
    _projections(bld, c, g, tag, proj_out)
    bld.add_kernel(
        f"{tag}.attention",
        g.count,
        c.attn,
        1,
        flops={K.PAIRS_FULL: absorbed / tp, K.PAIRS_PREFILL: (expanded - absorbed) / tp,
               K.CTX_PREFILL: up_flops / tp, K.KV_FULL: kvb * dequant_flops_per_kv_byte(model, c.hw)},
        nbytes={K.KV_FULL: kvb, T: kvb + 2 * a * q_width / tp, K.CTX_PREFILL: 2 * a * proj_out / tp},
    )


def emit_sparse_mla_attention(bld: OpBuilder, c: Placement, g: LayerGroup, tag: str) -> None:
    """MLA with DeepSeek sparse attention: each query attends to at most `topk` selected tokens, in the
    absorbed (MQA) form for prefill and decode alike, the form DSA's kernels share each selected entry
    across the heads in (DeepSeek-V3.2-Exp technical report, §2.1); the table's capped features (its
    window is the top-k) count those pairs and KV reads. The lightning indexer then scores every prior
    token at 2 x index_heads x index_head_dim FLOPs a pair in fp8 and reads every cached index key."""
    model, tp, a = c.model, c.tp, ACT_BYTES
    mla, heads, sp = model.mla, model.num_heads, model.sparse
    absorbed, _ = mla_pair_flops(model)
    q_width = heads * (mla.kv_lora_rank + mla.qk_rope_head_dim)
    proj_out = heads * (mla.qk_nope_head_dim + mla.qk_rope_head_dim + mla.v_head_dim)
    latent = model.kv_bytes_per_token_layer(tp) - sp.index_key_bytes
    _projections(bld, c, g, tag, proj_out)
    bld.add_kernel(
        f"{tag}.attention",
        g.count,
        c.attn,
        1,
        flops={K.PAIRS_WINDOW: absorbed / tp, K.KV_WINDOW: latent * dequant_flops_per_kv_byte(model, c.hw)},
        nbytes={K.KV_WINDOW: latent, T: latent + 2 * a * q_width / tp},
    )
    bld.add_kernel(
        f"{tag}.indexer",
        g.count,
        kernel_legs(c.hw, "gemm", "fp8", c.plan.kv_bandwidth_bytes_per_s),
        1,
        flops={K.PAIRS_FULL: 2.0 * sp.index_heads * sp.index_head_dim / tp},
        nbytes={
            K.KV_FULL: sp.index_key_bytes,
            T: sp.index_key_bytes + a * sp.index_heads * sp.index_head_dim / tp,
        },
    )


def emit_linear_attention(bld: OpBuilder, c: Placement, g: LayerGroup, tag: str) -> None:
    """A linear-attention layer (lightning or gated delta rule): its projections, and the recurrence,
    which reads and writes each sequence's constant-size state once a step and costs
    `flops_per_state_element` x dk x dv FLOPs per value head and token, whatever the context."""
    model, tp, a, h = c.model, c.tp, ACT_BYTES, c.h
    lin = model.linear
    p = model.linear_params()
    width = 2 * lin.key_heads * lin.key_head_dim + 2 * lin.value_heads * lin.value_head_dim
    bld.add_kernel(
        f"{tag}.linear_proj",
        g.count,
        c.gemm,
        2,
        flops={T: 2.0 * p / tp},
        nbytes={K.ONE: p * c.w / tp, T: a * (2 * h + width / tp)},
    )
    state = lin.flops_per_state_element * lin.value_heads * lin.key_head_dim * lin.value_head_dim
    bld.add_kernel(
        f"{tag}.recurrence",
        g.count,
        c.attn,
        1,
        flops={T: state / tp},
        nbytes={SEQ: 2 * model.linear_state_bytes_per_layer() / tp, T: 2 * a * width / tp},
    )


def emit_ssm(bld: OpBuilder, c: Placement, g: LayerGroup, tag: str) -> None:
    """A selective-scan SSM layer: its projections, and the scan, which reads and writes each
    sequence's constant-size state once per step."""
    model, tp, a, h = c.model, c.tp, ACT_BYTES, c.h
    s = model.ssm
    d_inner = s.expand * h
    p = model.ssm_params()
    bld.add_kernel(
        f"{tag}.ssm_proj",
        g.count,
        c.gemm,
        2,
        flops={T: 2.0 * p / tp},
        nbytes={K.ONE: p * c.w / tp, T: a * (2 * h + 3 * d_inner / tp)},
    )
    bld.add_kernel(
        f"{tag}.ssm_scan",
        g.count,
        c.attn,
        1,
        flops={T: SSM_SCAN_FLOPS_PER_STATE * d_inner * s.d_state / tp},
        nbytes={SEQ: 2 * model.ssm_state_bytes_per_layer() / tp, T: 3 * a * d_inner / tp},
    )


def emit_kv_spill(bld: OpBuilder, c: Placement, g: LayerGroup, tag: str) -> None:
    """The batch's KV past what its tier holds, read from the spill tier every step that reads it.
    The attention kernel already counts every KV byte at the KV tier's rate, so this operator adds the
    difference: each spilled token's KV bytes of the layer (the index keys only, under sparse
    attention, which reads just its top-k of the latent) x (1 / spill bandwidth - 1 / KV bandwidth),
    over the device's memory efficiency. Llama-3.1-8B spilling from an H200's HBM (4.8 TB/s) to host
    DRAM (63 GB/s), x 0.85: 32 layers x 4,096 B a spilled token, 2.42 ms a step per 1,000 spilled
    tokens. A spill tier at least as fast as the KV tier costs nothing extra."""
    model, plan = c.model, c.plan
    slow, fast = plan.kv_spill_bandwidth_bytes_per_s, plan.kv_bandwidth_bytes_per_s
    if slow >= fast:
        return
    per_token = model.sparse.index_key_bytes if model.sparse else model.kv_bytes_per_token_layer(c.tp)
    legs = kernel_legs(c.hw, "memory", bw=1.0 / (1.0 / slow - 1.0 / fast))
    bld.add_kernel(f"{tag}.kv_spill", g.count, legs, 1, nbytes={K.KV_SPILL: per_token})


def emit_norms(bld: OpBuilder, c: Placement, g: LayerGroup, tag: str) -> None:
    """The two norms of a layer (and the residual adds fused into them): memory-bound passes over
    the activations."""
    bld.add_kernel(f"{tag}.norms", g.count, c.mem, 2, nbytes={T: 4 * ACT_BYTES * c.h})


def emit_dense_ffn(bld: OpBuilder, c: Placement, g: LayerGroup, tag: str) -> None:
    """A dense gated FFN (gate-up and down, two kernels), split over tp; data-parallel attention
    ranks each run their own copy on their own tokens, as SGLang runs DeepSeek's dense layers
    (`--moe-dense-tp-size 1`: lm-sys blog 2025-05-05-large-scale-ep.md, 'Dense FFNs')."""
    tp, a, h = c.tp, ACT_BYTES, c.h
    p = c.model.dense_ffn_params()
    bld.add_kernel(
        f"{tag}.ffn",
        g.count,
        c.gemm,
        2,
        flops={T: 2.0 * p / tp},
        nbytes={K.ONE: p * c.w / tp, T: a * (2 * h + 3 * c.model.intermediate_size / tp)},
    )


def emit_moe(bld: OpBuilder, c: Placement, g: LayerGroup, tag: str) -> None:
    """A mixture of experts: the router, the routed experts as grouped GEMMs (at the rate of their
    own dtype, derated by the device's `moe_gemm` efficiency; weights read for the experts the batch
    touches) and any shared experts. A device computes `pairs` token-expert pairs per token of the
    rank: its ep group's share of all attention ranks' routed tokens, the busiest group's under
    expert parallelism, each expert split moe_tp ways; it holds (E + redundant)/ep experts."""
    tp, a, h, w = c.tp, ACT_BYTES, c.h, c.w
    moe = c.model.moe
    pe = c.model.expert_params()
    ep, mtp = c.par.ep, c.par.moe_tp
    pairs = moe.active * c.par.attention_dp * c.par.imbalance / ep
    m = c.hw.efficiency.moe_gemm
    dtype = c.model.expert_dtype or c.model.weight_dtype
    expert = kernel_legs(c.hw, "gemm", dtype, c.plan.weights_bandwidth_bytes_per_s)
    grouped = replace(expert, rate_f=expert.rate_f * m, rate_b=expert.rate_b * m)
    bld.add_kernel(
        f"{tag}.router",
        g.count,
        c.gemm,
        1,
        flops={T: 2.0 * h * moe.experts},
        nbytes={K.ONE: h * moe.experts * w, T: a * h},
    )
    bld.add_kernel(
        f"{tag}.experts",
        g.count,
        grouped,
        2,
        flops={T: 2.0 * pe * pairs / mtp},
        nbytes={
            K.MOE_TOUCHED: pe * c.par.physical_experts(c.model) * c.model.expert_bytes_per_param / (ep * mtp),
            T: a * pairs * (2 * h + 3 * moe.expert_ffn / mtp),
        },
        shared=True,
    )
    if moe.shared_experts:
        ps = pe * moe.shared_experts
        bld.add_kernel(
            f"{tag}.shared_experts",
            g.count,
            c.gemm,
            2,
            flops={T: 2.0 * ps / tp},
            nbytes={K.ONE: ps * w / tp, T: a * (2 * h + 3 * moe.expert_ffn / tp)},
        )


def _required_link(c: Placement, need: str) -> Link:
    link = c.hw.link()
    if link is None:
        raise ConfigError(f"{need} needs hardware.scale_up (or scale_out); {c.hw.name} has neither")
    return link


def emit_tp_allreduce(bld: OpBuilder, c: Placement, g: LayerGroup, tag: str) -> None:
    """Tensor parallelism's all-reduces of the hidden state, after the mixer and after the FFN (one per
    layer without an FFN, or whose FFN exchanges its own way, `sim.cost.exchange`), costed on where
    the tp group sits (`sim.cost.collectives.all_reduce`: a ring sends 2·(tp-1)/tp of the message
    per device inside a scale-up domain, and a group wider than its domain adds a scale-out leg)."""
    tp = c.tp
    _required_link(c, f"tp ({tp}) > 1")
    per_layer = 2 if g.ffn != "none" and not spreads_ffn(c, g) else 1
    legs = all_reduce(c.hw, tp, where=f"tp ({tp})")
    add_collective(bld, c.hw, f"{tag}.allreduce", g.count * per_layer, legs, {T: c.h * ACT_BYTES})


def emit_layer_group(bld: OpBuilder, c: Placement, g: LayerGroup) -> None:
    """The operators of `g.count` like layers: token mixer, norms, channel mixer, all-reduces."""
    tag = f"L{'w' if g.window else ''}{g.mixer}/{g.ffn}"
    if g.mixer == "ssm":
        emit_ssm(bld, c, g, tag)
    elif g.mixer == "linear":
        emit_linear_attention(bld, c, g, tag)
    elif c.model.sparse is not None:
        emit_sparse_mla_attention(bld, c, g, tag)
    elif c.model.mla is not None:
        emit_mla_attention(bld, c, g, tag)
    else:
        emit_gqa_attention(bld, c, g, tag)
    if g.mixer == "attention" and not g.window and np.isfinite(c.plan.spill_from_tokens):
        emit_kv_spill(bld, c, g, tag)
    emit_norms(bld, c, g, tag)
    if g.ffn == "dense":
        emit_dense_ffn(bld, c, g, tag)
    elif g.ffn == "moe":
        emit_moe(bld, c, g, tag)
    if c.tp > 1:
        emit_tp_allreduce(bld, c, g, tag)
    if spreads_ffn(c, g):
        emit_ffn_exchange(bld, c, g, tag)


def emit_embedding(bld: OpBuilder, c: Placement) -> None:
    """The token embedding lookup: one row of weights read and one activation written per token."""
    bld.add_kernel("embed", 1, c.mem, 1, nbytes={T: c.h * (c.w + ACT_BYTES)})


def emit_lm_head(bld: OpBuilder, c: Placement) -> None:
    """The LM head, on the sampled rows only: hidden -> vocabulary logits (fp32), split over tp."""
    tp, h, w, vocab = c.tp, c.h, c.w, c.model.vocab_size
    bld.add_kernel(
        "lm_head",
        1,
        c.gemm,
        1,
        flops={S: 2.0 * h * vocab / tp},
        nbytes={K.ONE: h * vocab * w / tp, S: ACT_BYTES * h + 4.0 * vocab / tp},
    )


def emit_pp_send(bld: OpBuilder, c: Placement) -> None:
    """The hidden state handed from each pipeline stage to the next: one hop each, inside a scale-up
    domain or, where consecutive stages sit in different domains, over the scale-out network; and
    the sampled tokens' way back from the last stage to the first (its latency)."""
    pp = c.par.pp
    _required_link(c, f"pp ({pp}) > 1")
    where = f"pp ({pp})"
    across = boundaries_across(c.hw.scale_up, pp, c.par.devices // pp)
    for crossing, hops in ((False, pp - 1 - across), (True, across)):
        if hops:
            leg = send(c.hw, crossing, where)
            add_collective(bld, c.hw, "pp_send", hops, (leg,), {T: c.h * ACT_BYTES})
    domain = c.hw.scale_up.domain if c.hw.scale_up else None
    last_stage = (pp - 1) * (c.par.devices // pp)
    back = send(c.hw, domain is not None and last_stage >= domain, where)
    add_collective(bld, c.hw, "pp_return", 1, (replace(back, bandwidth_bytes_per_s=np.inf),), {})


def emit_step_overhead(bld: OpBuilder, c: Placement) -> None:
    """Framework time every step pays whatever its size (scheduling, launch gaps), and once more per
    sequence it runs (inputs, sampling, detokenising and streaming each request's token)."""
    eff = c.hw.efficiency
    bld.add("step_overhead", 1, overhead_only(eff.step_overhead_s), per_seq_s=eff.seq_overhead_s)


def build_ops(
    model: ModelArch, hw: Accelerator, par: Parallelism, plan: MemoryPlan | None = None
) -> OpTable:
    """The operator table for one scheduler's batch of `model` on a replica of `hw` devices split as
    `par` says (per-device quantities), its bytes on the tiers the replica's memory `plan` places
    them on (all on the main tier without one); the batch's KV spills past its scheduler's share of
    the KV tier (`MemoryPlan.share` over `par.engines`)."""
    check_parallelism(model, par)
    plan = plan or memory_plan(model, hw, par)
    c = Placement.of(model, hw, par, plan)
    bld = OpBuilder()
    for g in model.layer_groups():
        emit_layer_group(bld, c, g)
    emit_embedding(bld, c)
    emit_lm_head(bld, c)
    if par.cp > 1:
        shard_sequences(bld, par.cp)
        fold_ring_exchange(bld, c)
    if par.pp > 1:
        emit_pp_send(bld, c)
    if hw.efficiency.step_overhead_s > 0 or hw.efficiency.seq_overhead_s > 0:
        emit_step_overhead(bld, c)
    window = model.window.size if model.window else (model.sparse.topk if model.sparse else 0)
    spill_from = plan.share(par.engines).spill_from_tokens
    return bld.build(window, moe_ratio(c) if model.moe else 0.0, spill_from)
