"""How a replica splits a model over devices, and the checks that a split can run. The cost model, the
memory plan and scenarios all validate through here.

A replica is `pp` pipeline stages; each stage is `cp` context-parallel ranks (each holding a slice of
every sequence's tokens, weights replicated); each of those is `attention_dp` data-parallel attention
ranks (each serving its own requests with its own KV and its own copy of the dense layers), each a
`tp`-way tensor-parallel group. The MoE layers of a stage are shared by its `tp x attention_dp`
devices, split into `ep` expert-parallel groups of `moe_tp` devices (each group holding E/ep whole
experts, tensor-split `moe_tp` ways), as SGLang and vLLM run DeepSeek-style models. Devices are numbered tp
first, then attention_dp, cp and pp, the order `sim.cost.collectives` places groups by.

A replica runs `engines` schedulers, one per attention rank, each with its own requests and its
share of the KV pool (`sim.api`); with pipeline stages a scheduler keeps up to pp micro-batches in
flight (`sim.cost.roofline.micro_batch`)."""

from __future__ import annotations

from dataclasses import dataclass

from workloads.model import ModelArch

EXPERT_IMBALANCE = 59_337 / 50_302
"""Routed tokens on the busiest expert-parallel device over the mean, 1.18 by default: SGLang's
DeepSeek-V3 prefill on 4 x 8 H100 (EP32) ran at 50,302 tokens/s per node with the default expert
placement and at 59,337 with a simulated perfect balance (lm-sys/lm-sys.github.io
blog/2025-05-05-large-scale-ep.md, 'Overall Throughput' table); the whole gap is charged to imbalance."""


class ConfigError(ValueError):
    """A configuration that cannot run, with a message naming the field."""


@dataclass(frozen=True)
class Parallelism:
    tp: int = 1
    pp: int = 1
    ep: int = 1
    attention_dp: int = 1
    cp: int = 1
    expert_imbalance: float = EXPERT_IMBALANCE
    redundant_experts: int = 0

    @property
    def devices(self) -> int:
        return self.tp * self.attention_dp * self.cp * self.pp

    @property
    def ffn_group(self) -> int:
        """Devices a stage's MoE layers are split over (per context-parallel rank)."""
        return self.tp * self.attention_dp

    @property
    def moe_tp(self) -> int:
        """Tensor-parallel degree inside each expert-parallel group."""
        return self.ffn_group // self.ep

    @property
    def engines(self) -> int:
        """Schedulers one replica runs: one per data-parallel attention rank."""
        return self.attention_dp

    def physical_experts(self, model: ModelArch) -> int:
        """Expert copies a MoE layer holds: the model's experts plus redundant copies of the busiest
        (DeepSeek's EPLB places 256 + 32 on EP32 or EP72)."""
        return model.moe.experts + self.redundant_experts

    @property
    def imbalance(self) -> float:
        """The load factor on the busiest expert-parallel device (1 without expert parallelism)."""
        return self.expert_imbalance if self.ep > 1 else 1.0


def check_parallelism(model: ModelArch, par: Parallelism) -> None:
    for field in ("tp", "pp", "ep", "attention_dp", "cp"):
        if getattr(par, field) < 1:
            raise ConfigError(f"{field} ({getattr(par, field)}) must be at least 1")
    if model.num_heads and model.num_heads % par.tp:
        raise ConfigError(f"tp ({par.tp}) must divide num_heads ({model.num_heads}) of {model.name}")
    if par.pp > model.num_layers:
        raise ConfigError(f"pp ({par.pp}) exceeds num_layers ({model.num_layers}) of {model.name}")
    if par.expert_imbalance < 1:
        raise ConfigError(f"expert_imbalance ({par.expert_imbalance}) must be at least 1 (busiest / mean)")
    if par.redundant_experts < 0:
        raise ConfigError(f"redundant_experts ({par.redundant_experts}) must not be negative")
    if par.ep > 1 or par.redundant_experts:
        if model.moe is None:
            raise ConfigError(f"ep ({par.ep}) needs experts; {model.name} has no MoE layers")
        held = par.physical_experts(model)
        if held % par.ep:
            extra = f" + {par.redundant_experts} redundant" if par.redundant_experts else ""
            raise ConfigError(
                f"ep ({par.ep}) must divide the {model.moe.experts}{extra} experts of {model.name}"
            )
        if par.ffn_group % par.ep:
            raise ConfigError(
                f"ep ({par.ep}) must divide tp x attention_dp ({par.ffn_group}), the devices each MoE "
                "layer is split over"
            )
    if par.cp > 1 and model.ssm is not None:
        raise ConfigError(
            f"cp ({par.cp}): {model.name}'s SSM layers carry a recurrent state from token to token and "
            "cannot be split by sequence; use tp or pp"
        )


def weight_bytes_per_device(model: ModelArch, par: Parallelism) -> float:
    """Weight bytes on one device: a stage's attention, dense FFN, norms, router, shared experts,
    embedding and LM head split over tp (replicated over attention and context-parallel ranks), its
    routed experts (and their redundant copies) split over the tp x attention_dp devices ((E + r)/ep
    whole experts a device under expert parallelism, each split moe_tp ways)."""
    routed = sum(g.count for g in model.layer_groups() if g.ffn == "moe")
    routed *= model.expert_params() * model.moe.experts if model.moe else 0.0
    rest = (model.params() - routed) * model.weight_bytes_per_param
    experts = model.weight_bytes() - rest
    if routed:
        experts *= par.physical_experts(model) / model.moe.experts
    return (rest / par.tp + experts / par.ffn_group) / par.pp
