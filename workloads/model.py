"""What a model is: the architecture fields that decide FLOPs, weight bytes and KV bytes.

A model is a stack of layers; each layer has a token mixer (full attention, windowed attention, or
an SSM with constant state) and a channel mixer (dense SwiGLU FFN, mixture of experts, or none).
Layers with the same pair behave the same, so the cost model works on `layer_groups()`: a few
groups with a count each, not one entry per layer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, Self

from pydantic import Field, model_validator

from hardware.base import Frozen
from hardware.spec import BYTES_PER_ELEMENT, DType


class MLA(Frozen):
    """Multi-head latent attention (DeepSeek-V2/V3): the cache holds a compressed latent per token."""

    kv_lora_rank: int = Field(gt=0)
    qk_rope_head_dim: int = Field(gt=0)
    qk_nope_head_dim: int = Field(gt=0)
    v_head_dim: int = Field(gt=0)
    q_lora_rank: int | None = Field(default=None, gt=0)


class Window(Frozen):
    """Local attention on some layers. `sliding`: each token sees the last `size` tokens; `chunked`
    (Llama 4): tokens see their own aligned chunk. Both hold at most `size` tokens of KV per layer.
    Layer i is global (full attention) when i % global_every == global_offset."""

    size: int = Field(gt=0)
    kind: Literal["sliding", "chunked"] = "sliding"
    global_every: int = Field(ge=1)
    global_offset: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _offset_in_period(self) -> Self:
        if self.global_offset >= self.global_every:
            raise ValueError(
                f"window.global_offset ({self.global_offset}) must be below "
                f"global_every ({self.global_every})"
            )
        return self


class MoE(Frozen):
    """Mixture of experts. Layer i is MoE when i >= first_dense and (i - first_dense) % period == offset."""

    experts: int = Field(gt=0)
    active: int = Field(gt=0)
    expert_ffn: int = Field(gt=0)
    shared_experts: int = Field(default=0, ge=0)
    first_dense: int = Field(default=0, ge=0)
    period: int = Field(default=1, ge=1)
    offset: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _active_le_total(self) -> Self:
        if self.active > self.experts:
            raise ValueError(f"moe.active ({self.active}) exceeds moe.experts ({self.experts})")
        return self


class SSM(Frozen):
    """Mamba-style state-space layers: constant recurrent state per sequence, linear time in tokens.
    Layers are SSM except those with i % attention_every == attention_offset (hybrids like Jamba);
    `attention_every: null` means every layer is SSM."""

    kind: Literal["mamba1", "mamba2"] = "mamba2"
    d_state: int = Field(gt=0)
    d_conv: int = Field(default=4, gt=0)
    expand: int = Field(default=2, gt=0)
    head_dim: int = Field(default=64, gt=0)
    n_groups: int = Field(default=1, gt=0)
    dt_rank: int | None = Field(default=None, gt=0)
    attention_every: int | None = Field(default=None, ge=1)
    attention_offset: int = Field(default=0, ge=0)
    state_dtype: DType = "bf16"


class RopeScaling(Frozen):
    """A context extension applied when serving (YaRN, linear position interpolation, NTK-aware
    dynamic scaling, Llama 3's frequency-dependent scaling): rotary positions stretched by `factor`
    over `original_context_tokens` (default: the model's `max_context_tokens`, the context it ships
    with). The extended limit is `original_context_tokens x factor`; the model's own limit, where
    larger, still holds. Costs nothing per token (only the rotation frequencies change), so it moves
    the context limit and nothing else."""

    kind: Literal["yarn", "linear", "dynamic", "llama3", "longrope"] = "yarn"
    factor: float = Field(gt=1)
    original_context_tokens: int | None = Field(default=None, gt=0)


class SparseAttention(Frozen):
    """DeepSeek Sparse Attention (DSA, DeepSeek-V3.2-Exp): a lightning indexer scores every prior token
    with `index_heads` small heads of `index_head_dim` (in fp8), and each query attends only to the
    `topk` tokens it selects. Per query the main attention then reads min(context, topk) keys, and the
    indexer makes a light pass over all of them (O(n^2) over a prompt, 2 x index_heads x index_head_dim
    FLOPs a query-key pair). Every token stays cached: its latent and its index key (index_head_dim
    fp8 bytes and one fp32 scale per 128). deepseek-ai/DeepSeek-V3.2-Exp inference/model.py
    (`Indexer`, `ModelArgs.index_n_heads`, `index_head_dim`, `index_topk`)."""

    topk: int = Field(gt=0)
    index_heads: int = Field(gt=0)
    index_head_dim: int = Field(gt=0)

    @property
    def index_key_bytes(self) -> float:
        """Bytes of one token's index key in one layer: fp8 elements and an fp32 scale per 128."""
        return self.index_head_dim * 1.0 + 4.0 * -(-self.index_head_dim // 128)


class LinearAttention(Frozen):
    """Linear-attention token mixers that hold a constant-size state per sequence instead of a KV
    cache: `lightning` (MiniMax-01/M1: linear attention with a per-head decay) or `gated_deltanet`
    (Qwen3-Next: the gated delta rule with a short causal convolution; Yang et al. 2024,
    arXiv:2412.06464). Layer i is full softmax attention when i % full_every == full_offset, linear
    otherwise. The state per value head is key_head_dim x value_head_dim in `state_dtype`.

    Per token and value head a step costs, counted from the recurrences: lightning S = λS + kᵀv and
    o = qS, 5 x dk x dv FLOPs; gated delta rule S = αS(I - βkkᵀ) + βvkᵀ and o = Sq, 9 x dk x dv
    (S·k, two rank-1 updates, the decay, the read-out)."""

    kind: Literal["lightning", "gated_deltanet"]
    key_heads: int = Field(gt=0)
    value_heads: int = Field(gt=0)
    key_head_dim: int = Field(gt=0)
    value_head_dim: int = Field(gt=0)
    conv_kernel: int = Field(default=0, ge=0)
    full_every: int = Field(ge=1)
    full_offset: int = Field(default=0, ge=0)
    state_dtype: DType = "fp32"

    @property
    def flops_per_state_element(self) -> float:
        return 9.0 if self.kind == "gated_deltanet" else 5.0


@dataclass(frozen=True)
class LayerGroup:
    """Layers that cost the same: `mixer` in {attention, ssm, linear}, `window` 0 for full attention."""

    mixer: Literal["attention", "ssm", "linear"]
    window: int
    ffn: Literal["dense", "moe", "none"]
    count: int


class ModelArch(Frozen):
    name: str
    num_layers: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    num_heads: int = Field(default=0, ge=0)
    num_kv_heads: int = Field(default=0, ge=0)
    head_dim: int = Field(default=0, ge=0)
    intermediate_size: int = Field(default=0, ge=0)
    vocab_size: int = Field(gt=0)
    tie_embeddings: bool = False
    max_context_tokens: int | None = Field(default=None, gt=0)
    rope_scaling: RopeScaling | None = None
    mla: MLA | None = None
    window: Window | None = None
    moe: MoE | None = None
    ssm: SSM | None = None
    sparse: SparseAttention | None = None
    linear: LinearAttention | None = None
    weight_dtype: DType = "bf16"
    expert_dtype: DType | None = Field(
        default=None, description="routed experts' weight dtype where the checkpoint quantises them apart "
        "(gpt-oss ships MXFP4 experts, bf16 elsewhere); None: weight_dtype")
    kv_dtype: DType = "bf16"
    params_total: float | None = Field(default=None, gt=0, description="published count, for comparison")
    source: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        has_attention = self.ssm is None or self.ssm.attention_every is not None
        if has_attention:
            for field in ("num_heads", "num_kv_heads", "head_dim"):
                if getattr(self, field) <= 0:
                    raise ValueError(f"{field} must be positive for a model with attention layers")
            if self.num_heads % self.num_kv_heads:
                raise ValueError(
                    f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})"
                )
        if self.sparse is not None and (self.window is not None or self.mla is None):
            raise ValueError("sparse (DeepSeek sparse attention) is modelled on MLA models without a window")
        if self.linear is not None and self.ssm is not None:
            raise ValueError("give linear or ssm token mixers, not both")
        needs_dense = any(g.ffn == "dense" for g in self.layer_groups())
        if needs_dense and self.intermediate_size <= 0:
            raise ValueError("intermediate_size must be positive: some layers have a dense FFN")
        return self

    @property
    def context_limit_tokens(self) -> int | None:
        """The most tokens (prompt + output) one request may hold: the trained context
        (`max_context_tokens`), extended by `rope_scaling` when set; None when neither is known."""
        limit = self.max_context_tokens
        rope = self.rope_scaling
        if rope is None:
            return limit
        base = rope.original_context_tokens or limit
        if base is None:
            return None
        extended = int(base * rope.factor)
        return max(extended, limit or 0)

    def with_dtypes(self, weight_dtype: str | None = None, kv_dtype: str | None = None) -> ModelArch:
        update = {k: v for k, v in (("weight_dtype", weight_dtype), ("kv_dtype", kv_dtype)) if v}
        return self.model_validate({**self.model_dump(), **update})

    # ---- layer structure -------------------------------------------------------------------------
    def _mixer(self, i: int) -> tuple[str, int]:
        lin = self.linear
        if lin is not None and i % lin.full_every != lin.full_offset:
            return "linear", 0
        if self.ssm is not None:
            every = self.ssm.attention_every
            if every is None or i % every != self.ssm.attention_offset:
                return "ssm", 0
        if self.window is not None and i % self.window.global_every != self.window.global_offset:
            return "attention", self.window.size
        return "attention", 0

    def _ffn(self, i: int) -> str:
        moe = self.moe
        if moe is not None and i >= moe.first_dense and (i - moe.first_dense) % moe.period == moe.offset:
            return "moe"
        if self.intermediate_size > 0:
            return "dense"
        return "none"

    def layer_groups(self) -> tuple[LayerGroup, ...]:
        return _layer_groups(self)

    # ---- bytes -------------------------------------------------------------------------------------
    @property
    def weight_bytes_per_param(self) -> float:
        return BYTES_PER_ELEMENT[self.weight_dtype]

    @property
    def expert_bytes_per_param(self) -> float:
        return BYTES_PER_ELEMENT[self.expert_dtype or self.weight_dtype]

    @property
    def kv_bytes_per_element(self) -> float:
        return BYTES_PER_ELEMENT[self.kv_dtype]

    def kv_bytes_per_token_layer(self, tp: int = 1) -> float:
        """KV bytes one attention layer stores per token on one device of a tp group. GQA heads are
        split over tp but a head is replicated when kv_heads < tp; the MLA latent is replicated."""
        if self.mla is not None:
            latent = (self.mla.kv_lora_rank + self.mla.qk_rope_head_dim) * self.kv_bytes_per_element
            return latent + (self.sparse.index_key_bytes if self.sparse else 0.0)
        heads_per_device = -(-self.num_kv_heads // tp)
        return 2 * heads_per_device * self.head_dim * self.kv_bytes_per_element

    def _attention_layers(self, windowed: bool) -> int:
        return sum(
            g.count for g in self.layer_groups() if g.mixer == "attention" and (g.window > 0) == windowed
        )

    @property
    def kv_bytes_per_token(self) -> float:
        """Bytes per token of context in the layers whose KV grows without bound (full attention).
        Windowed layers are bounded by `window_kv_bytes_per_token` × window; SSM layers by state."""
        return self._attention_layers(False) * self.kv_bytes_per_token_layer()

    @property
    def window_kv_bytes_per_token(self) -> float:
        return self._attention_layers(True) * self.kv_bytes_per_token_layer()

    def ssm_state_bytes_per_layer(self) -> float:
        if self.ssm is None:
            return 0.0
        s = self.ssm
        d_inner = s.expand * self.hidden_size
        if s.kind == "mamba1":
            elements = d_inner * (s.d_state + s.d_conv)
        else:
            conv_dim = d_inner + 2 * s.n_groups * s.d_state
            elements = d_inner * s.d_state + conv_dim * s.d_conv
        return elements * BYTES_PER_ELEMENT[s.state_dtype]

    def linear_state_bytes_per_layer(self) -> float:
        """A linear-attention layer's state: a dk x dv matrix per value head, and the last
        conv_kernel - 1 inputs of its causal convolution (bf16) over q, k and v."""
        lin = self.linear
        if lin is None:
            return 0.0
        state = lin.value_heads * lin.key_head_dim * lin.value_head_dim * BYTES_PER_ELEMENT[lin.state_dtype]
        channels = 2 * lin.key_heads * lin.key_head_dim + lin.value_heads * lin.value_head_dim
        return state + channels * max(lin.conv_kernel - 1, 0) * BYTES_PER_ELEMENT["bf16"]

    @property
    def state_bytes_per_sequence(self) -> float:
        ssm_layers = sum(g.count for g in self.layer_groups() if g.mixer == "ssm")
        linear_layers = sum(g.count for g in self.layer_groups() if g.mixer == "linear")
        ssm_bytes = ssm_layers * self.ssm_state_bytes_per_layer()
        return ssm_bytes + linear_layers * self.linear_state_bytes_per_layer()

    def kv_bytes(self, context_tokens: float) -> float:
        """All cache bytes one sequence of `context_tokens` holds (whole model, tp=1)."""
        window = self.window.size if self.window else 0
        return (
            self.kv_bytes_per_token * context_tokens
            + self.window_kv_bytes_per_token * min(context_tokens, window)
            + self.state_bytes_per_sequence
        )

    # ---- parameters (per layer kind; the cost model turns them into FLOPs and bytes) --------------
    def attention_params(self) -> float:
        h = self.hidden_size
        if self.mla is not None:
            m = self.mla
            qk = m.qk_nope_head_dim + m.qk_rope_head_dim
            q = (
                (h * m.q_lora_rank + m.q_lora_rank * self.num_heads * qk)
                if m.q_lora_rank
                else h * self.num_heads * qk
            )
            kv_a = h * (m.kv_lora_rank + m.qk_rope_head_dim)
            kv_b = m.kv_lora_rank * self.num_heads * (m.qk_nope_head_dim + m.v_head_dim)
            o = self.num_heads * m.v_head_dim * h
            return float(q + kv_a + kv_b + o + self.indexer_params())
        q = self.num_heads * self.head_dim
        k = self.num_kv_heads * self.head_dim
        return float(h * (q + 2 * k) + q * h)

    def indexer_params(self) -> float:
        """The DSA indexer's projections: queries from the q latent, one key, and a weight per head."""
        sp = self.sparse
        if sp is None:
            return 0.0
        q_in = self.mla.q_lora_rank or self.hidden_size
        queries = q_in * sp.index_heads * sp.index_head_dim
        return float(queries + self.hidden_size * (sp.index_head_dim + sp.index_heads))

    def linear_params(self) -> float:
        """A linear-attention layer's projections: q, k, v (and the gated delta rule's output gate z,
        its β and α, and the causal convolution), and the output."""
        lin = self.linear
        if lin is None:
            return 0.0
        h, dk, dv = self.hidden_size, lin.key_head_dim, lin.value_head_dim
        qkv = 2 * lin.key_heads * dk + lin.value_heads * dv
        out = lin.value_heads * dv * h
        gate = h * lin.value_heads * dv
        if lin.kind == "lightning":
            return float(h * qkv + gate + out)
        return float(h * qkv + gate + h * 2 * lin.value_heads + qkv * lin.conv_kernel + out)

    def ssm_params(self) -> float:
        if self.ssm is None:
            return 0.0
        s, h = self.ssm, self.hidden_size
        d_inner = s.expand * h
        if s.kind == "mamba1":
            dt_rank = s.dt_rank or -(-h // 16)
            return float(
                h * 2 * d_inner + d_inner * (dt_rank + 2 * s.d_state) + dt_rank * d_inner + d_inner * h
            )
        n_heads = d_inner // s.head_dim
        in_proj = h * (2 * d_inner + 2 * s.n_groups * s.d_state + n_heads)
        return float(in_proj + d_inner * h)

    def dense_ffn_params(self) -> float:
        return 3.0 * self.hidden_size * self.intermediate_size

    def expert_params(self) -> float:
        return 3.0 * self.hidden_size * self.moe.expert_ffn if self.moe else 0.0

    def routed_expert_params(self) -> float:
        """Parameters of the routed experts over all MoE layers (the part `expert_dtype` covers)."""
        if self.moe is None:
            return 0.0
        layers = sum(g.count for g in self.layer_groups() if g.ffn == "moe")
        return layers * self.expert_params() * self.moe.experts

    def params(self) -> float:
        """Total parameter count from the architecture (embeddings + layers + LM head)."""
        total = self.vocab_size * self.hidden_size * (1 if self.tie_embeddings else 2)
        mixers = {"attention": self.attention_params, "ssm": self.ssm_params, "linear": self.linear_params}
        for g in self.layer_groups():
            mixer = mixers[g.mixer]()
            if g.ffn == "dense":
                ffn = self.dense_ffn_params()
            elif g.ffn == "moe":
                ffn = self.expert_params() * (self.moe.experts + self.moe.shared_experts)
                ffn += self.hidden_size * self.moe.experts
            else:
                ffn = 0.0
            total += g.count * (mixer + ffn)
        return float(total)

    def weight_bytes(self) -> float:
        experts = self.routed_expert_params()
        return (self.params() - experts) * self.weight_bytes_per_param + experts * self.expert_bytes_per_param


@lru_cache(maxsize=64)
def _layer_groups(model: ModelArch) -> tuple[LayerGroup, ...]:
    """Layers grouped by (mixer, window, FFN). Memoised per (frozen) model: every memory plan and
    cost table asks for them, and counting a deep model's layers is most of a memory plan's cost."""
    counts = Counter((*model._mixer(i), model._ffn(i)) for i in range(model.num_layers))
    return tuple(LayerGroup(m, w, f, n) for (m, w, f), n in sorted(counts.items()))
