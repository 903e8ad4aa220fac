"""A scenario file: what hardware, which model, how it is parallelised and scheduled, what traffic.

YAML in, validated once at the edge into a frozen `Scenario`: every field's type and range, and the
fields that must agree with each other. Whether the model fits the hardware is asked of the cost
model by `sim.runnable`; `sim.runnable.load_scenario` does both. `hardware` and `model` take a preset
name, a file path, or a mapping: `{preset: h100-sxm, memory: {hbm: {bandwidth_bytes_per_s: 4 TB/s}}}`
overrides fields of a preset (memory tiers are addressed by name). `--set a.b.c=value` edits the raw
mapping before validation, so every field can be overridden from the command line or a sweep.

`stack` names the serving stack (`hardware.stacks`: typical by default, vllm, sglang, trtllm, roofline,
or none for the hardware file as written); the scenario's `hardware` is the device as that stack
serves it, and efficiency fields set in the scenario's own hardware mapping win over the stack's.
"""

from __future__ import annotations

import copy
import difflib
import json
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator

from hardware.base import Frozen
from hardware.catalog import hardware_names, load_hardware, read_yaml
from hardware.spec import Accelerator, BytesPerS, Seconds
from hardware.stacks import DEFAULT_STACK, apply_stack, load_stack
from hardware.yamltext import load_yaml
from sim.cost.memory import TierPlacement
from sim.cost.parallelism import EXPERT_IMBALANCE, Parallelism
from sim.engine.steady import INTERVAL_FIELDS
from sim.limits import LimitError, check_numbers
from workloads.arrivals import ClosedLoop
from workloads.catalog import load_model
from workloads.lengths import shortest
from workloads.model import ModelArch
from workloads.spec import Slo, Workload

SCHEMA_PATH = Path(__file__).parent / "scenario.schema.json"


def deep_merge(base: Any, patch: Any) -> Any:
    """Merge `patch` into `base`: mappings recursively; a mapping patched onto a list of named items
    (memory tiers) updates the items by name; anything else replaces."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(patch, dict):
        names = [item.get("name") for item in base if isinstance(item, dict)]
        unknown = sorted(set(patch) - set(names))
        if unknown:
            raise ValueError(f"no item named {', '.join(unknown)}; items are {', '.join(map(str, names))}")
        return [deep_merge(item, patch[item["name"]]) if item.get("name") in patch else item for item in base]
    return patch


def _resolve(value: Any, loader, kind: str) -> Any:
    if isinstance(value, str | Path):
        return loader(value)
    if isinstance(value, dict) and "preset" in value:
        patch = {k: v for k, v in value.items() if k != "preset"}
        base = loader(value["preset"]).model_dump(mode="json")
        return deep_merge(base, patch)
    return value


HardwareField = Annotated[
    Accelerator,
    BeforeValidator(lambda v: _resolve(v, load_hardware, "hardware"), json_schema_input_type=str | dict),
]
ModelField = Annotated[
    ModelArch, BeforeValidator(lambda v: _resolve(v, load_model, "model"), json_schema_input_type=str | dict)
]


def _stacked(value: Any, stack_name: Any) -> Any:
    """A scenario's `hardware` value as `stack_name` serves it (`hardware.stacks.apply_stack`). A
    preset with overrides is stacked before the overrides are merged, so fields the scenario sets
    win over the stack's; a device that already carries the stack (a written-out scenario) is left
    as it is."""
    try:
        stack = load_stack(stack_name)
    except ValueError as exc:
        raise ValueError(f"stack: {exc}") from None
    if isinstance(value, dict) and "preset" in value:
        base = apply_stack(load_hardware(value["preset"]), stack).model_dump(mode="json")
        try:
            return deep_merge(base, {k: v for k, v in value.items() if k != "preset"})
        except ValueError as exc:
            raise ValueError(f"hardware: {exc}") from None
    resolved = _resolve(value, load_hardware, "hardware")
    device = resolved if isinstance(resolved, Accelerator) else Accelerator.model_validate(resolved)
    return apply_stack(device, stack)


class ParallelismSpec(Frozen):
    """How one replica splits the model (`sim.cost.parallelism`): `tp`-way tensor parallelism inside
    each of `attention_dp` data-parallel attention ranks, the MoE layers over `ep` expert-parallel
    groups of those tp x attention_dp devices, `cp` context-parallel ranks sharing each sequence,
    `pp` pipeline stages; `expert_imbalance` is the busiest expert-parallel device's routed tokens
    over the mean (default: a cited measurement), `redundant_experts` extra expert copies an EPLB
    placement adds (256 + 32 lets DeepSeek-V3 run on EP72)."""

    tp: int = Field(default=1, ge=1)
    pp: int = Field(default=1, ge=1)
    ep: int = Field(default=1, ge=1)
    attention_dp: int = Field(default=1, ge=1)
    cp: int = Field(default=1, ge=1)
    expert_imbalance: float = Field(default=EXPERT_IMBALANCE, ge=1)
    redundant_experts: int = Field(default=0, ge=0)

    @property
    def devices(self) -> int:
        """Devices one replica spans."""
        return self.split.devices

    @property
    def split(self) -> Parallelism:
        """The cost model's view of this split."""
        degrees = (self.tp, self.pp, self.ep, self.attention_dp, self.cp)
        return Parallelism(*degrees, self.expert_imbalance, self.redundant_experts)


class PoolSpec(ParallelismSpec):
    replicas: int = Field(ge=1)


def _split_text(spec: ParallelismSpec) -> str:
    """The device-multiplying degrees of a split that are above 1, as `tp 8 x pp 2`."""
    degrees = [(k, getattr(spec, k)) for k in ("tp", "attention_dp", "cp", "pp")]
    return " x ".join(f"{k} {v}" for k, v in degrees if v > 1) or "1 device"


class Disaggregation(Frozen):
    """Separate prefill and decode pools (Splitwise, DistServe): a sequence's KV crosses the link
    between them after its first token. The link defaults to the hardware's scale-out link."""

    prefill: PoolSpec
    decode: PoolSpec
    link_bandwidth_bytes_per_s: BytesPerS | None = Field(default=None, gt=0)
    link_latency_s: Seconds | None = Field(default=None, ge=0)


class FrontBatcher(Frozen):
    """A harness in front of the replicas that holds arrivals and sends them on in batches, each
    batch to one replica (MLPerf harnesses' `--enable-batcher`): a batch leaves once `window_s`
    has passed since the last one left, or `max_requests` are held. Latencies count from each
    request's arrival, so the wait shows in TTFT."""

    window_s: Seconds = Field(gt=0)
    max_requests: int = Field(ge=1)


class Cluster(Frozen):
    """Replicas behind a router. Give `replicas`, or `devices` (replicas = devices // (tp·pp)), or
    `disaggregated` pools. `prefix_affinity` sends a request where most of its prefix is cached.
    `batcher` holds open-loop arrivals in front of the router (`FrontBatcher`)."""

    replicas: int | None = Field(default=None, ge=1)
    devices: int | None = Field(default=None, ge=1)
    router: Literal["round_robin", "least_tokens", "prefix_affinity"] = "round_robin"
    disaggregated: Disaggregation | None = None
    batcher: FrontBatcher | None = None


class KVCacheSpec(Frozen):
    """Prefix caching over block hashes (from a trace's hash ids or multi-turn sessions).
    `offload_tier` names a memory tier below the main one that takes evicted entries."""

    prefix_caching: bool = False
    eviction: Literal["lru", "lfu", "cost"] = "lru"
    offload_tier: str | None = None
    block_tokens: int | None = Field(default=None, ge=1)


class Scheduler(Frozen):
    """Iteration-level (continuous) batching, as in vLLM. `priority: decode` runs the running decodes
    first and fills the token budget with prefill chunks; `prefill` runs admissible prefills alone.
    `scheduler_steps` is vLLM's `--num-scheduler-steps` (multi-step scheduling, vLLM 0.6-0.9): the
    batch decodes in windows of that many steps, and waiting requests join only between windows.
    `prefill_min_waiting` m: right after a step that prefilled, waiting requests join only when m
    of them wait, else after the next decode window (AMD's MLPerf v5.1 vLLM scheduler patch).
    `adp_timeout_iters` N above 0 balances the attention ranks of a MoE engine (`parallelism.
    attention_dp`) as TensorRT-LLM's `attention_dp_config: {enable_balance: true, timeout_iters: N,
    batching_wait_iters: W}` does: new requests join all ranks at once, when every rank has one
    waiting (after W more iterations while every rank is decoding), else every N iterations."""

    max_num_seqs: int = Field(default=256, ge=1)
    max_num_batched_tokens: int = Field(default=8192, ge=1)
    chunked_prefill: bool = True
    chunk_size: int | None = Field(default=None, ge=1)
    priority: Literal["decode", "prefill"] = "decode"
    block_size: int = Field(default=16, ge=1)
    preemption: Literal["recompute", "swap"] = "recompute"
    memory_fraction: float = Field(default=0.9, gt=0, le=1)
    context_overflow: Literal["reject", "truncate"] = "reject"
    scheduler_steps: int = Field(default=1, ge=1)
    prefill_min_waiting: int = Field(default=1, ge=1)
    adp_timeout_iters: int = Field(default=0, ge=0)
    adp_batching_wait_iters: int = Field(default=0, ge=0)

    @property
    def prefill_chunk(self) -> int:
        return self.chunk_size or self.max_num_batched_tokens


CONVERGE_REQUESTS = 2000
"""Requests a converging run simulates first when the scenario does not say."""
CONVERGE_DEFAULTS = {
    "relative_ci": 0.05,
    "max_requests": 200_000,
    "metrics": ("ttft_p99_s", "tpot_p99_s", "e2e_p99_s", "throughput_rps"),
}
"""What `until: converged` asks for when the scenario does not say: every p99 latency and the
throughput known to 5%, at most 200,000 requests (about 300 MB of run tables)."""


class Stop(Frozen):
    """Stop after `requests` requests, or after arrivals reach `duration_s` (all admitted finish).

    `until: converged` runs `requests` (default 2,000), then twice as many, and so on up to
    `max_requests` (default 200,000), until the confidence interval of every summary field in
    `metrics` (default: ttft_p99_s, tpot_p99_s, e2e_p99_s, throughput_rps) has a half-width within
    `relative_ci` (default 0.05) of its value. `relative_ci`, `max_requests` and `metrics` mean
    nothing without it and are refused."""

    requests: int | None = Field(default=None, ge=1)
    duration_s: Seconds | None = Field(default=None, gt=0)
    until: Literal["converged"] | None = None
    relative_ci: float | None = Field(default=None, gt=0, lt=1)
    max_requests: int | None = Field(default=None, ge=1)
    metrics: tuple[str, ...] | None = Field(default=None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _converge_defaults(cls, data: Any) -> Any:
        """Fill in what `until: converged` leaves unsaid, so a converging stop always holds its
        whole target (and a written-out scenario reads back the same)."""
        if not isinstance(data, dict) or data.get("until") != "converged":
            return data
        filled = {k: v for k, v in data.items() if v is not None}
        if "duration_s" not in filled:
            filled.setdefault("requests", CONVERGE_REQUESTS)
        return {**CONVERGE_DEFAULTS, **filled}

    @field_validator("metrics")
    @classmethod
    def _has_interval(cls, names: tuple[str, ...] | None) -> tuple[str, ...] | None:
        """Only a field with a confidence interval can converge."""
        for name in names or ():
            if name not in INTERVAL_FIELDS:
                raise ValueError(
                    f"{name!r} is not a summary field with a confidence interval; "
                    f"choose from {', '.join(INTERVAL_FIELDS)}"
                )
        return names

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.requests is None) == (self.duration_s is None):
            raise ValueError("give exactly one of requests or duration_s")
        if self.until is None:
            given = [k for k in CONVERGE_DEFAULTS if getattr(self, k) is not None]
            if given:
                raise ValueError(f"{' and '.join(given)}: only with until: converged")
            return self
        if self.duration_s is not None:
            raise ValueError("until: converged grows the request count; give requests, not duration_s")
        if self.max_requests < self.requests:
            raise ValueError(
                f"max_requests ({self.max_requests:,}) is below requests ({self.requests:,}), "
                "the count a converging run starts from"
            )
        return self

    @property
    def most_requests(self) -> int | None:
        """The most requests a run may simulate (None when it stops on a duration)."""
        return self.max_requests if self.until == "converged" else self.requests


PUE = 1.56
"""Power usage effectiveness (facility power / IT power) of the TCO basis: the average annual PUE that
operators reported for their largest data center in the Uptime Institute Global Data Center Survey
2024 (1.58 in 2023; new large facilities reach 1.3)."""
HOSTING_USD_PER_KW_MONTH = 184.06
"""Hosting of the TCO basis, USD per kW of IT load a month: CBRE's average asking rate for a 250-500 kW
wholesale colocation requirement across North American primary markets, H2 2024 (North America Data
Center Trends H2 2024, 2025-02-26); space, cooling and power delivery, electricity billed apart."""
ELECTRICITY_USD_PER_KWH = 0.10
"""Electricity of the TCO basis: a round figure between the commercial and industrial averages of
Virginia, the largest data-center market (8.95 and 8.92 cents/kWh in 2023), and the US commercial
average (EIA Electric Power Annual, data for 2023)."""


def _price_value(value: Any) -> Any:
    """`per_device_hour_usd` as given: a price above 0, or a mapping of hardware preset to price."""
    if value is None:
        return None
    if isinstance(value, dict):
        if not value:
            raise ValueError("give a price, or a mapping of hardware preset to price, not an empty mapping")
        return {str(name): _one_price(v, f"{name}: ") for name, v in value.items()}
    return _one_price(value, "")


def _one_price(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}expected USD per device-hour, a number above 0, got {value!r}")
    if not 0 < value < 1e9:
        raise ValueError(f"{where}expected USD per device-hour above 0 and below 1e9, got {value!r}")
    return float(value)


class CostAssumptions(Frozen):
    """How device-hours become dollars (`sim.cost.pricing`, sources in docs/cost.md). `basis`: `cloud`,
    the preset's published on-demand rental price (the default), or `tco`, its purchase price amortised
    over `amortization_years` plus hosting (`hosting_usd_per_kw_month` per kW of TDP) plus electricity
    (`electricity_usd_per_kwh` x `pue`, on the energy each step's compute and memory activity draws).
    `per_device_hour_usd` replaces either with your own all-in price: one number, or a mapping of
    hardware preset to price (presets it leaves out keep the basis's). Cached KV on the device is
    charged at the device's price per byte-hour; in an offload tier at `offload_usd_per_gb_hour` (an
    assumption, about the price of server DRAM rented by the hour)."""

    basis: Literal["cloud", "tco"] = "cloud"
    per_device_hour_usd: Annotated[float | dict[str, float] | None, BeforeValidator(_price_value)] = None
    amortization_years: float = Field(default=4.0, gt=0)
    electricity_usd_per_kwh: float = Field(default=ELECTRICITY_USD_PER_KWH, ge=0)
    pue: float = Field(default=PUE, ge=1)
    hosting_usd_per_kw_month: float = Field(default=HOSTING_USD_PER_KW_MONTH, ge=0)
    offload_usd_per_gb_hour: float = Field(default=0.005, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        """A misspelt field is refused with the field it was probably meant to be."""
        if not isinstance(data, dict):
            return data
        for key in data:
            if key not in cls.model_fields:
                close = difflib.get_close_matches(str(key), list(cls.model_fields), n=1, cutoff=0.5)
                hint = f"; did you mean {close[0]}?" if close else f"; fields: {', '.join(cls.model_fields)}"
                raise ValueError(f"{key}: unknown field{hint}")
        return data


class Scenario(Frozen):
    schema_version: Literal["1"] = "1"
    name: str = "scenario"
    seed: int = 0
    hardware: HardwareField
    stack: str = DEFAULT_STACK
    model: ModelField
    parallelism: ParallelismSpec = ParallelismSpec()
    cluster: Cluster = Cluster()
    scheduler: Scheduler = Scheduler()
    kv_cache: KVCacheSpec = KVCacheSpec()
    placement: TierPlacement = TierPlacement()
    workload: Workload
    slo: Slo | None = None
    stop: Stop
    cost: CostAssumptions = CostAssumptions()

    @model_validator(mode="before")
    @classmethod
    def _serve_with_stack(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "hardware" not in data:
            return data
        return {**data, "hardware": _stacked(data["hardware"], data.get("stack", DEFAULT_STACK))}

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """Fields that must agree with each other or with the hardware's own description; whether
        the model fits the hardware is `sim.runnable`'s question."""
        devices = self.parallelism.devices
        if devices > 1 and self.hardware.link() is None:
            raise ValueError(
                f"parallelism: a replica of {devices} devices needs hardware.scale_up; "
                f"{self.hardware.name} has none"
            )
        dis = self.cluster.disaggregated
        if dis is not None:
            if self.cluster.replicas is not None or self.cluster.devices is not None:
                raise ValueError("cluster: give replicas, devices or disaggregated, not several")
            if dis.link_bandwidth_bytes_per_s is None and self.hardware.link(across_nodes=True) is None:
                raise ValueError(
                    "cluster.disaggregated.link_bandwidth_bytes_per_s: the hardware has no link to default to"
                )
        if self.cluster.batcher is not None and isinstance(self.workload.arrivals, ClosedLoop):
            raise ValueError(
                "cluster.batcher: holds open-loop arrivals; closed-loop users send theirs one by one"
            )
        kv = self.kv_cache
        if kv.offload_tier is not None and kv.offload_tier not in [
            t.name for t in self.hardware.offload_tiers
        ]:
            names = ", ".join(t.name for t in self.hardware.offload_tiers) or "none"
            raise ValueError(
                f"kv_cache.offload_tier: {kv.offload_tier!r} is not a tier below the main one ({names})"
            )
        if kv.prefix_caching:
            if self.model.window is not None or self.model.ssm is not None or self.model.linear is not None:
                raise ValueError(
                    "kv_cache.prefix_caching: modelled for plain-attention models only "
                    f"({self.model.name} has windowed, SSM or linear-attention layers)"
                )
            if kv.block_tokens is not None and kv.block_tokens % self.scheduler.block_size:
                raise ValueError(
                    f"kv_cache.block_tokens ({kv.block_tokens}) must be a multiple of "
                    f"scheduler.block_size ({self.scheduler.block_size})"
                )
        if self.cluster.devices is not None:
            if self.cluster.replicas is not None:
                raise ValueError("cluster: give replicas or devices, not both")
            if devices > self.cluster.devices:
                raise ValueError(
                    f"parallelism: one replica spans {devices} devices ({_split_text(self.parallelism)}), "
                    f"which exceeds cluster.devices ({self.cluster.devices})"
                )
        prices = self.cost.per_device_hour_usd
        if isinstance(prices, dict):
            known = [*hardware_names(), self.hardware.name]
            for name in prices:
                if name not in known:
                    close = difflib.get_close_matches(name.lower(), known, n=3, cutoff=0.4)
                    hint = f"; did you mean {', '.join(close)}?" if close else ""
                    raise ValueError(
                        f"cost.per_device_hour_usd: {name!r} is not a hardware preset nor the scenario's "
                        f"hardware{hint} (`ctxsim catalog hardware` lists them)"
                    )
        tiers = [t.name for t in self.hardware.memory]
        for role, name in self.placement.model_dump().items():
            if name is not None and name not in tiers:
                raise ValueError(
                    f"placement.{role}: {self.hardware.name} has no memory tier {name!r} "
                    f"(tiers: {', '.join(tiers)})"
                )
        place = self.placement
        kv_tier = place.kv or self.hardware.main_tier.name
        if place.kv_spill is not None and place.kv_spill == kv_tier:
            raise ValueError(f"placement.kv_spill: {place.kv_spill!r} is the KV tier itself; name another")
        if self.scheduler.preemption == "swap" and not self.hardware.offload_tiers:
            raise ValueError(
                f"scheduler.preemption: swap needs a memory tier below {self.hardware.main_tier.name} "
                f"in hardware.memory; {self.hardware.name} has none"
            )
        return self

    @model_validator(mode="after")
    def _within_context(self) -> Self:
        """A class whose shortest request is longer than the model's context would have every
        request rejected (`context_limit`); refuse it here instead, unless such requests are
        truncated (`scheduler.context_overflow: truncate`)."""
        limit = self.model.context_limit_tokens
        if limit is None or self.scheduler.context_overflow == "truncate":
            return self
        for i, c in enumerate(self.workload.classes):
            if c.trace is not None:
                continue
            total = c.system_prompt_tokens + shortest(c.prompt_tokens) + shortest(c.output_tokens)
            if total > limit:
                raise ValueError(
                    f"workload.classes.{i} ({c.name}): every request is at least {total:,} tokens (system "
                    f"prompt + prompt + output), more than {self.model.name}'s max context of {limit:,} "
                    "(max_context_tokens, extended by model.rope_scaling)"
                )
        return self

    @property
    def par(self) -> Parallelism:
        """The parallelism as the cost model reads it (`tp`, `pp`, `devices` per replica, ...)."""
        return self.parallelism.split

    @property
    def replicas(self) -> int:
        """Replicas of the front pool (all replicas when serving is not disaggregated)."""
        if self.cluster.disaggregated is not None:
            return self.cluster.disaggregated.prefill.replicas
        if self.cluster.devices is not None:
            return self.cluster.devices // self.parallelism.devices
        return self.cluster.replicas or 1


# ---- loading --------------------------------------------------------------------------------------
class ScenarioError(ValueError):
    """A scenario that does not validate; the message names the field."""


def _parse_value(text: str) -> Any:
    try:
        return load_yaml(text)
    except yaml.YAMLError:
        return text


def set_path(data: dict, dotted: str, value: Any) -> dict:
    """Return a copy of `data` with `dotted` (e.g. `scheduler.max_num_seqs`) set to `value`. A preset
    name met on the way (`hardware: h100-sxm`) becomes `{preset: h100-sxm}` so its fields can be set."""
    out = copy.deepcopy(data)
    node = out
    keys = dotted.split(".")
    if not all(keys):
        raise ScenarioError(f"--set {dotted}: empty key in the path")
    for key in keys[:-1]:
        child = node.get(key)
        if isinstance(child, str):
            child = {"preset": child}
        elif child is None:
            child = {}
        elif not isinstance(child, dict):
            raise ScenarioError(f"--set {dotted}: {key} is not a mapping")
        node[key] = child
        node = child
    node[keys[-1]] = value
    return out


def with_cost(data: dict, basis: str | None = None, per_device_hour_usd: Any = None) -> dict:
    """A scenario mapping with `cost.basis` and `cost.per_device_hour_usd` set over its own `cost:`
    (None leaves a field as it is): how `--basis`/`--price` and the dashboard's price fields reach a
    run or a plan. Validation is the scenario's, so a bad value names its field."""
    given = (("basis", basis), ("per_device_hour_usd", per_device_hour_usd))
    fields = {k: v for k, v in given if v is not None}
    if not fields:
        return data
    cost = data.get("cost")
    return {**data, "cost": {**(cost if isinstance(cost, dict) else {}), **fields}}


def parse_override(item: str) -> tuple[str, Any]:
    """`key.path=value` as (dotted path, value read as YAML: `4`, `true`, `[1, 2]`, or the text)."""
    if "=" not in item:
        raise ScenarioError(f"--set {item!r}: expected key.path=value")
    key, value = item.split("=", 1)
    return key.strip(), _parse_value(value)


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    for item in overrides:
        data = set_path(data, *parse_override(item))
    return data


def format_error(exc: ValidationError) -> str:
    """One line per problem, each naming the dotted field path."""
    lines = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-"))
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(dict.fromkeys(lines))


def scenario_from_dict(data: dict, overrides: list[str] | tuple[str, ...] = ()) -> Scenario:
    """A well-formed scenario from a mapping and `--set` overrides (no integer beyond what float and
    int64 arithmetic hold, `sim.limits.check_numbers`); every error is a `ScenarioError` naming the
    field. `sim.runnable.scenario_from_dict` also refuses one that cannot run here."""
    data = apply_overrides(data, overrides)
    try:
        check_numbers(data)
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(format_error(exc)) from None
    except (LimitError, ValueError) as exc:
        raise ScenarioError(str(exc)) from None
    return scenario


def rebase_paths(data: Any, folder: Path) -> Any:
    """Relative file paths (`path:` keys, and `hardware`/`model` values naming files) resolved from
    `folder`, where a file of that name exists; others are left as written."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            is_file = key == "path" or (
                key in ("hardware", "model", "preset")
                and isinstance(value, str)
                and value.endswith((".yaml", ".yml", ".json"))
            )
            if (
                is_file
                and isinstance(value, str)
                and not Path(value).is_absolute()
                and (folder / value).exists()
            ):
                out[key] = str(folder / value)
            else:
                out[key] = rebase_paths(value, folder)
        return out
    if isinstance(data, list):
        return [rebase_paths(item, folder) for item in data]
    return data


def load_scenario(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Scenario:
    """Read and validate a scenario YAML's shape (`sim.runnable.load_scenario` also checks it can run);
    relative file paths inside it resolve from its folder (falling back to the working directory
    when no such file sits beside it)."""
    path = Path(path)
    try:
        data = read_yaml(path)
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None
    return scenario_from_dict(rebase_paths(data, path.parent), overrides)


def json_schema() -> str:
    return json.dumps(Scenario.model_json_schema(), indent=1, sort_keys=True) + "\n"
