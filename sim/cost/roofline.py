"""Step cost of one forward pass of a batch on one replica: a per-operator roofline.

For each operator the model contributes FLOPs and bytes as linear functions of a few batch features
(see sim/cost/_kernels.py); the device contributes rates (peak x efficiency) and a fixed overhead. An
operator's time is max(FLOPs / rate, bytes / bandwidth) + overhead, summed over operators (per
operator max, not max of sums), plus tensor-parallel all-reduces over the scale-up link. Prefill,
chunked prefill and decode are the same function with different (new tokens, prior context) pairs.

Assumptions worth knowing:
- activations are bf16; attention runs at the bf16 rate; GEMMs run at the weight dtype's rate when
  the device has that unit (fp8, int8, fp4) and at bf16 otherwise (weight-only quantisation);
- MLA attention is costed in its absorbed form (scores over the latent, 2·H·(2·r + rope) FLOPs per
  query-key pair), the way serving engines run it in decode;
- chunked attention (Llama 4) is costed as a sliding window of the chunk size: an upper bound;
- pipeline stages run one batch back to back (no micro-batch overlap): step time is the sum of
  stages plus a point-to-point hop between stages.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd

from hardware.spec import BYTES_PER_ELEMENT, MAX_CURVE_KNOTS, Accelerator, Curve
from sim.cost import _kernels as K
from workloads.model import ModelArch

ACT_BYTES = BYTES_PER_ELEMENT["bf16"]
SSM_SCAN_FLOPS_PER_STATE = 6.0  # multiply-adds per state element per token in a selective scan (approx.)


class ConfigError(ValueError):
    """A configuration that cannot run, with a message naming the field."""


@dataclass(frozen=True)
class Parallelism:
    tp: int = 1
    pp: int = 1

    @property
    def devices(self) -> int:
        return self.tp * self.pp


def check_parallelism(model: ModelArch, par: Parallelism) -> None:
    if par.tp < 1 or par.pp < 1:
        raise ConfigError(f"tp ({par.tp}) and pp ({par.pp}) must be at least 1")
    if model.num_heads and model.num_heads % par.tp:
        raise ConfigError(f"tp ({par.tp}) must divide num_heads ({model.num_heads}) of {model.name}")
    if par.pp > model.num_layers:
        raise ConfigError(f"pp ({par.pp}) exceeds num_layers ({model.num_layers}) of {model.name}")


@dataclass(frozen=True)
class OpTable:
    """Operators of one step: names, FLOP and byte coefficients over the batch features, and per
    operator [rate_f, rate_b, overhead_s, count, is_link]."""

    names: tuple[str, ...]
    flops_coef: np.ndarray
    bytes_coef: np.ndarray
    ops: np.ndarray
    window: int
    moe_ratio: float


def curve_columns(curve: Curve | None) -> np.ndarray:
    """A curve as it sits in an `ops` row: [knots, log10 sizes (padded), efficiencies (padded)]."""
    cols = np.zeros(K.CURVE_WIDTH)
    if curve is not None:
        n = len(curve.size)
        cols[0] = n
        cols[1 : 1 + n] = np.log10(curve.size)
        cols[1 + MAX_CURVE_KNOTS : 1 + MAX_CURVE_KNOTS + n] = curve.efficiency
    return cols


KernelKind = Literal["gemm", "attention", "memory", "link"]


@dataclass(frozen=True)
class KernelLegs:
    """How one kind of kernel runs on a device: rate of each roofline leg (peak x scalar efficiency,
    or the bare peak when a curve gives the fraction), the curves, and the fixed overhead per call."""

    rate_f: float
    curve_f: Curve | None
    rate_b: float
    curve_b: Curve | None
    overhead_s: float


def _leg(peak: float, scalar: float, curve: Curve | None) -> tuple[float, Curve | None]:
    return (peak, curve) if curve is not None else (peak * scalar, None)


def kernel_legs(hw: Accelerator, kind: KernelKind, dtype: str = "bf16") -> KernelLegs:
    """Rates and curves for a `kind` kernel whose weights (GEMM) are `dtype`. `link` has no compute leg
    and no op overhead (its latency is per hop, added by the caller)."""
    eff, cv = hw.efficiency, hw.efficiency.curves
    bw = hw.main_tier.bandwidth_bytes_per_s
    if kind == "link":
        link = hw.scale_up or hw.scale_out
        if link is None:
            raise ConfigError(f"{hw.name} has no scale_up or scale_out link")
        bw_link = link.bandwidth_bytes_per_s * eff.collective
        return KernelLegs(np.inf, None, *_leg(bw_link, eff.link, cv.link), 0.0)
    if kind == "gemm":
        peak = hw.peak_flops.for_dtype(dtype)
        curve = cv.gemm_fp8 if peak != hw.peak_flops.bf16 else cv.gemm
        return KernelLegs(
            *_leg(peak, eff.compute, curve), *_leg(bw, eff.memory, cv.memory), eff.op_overhead_s
        )
    if kind == "attention":
        return KernelLegs(
            *_leg(hw.peak_flops.bf16, eff.compute, cv.attention),
            *_leg(bw, eff.memory, cv.attention_memory),
            eff.op_overhead_s,
        )
    return KernelLegs(
        *_leg(hw.peak_flops.bf16, eff.compute, None), *_leg(bw, eff.memory, cv.memory), eff.op_overhead_s
    )


class _Builder:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.f: list[np.ndarray] = []
        self.b: list[np.ndarray] = []
        self.ops: list[np.ndarray] = []

    def add(
        self,
        name,
        count,
        rate_f,
        rate_b,
        overhead,
        flops=None,
        nbytes=None,
        link=False,
        calls=1.0,
        curve_f=None,
        curve_b=None,
    ):
        f, b = np.zeros(K.N_FEATURES), np.zeros(K.N_FEATURES)
        for idx, v in (flops or {}).items():
            f[idx] += v
        for idx, v in (nbytes or {}).items():
            b[idx] += v
        self.names.append(name)
        self.f.append(f)
        self.b.append(b)
        head = [rate_f, rate_b, overhead, float(count), 1.0 if link else 0.0, float(calls)]
        self.ops.append(np.concatenate([head, curve_columns(curve_f), curve_columns(curve_b)]))

    def add_kernel(self, name, count, legs: KernelLegs, calls, flops=None, nbytes=None):
        """An operator that runs as `calls` kernels (fused QKV + O, gate-up + down): the overhead is paid
        per call and curves are read at the work of one call."""
        self.add(
            name,
            count,
            legs.rate_f,
            legs.rate_b,
            legs.overhead_s * calls,
            flops,
            nbytes,
            calls=calls,
            curve_f=legs.curve_f,
            curve_b=legs.curve_b,
        )

    def build(self, window: int, moe_ratio: float) -> OpTable:
        return OpTable(
            tuple(self.names), np.array(self.f), np.array(self.b), np.array(self.ops), window, moe_ratio
        )


def build_ops(model: ModelArch, hw: Accelerator, par: Parallelism) -> OpTable:
    """The operator table for `model` on a replica of tp x pp `hw` devices (per-device quantities)."""
    check_parallelism(model, par)
    tp = par.tp
    gemm = kernel_legs(hw, "gemm", model.weight_dtype)
    attn = kernel_legs(hw, "attention")
    mem = kernel_legs(hw, "memory")
    w = model.weight_bytes_per_param
    a = ACT_BYTES
    h = model.hidden_size
    T, S, SEQ = K.TOKENS, K.SAMPLED, K.SEQS
    bld = _Builder()

    for g in model.layer_groups():
        tag = f"L{'w' if g.window else ''}{g.mixer}/{g.ffn}"
        pairs, kv = (K.PAIRS_WINDOW, K.KV_WINDOW) if g.window else (K.PAIRS_FULL, K.KV_FULL)
        if g.mixer == "attention":
            p = model.attention_params()
            if model.mla is not None:
                m = model.mla
                q_width = model.num_heads * (m.kv_lora_rank + m.qk_rope_head_dim)
                pair_flops = 2.0 * model.num_heads * (2 * m.kv_lora_rank + m.qk_rope_head_dim)
                proj_out = model.num_heads * (m.qk_nope_head_dim + m.qk_rope_head_dim + m.v_head_dim)
            else:
                q_width = model.num_heads * model.head_dim
                pair_flops = 4.0 * model.num_heads * model.head_dim
                proj_out = 2 * q_width + 2 * model.num_kv_heads * model.head_dim
            kvb = model.kv_bytes_per_token_layer(tp)
            bld.add_kernel(
                f"{tag}.attn_proj",
                g.count,
                gemm,
                2,
                flops={T: 2.0 * p / tp},
                nbytes={K.ONE: p * w / tp, T: a * (2 * h + proj_out / tp)},
            )
            bld.add_kernel(
                f"{tag}.attention",
                g.count,
                attn,
                1,
                flops={pairs: pair_flops / tp},
                nbytes={kv: kvb, T: kvb + 2 * a * q_width / tp},
            )
        else:
            s = model.ssm
            d_inner = s.expand * h
            p = model.ssm_params()
            bld.add_kernel(
                f"{tag}.ssm_proj",
                g.count,
                gemm,
                2,
                flops={T: 2.0 * p / tp},
                nbytes={K.ONE: p * w / tp, T: a * (2 * h + 3 * d_inner / tp)},
            )
            bld.add_kernel(
                f"{tag}.ssm_scan",
                g.count,
                attn,
                1,
                flops={T: SSM_SCAN_FLOPS_PER_STATE * d_inner * s.d_state / tp},
                nbytes={SEQ: 2 * model.ssm_state_bytes_per_layer() / tp, T: 3 * a * d_inner / tp},
            )
        bld.add_kernel(f"{tag}.norms", g.count, mem, 2, nbytes={T: 4 * a * h})
        if g.ffn == "dense":
            p = model.dense_ffn_params()
            bld.add_kernel(
                f"{tag}.ffn",
                g.count,
                gemm,
                2,
                flops={T: 2.0 * p / tp},
                nbytes={K.ONE: p * w / tp, T: a * (2 * h + 3 * model.intermediate_size / tp)},
            )
        elif g.ffn == "moe":
            moe = model.moe
            pe = model.expert_params()
            m = hw.efficiency.moe_gemm
            grouped = replace(gemm, rate_f=gemm.rate_f * m, rate_b=gemm.rate_b * m)
            bld.add_kernel(
                f"{tag}.router",
                g.count,
                gemm,
                1,
                flops={T: 2.0 * h * moe.experts},
                nbytes={K.ONE: h * moe.experts * w, T: a * h},
            )
            bld.add_kernel(
                f"{tag}.experts",
                g.count,
                grouped,
                2,
                flops={T: 2.0 * pe * moe.active / tp},
                nbytes={
                    K.MOE_TOUCHED: pe * moe.experts * w / tp,
                    T: a * moe.active * (2 * h + 3 * moe.expert_ffn / tp),
                },
            )
            if moe.shared_experts:
                ps = pe * moe.shared_experts
                bld.add_kernel(
                    f"{tag}.shared_experts",
                    g.count,
                    gemm,
                    2,
                    flops={T: 2.0 * ps / tp},
                    nbytes={K.ONE: ps * w / tp, T: a * (2 * h + 3 * moe.expert_ffn / tp)},
                )
        if tp > 1:
            link = hw.scale_up or hw.scale_out
            if link is None:
                raise ConfigError(
                    f"tp ({tp}) > 1 needs hardware.scale_up (or scale_out); {hw.name} has neither"
                )
            ring = 2.0 * (tp - 1) / tp
            per_layer = 2 if g.ffn != "none" else 1
            legs = kernel_legs(hw, "link")
            bld.add(
                f"{tag}.allreduce",
                g.count * per_layer,
                np.inf,
                legs.rate_b,
                link.allreduce_hops(tp) * link.latency_s,
                nbytes={T: ring * h * a},
                link=True,
                curve_b=legs.curve_b,
            )

    bld.add_kernel("embed", 1, mem, 1, nbytes={T: h * (w + a)})
    vocab = model.vocab_size
    bld.add_kernel(
        "lm_head",
        1,
        gemm,
        1,
        flops={S: 2.0 * h * vocab / tp},
        nbytes={K.ONE: h * vocab * w / tp, S: a * h + 4.0 * vocab / tp},
    )
    if par.pp > 1:
        link = hw.scale_up or hw.scale_out
        if link is None:
            raise ConfigError(
                f"pp ({par.pp}) > 1 needs hardware.scale_up (or scale_out); {hw.name} has neither"
            )
        legs = kernel_legs(hw, "link")
        bld.add(
            "pp_send",
            par.pp - 1,
            np.inf,
            legs.rate_b,
            link.latency_s,
            nbytes={T: h * a},
            link=True,
            curve_b=legs.curve_b,
        )
    if hw.efficiency.step_overhead_s > 0:
        # framework time every step pays whatever its size: scheduling, sampling, launch gaps
        bld.add("step_overhead", 1, np.inf, np.inf, hw.efficiency.step_overhead_s)
    window = model.window.size if model.window else 0
    moe_ratio = model.moe.active / model.moe.experts if model.moe else 0.0
    return bld.build(window, moe_ratio)


# ---- memory ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MemoryPlan:
    """Bytes on one device of a replica, and what the replica's KV pool holds.

    A sequence of T tokens holds `kv_bytes_per_token·T + window_kv_bytes_per_token·min(T, window)
    + state_bytes_per_seq` bytes across the replica (replicated KV heads counted on every device)."""

    devices: int
    capacity_bytes_per_device: float
    weights_bytes_per_device: float
    workspace_bytes_per_device: float
    kv_bytes_per_device: float
    kv_bytes_per_token: float
    window_kv_bytes_per_token: float
    window: int
    state_bytes_per_seq: float

    @property
    def fits(self) -> bool:
        return self.kv_bytes_per_device > 0

    @property
    def kv_pool_bytes(self) -> float:
        return max(self.kv_bytes_per_device, 0.0) * self.devices

    def seq_bytes(self, tokens: float | np.ndarray) -> float | np.ndarray:
        windowed = np.minimum(tokens, self.window) if self.window else 0.0
        return (
            self.kv_bytes_per_token * tokens
            + self.window_kv_bytes_per_token * windowed
            + self.state_bytes_per_seq
        )

    @property
    def kv_capacity_tokens(self) -> int:
        """Tokens of context the pool holds for one sequence (its longest possible context)."""
        pool = self.kv_pool_bytes - self.state_bytes_per_seq
        if pool <= 0:
            return 0
        if self.kv_bytes_per_token == 0:
            return 2**62 if self.window_kv_bytes_per_token * self.window <= pool else 0
        windowed = self.window_kv_bytes_per_token * self.window
        if self.window and pool >= windowed + self.kv_bytes_per_token * self.window:
            return int((pool - windowed) // self.kv_bytes_per_token)
        return int(pool // (self.kv_bytes_per_token + self.window_kv_bytes_per_token))

    def max_batch(self, context_tokens: int) -> int:
        per_seq = float(self.seq_bytes(context_tokens))
        return int(self.kv_pool_bytes // per_seq) if per_seq > 0 else 0


def memory_plan(
    model: ModelArch,
    hw: Accelerator,
    par: Parallelism,
    memory_fraction: float = 0.9,
    max_batched_tokens: int = 8192,
) -> MemoryPlan:
    """Place weights first, then a workspace (activations of the largest step), the rest is KV.

    `memory_fraction` is the share of the main tier the engine may use (vLLM's
    gpu_memory_utilization); the workspace is `max_batched_tokens` x (4·hidden + 2·FFN/tp) bf16
    activations, a peak-activation estimate for one step."""
    check_parallelism(model, par)
    tp = par.tp
    cap = hw.main_tier.capacity_bytes
    weights = model.weight_bytes() / par.devices
    ffn = max(model.intermediate_size, (model.moe.expert_ffn * model.moe.active) if model.moe else 0)
    workspace = max_batched_tokens * (4 * model.hidden_size + 2 * ffn / tp) * ACT_BYTES
    kv = cap * memory_fraction - weights - workspace
    full = sum(g.count for g in model.layer_groups() if g.mixer == "attention" and not g.window)
    win = sum(g.count for g in model.layer_groups() if g.mixer == "attention" and g.window)
    per_layer = model.kv_bytes_per_token_layer(tp) * tp
    return MemoryPlan(
        devices=par.devices,
        capacity_bytes_per_device=cap,
        weights_bytes_per_device=weights,
        workspace_bytes_per_device=workspace,
        kv_bytes_per_device=kv,
        kv_bytes_per_token=full * per_layer,
        window_kv_bytes_per_token=win * per_layer,
        window=model.window.size if model.window else 0,
        state_bytes_per_seq=model.state_bytes_per_sequence,
    )


# ---- the cost object the engine and the estimator call ---------------------------------------------
@dataclass(frozen=True)
class StepTime:
    total_s: float
    compute_bound_s: float
    memory_bound_s: float
    link_s: float

    @property
    def bound(self) -> Literal["compute", "memory"]:
        return "compute" if self.compute_bound_s >= self.memory_bound_s else "memory"


class CostModel:
    """Step times for one replica. `RooflineCost(model, hw, par)` in production; `FixedCost(step_s)`
    in tests (every step takes the same time)."""

    source: Literal["roofline", "fixed"] = "roofline"

    def __init__(self, table: OpTable):
        self.table = table
        self._args = (table.window, table.moe_ratio, table.flops_coef, table.bytes_coef, table.ops)

    def step(self, new: np.ndarray, ctx: np.ndarray, sampled: int) -> StepTime:
        """One step where sequence i processes new[i] tokens after ctx[i] tokens of prior context and
        `sampled` sequences produce a token."""
        acc = K.step_time(np.asarray(new, np.int64), np.asarray(ctx, np.int64), float(sampled), *self._args)
        return StepTime(*acc)

    def step_into(self, new: np.ndarray, ctx: np.ndarray, sampled: int, acc: np.ndarray) -> float:
        """`step()` for the engine's hot path: adds [total, compute-bound, memory-bound, link] into
        acc and returns the total (new and ctx int64 arrays)."""
        return K.step_time_into(new, ctx, float(sampled), *self._args, acc)

    def decode_span(
        self, ctx: np.ndarray, t0: float, t_stop: float, k_max: int, acc: np.ndarray
    ) -> tuple[int, float]:
        """Advance decode steps (see sim/cost/_kernels.py::decode_span); acc accumulates the time split.
        ctx is an int64 array."""
        return K.decode_span(ctx, *self._args, t0, t_stop, k_max, acc)

    def breakdown(self, new, ctx, sampled: int) -> pd.DataFrame:
        """One row per operator: FLOPs, bytes, times, bound, for reports and the dashboard. With
        efficiency curves, `efficiency_compute`/`efficiency_memory` are the fractions of peak used and
        `extrapolated` marks an operator whose work per call lies outside a curve's measured range."""
        t = self.table
        x = K.batch_features(
            np.asarray(new, np.int64), np.asarray(ctx, np.int64), float(sampled), t.window, t.moe_ratio
        )
        count = t.ops[:, K.COUNT]
        flops_one = t.flops_coef @ x
        bytes_one = t.bytes_coef @ x
        calls = t.ops[:, K.CALLS]
        eff_f, out_f = _curve_eval(t.ops, K.CURVE_F, flops_one / calls)
        eff_b, out_b = _curve_eval(t.ops, K.CURVE_B, bytes_one / calls)
        flops, nbytes = flops_one * count, bytes_one * count
        compute_s = flops / (t.ops[:, K.RATE_F] * eff_f)
        memory_s = nbytes / (t.ops[:, K.RATE_B] * eff_b)
        time_s = np.maximum(compute_s, memory_s) + t.ops[:, K.OVERHEAD] * count
        link = t.ops[:, K.IS_LINK] > 0
        idle = (compute_s == 0) & (memory_s == 0)
        kind = np.where(compute_s >= memory_s, "compute", "memory")
        bound = np.where(link, "link", np.where(idle, "overhead", kind))
        return pd.DataFrame(
            {
                "op": t.names,
                "count": count,
                "flops": flops,
                "bytes": nbytes,
                "compute_s": compute_s,
                "memory_s": memory_s,
                "time_s": time_s,
                "bound": bound,
                "efficiency_compute": eff_f,
                "efficiency_memory": eff_b,
                "extrapolated": out_f | out_b,
            }
        )


def _curve_eval(ops: np.ndarray, start: int, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each operator's curve value at `size` (1.0 without a curve) and whether `size` is outside the
    curve's knots (an extrapolation); operators doing no work on that leg are never flagged."""
    eff = np.array([K.curve_at(ops, o, start, float(size[o])) for o in range(len(size))])
    knots = ops[:, start].astype(int)
    has = (knots > 0) & (size > 0)
    lx = np.log10(np.where(size > 0, size, 1.0))
    lo = ops[:, start + 1]
    hi = ops[np.arange(len(size)), start + np.maximum(knots, 1)]
    tol = 1e-9
    return eff, has & ((lx < lo - tol) | (lx > hi + tol))


def RooflineCost(model: ModelArch, hw: Accelerator, par: Parallelism = Parallelism()) -> CostModel:
    return CostModel(build_ops(model, hw, par))


def FixedCost(step_s: float) -> CostModel:
    """Every step takes `step_s`, whatever the batch: for engine tests with hand-checkable times."""
    bld = _Builder()
    bld.add("fixed", 1, 1.0, 1.0, step_s)
    cost = CostModel(bld.build(0, 0.0))
    cost.source = "fixed"
    return cost
