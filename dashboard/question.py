"""The question the cluster-sizing page asks the planner: a model, its workload (a starting scenario's
own, lognormal prompt and output lengths, a task-mix preset, or a trace's lengths), a load, p99 SLOs,
the hardware and tensor-parallel degrees to consider, the serving stack, and the cost basis with an
optional own price per device-hour. A `Question` reads from a scenario (an
example or an upload fills the form), from the form, and from a share link's query, and turns into
the scenario mapping `ctxsim plan` is given (`planned_scenario`), described in words (`describe`).
A share link carries an uploaded scenario too, deflated (`link_scenario`), when it is short enough.
"""

from __future__ import annotations

import base64
import binascii
import math
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from dashboard.whatif import BASIS_LABELS, own_price, stack_choices
from sim.format import count, seconds
from sim.scenario import Scenario, ScenarioError, scenario_from_dict, set_path, with_cost
from sim.studies.planner import RATE_ARRIVALS, Demand, SearchSpace
from sim.studies.verdict import DEFAULT_REQUESTS, SloTarget
from workloads import model_names
from workloads.lengths import LogNormal
from workloads.mixes import PRESETS

TPS = (1, 2, 4, 8)
MAX_DEVICES = 64
"""The planner's defaults (`ctxsim plan --tp 1,2,4,8 --max-devices 64`), so the page asks what the
CLI asks unless the user changes them."""
WORKLOADS = {
    "scenario": "as in the scenario",
    "lengths": "length distributions",
    "mix": "task mix",
    "trace": "trace",
}
"""How the question gives its requests: the starting scenario's own workload, lognormal prompt and
output lengths, one task-mix preset (`workloads.mixes`), or the lengths of a trace file."""
TRACE_SUFFIXES = (".csv", ".jsonl", ".json")
LINK_CHARS = 6000
"""The longest scenario a share link carries, compressed and encoded."""


@dataclass(frozen=True)
class Lengths:
    """A lognormal token-length distribution: `median` tokens, `sigma` its log-space spread, at most
    `max` tokens (None: unclipped)."""

    median: float
    sigma: float
    max: int | None = None

    def mapping(self) -> dict:
        out: dict[str, Any] = {"kind": "lognormal", "median": self.median, "sigma": self.sigma}
        return out if self.max is None else {**out, "max": self.max}

    def text(self) -> str:
        top = f", at most {count(self.max)}" if self.max else ""
        return f"median {count(self.median)} tokens (σ {self.sigma:g}{top})"


DEFAULT_PROMPT = Lengths(1500, 0.9, 16_000)
DEFAULT_OUTPUT = Lengths(250, 0.7, 2000)


@dataclass(frozen=True)
class Question:
    """What the sizing page asks the planner. `model` None keeps the scenario's own; `workload` is a
    key of `WORKLOADS` with its `prompt`/`output` lengths, task-mix preset `mix`, or `trace` path
    under the dashboard's data folder; `hardware` empty searches the scenario's own. SLO limits are
    p99 seconds, None where unset. `stack` None keeps the scenario's serving stack; `price` None
    prices a device-hour on `basis` (`cloud` or `tco`)."""

    model: str | None = None
    workload: str = "scenario"
    prompt: Lengths = DEFAULT_PROMPT
    output: Lengths = DEFAULT_OUTPUT
    mix: str | None = None
    trace: str | None = None
    qps: float = 10.0
    requests: int = DEFAULT_REQUESTS
    ttft_p99_s: float | None = 2.0
    tpot_p99_s: float | None = 0.05
    e2e_p99_s: float | None = None
    hardware: tuple[str, ...] = ()
    tps: tuple[int, ...] = TPS
    max_devices: int = MAX_DEVICES
    stack: str | None = None
    basis: str = "cloud"
    price: float | None = None

    def slos(self) -> tuple[SloTarget, ...]:
        """p99 targets for the limits that are set (an empty field or 0: no target)."""
        limits = (("ttft", self.ttft_p99_s), ("tpot", self.tpot_p99_s), ("e2e", self.e2e_p99_s))
        return tuple(SloTarget(metric=m, percentile=99, limit_s=v) for m, v in limits if v)

    def demand(self) -> Demand:
        return Demand(float(self.qps), self.slos(), int(self.requests))

    def space(self) -> SearchSpace:
        return SearchSpace(self.hardware, tuple(sorted(self.tps)), int(self.max_devices))

    def query(self) -> dict:
        """The question as a share link's query parameters (lists repeat their key; whole floats
        written as integers)."""
        out = self._query()
        return {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in out.items()}

    def _query(self) -> dict:
        out: dict[str, Any] = {"model": self.model, "workload": self.workload}
        if self.workload == "lengths":
            for name, lengths in (("prompt", self.prompt), ("output", self.output)):
                out |= {f"{name}_median": lengths.median, f"{name}_sigma": lengths.sigma}
                out[f"{name}_max"] = lengths.max or 0  # 0: unclipped (an empty value drops out)
        out["mix"] = self.mix if self.workload == "mix" else None
        out["trace"] = self.trace if self.workload == "trace" else None
        out |= {
            "qps": self.qps,
            "requests": self.requests,
            "ttft_p99": self.ttft_p99_s or 0,  # 0: no target (an empty value drops out)
            "tpot_p99": self.tpot_p99_s or 0,
            "e2e_p99": self.e2e_p99_s or 0,
            "hardware": list(self.hardware) or None,
            "tp": list(self.tps),
            "max_devices": self.max_devices,
            "stack": self.stack,
            "basis": self.basis,
            "price": self.price,
        }
        return out


# ---- reading a question: from a scenario, a form, a link ---------------------------------------------
def _seconds(value: float | None) -> float | None:
    return None if value is None else float(value)


def scenario_question(data: dict) -> Question:
    """The question a scenario mapping asks as it stands: its model (None when it is not a plain
    preset name), its workload as lengths or a task mix where it is one class of those, else as it
    is; its arrival rate as the load, its p99 SLO limits, and its hardware when that is a preset."""
    sc = scenario_from_dict(data)
    raw_model, raw_hw = data.get("model"), data.get("hardware")
    q = Question(
        model=raw_model if isinstance(raw_model, str) and raw_model in model_names() else None,
        hardware=(raw_hw,) if isinstance(raw_hw, str) else (),
    )
    given = sc.cost.per_device_hour_usd
    q = replace(q, stack=sc.stack, basis=sc.cost.basis, price=given if isinstance(given, float) else None)
    rate = getattr(sc.workload.arrivals, "rate_per_s", None)
    if rate:
        q = replace(q, qps=float(rate))
    if sc.slo is not None and sc.slo.percentile == 99:
        q = replace(q, ttft_p99_s=_seconds(sc.slo.ttft_s), tpot_p99_s=_seconds(sc.slo.tpot_s))
        q = replace(q, e2e_p99_s=_seconds(sc.slo.e2e_s))
    return replace(q, **_workload_fields(data.get("workload") or {}, sc))


def _workload_fields(raw: dict, sc: Scenario) -> dict:
    """The question's workload fields for a scenario: a task mix where its one class is a bare preset,
    lognormal lengths where its one class is just those, else its own workload."""
    classes = sc.workload.classes
    if len(classes) != 1:
        return {"workload": "scenario"}
    one = classes[0]
    own = raw["classes"][0] if isinstance(raw.get("classes"), list) else raw
    keys = {k for k in own if k not in ("arrivals", "block_tokens", "name", "weight", "slo")}
    if keys == {"preset"}:
        return {"workload": "mix", "mix": one.preset}
    lognormal = isinstance(one.prompt_tokens, LogNormal) and isinstance(one.output_tokens, LogNormal)
    if keys == {"prompt_tokens", "output_tokens"} and lognormal and one.prompt_tokens.min == 1:
        return {
            "workload": "lengths",
            "prompt": Lengths(one.prompt_tokens.median, one.prompt_tokens.sigma, one.prompt_tokens.max),
            "output": Lengths(one.output_tokens.median, one.output_tokens.sigma, one.output_tokens.max),
        }
    return {"workload": "scenario"}


def _number(value: Any, cast: Callable = float) -> Any:
    """A form or query value as a number; None for empty, unreadable or non-finite."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        number = cast(float(value))
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _listed(value: Any) -> list:
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def question_from_query(query: dict, start: Question, hardware_names: list[str]) -> Question:
    """`start` with what a share link's query sets; values that do not read fall back to `start`'s."""
    q = start
    if query.get("model") in model_names():
        q = replace(q, model=query["model"])
    if query.get("workload") in WORKLOADS:
        q = replace(q, workload=query["workload"])
    for name in ("prompt", "output"):
        old = getattr(q, name)
        median = _number(query.get(f"{name}_median")) or old.median
        sigma = _number(query.get(f"{name}_sigma"))
        top = (_number(query[f"{name}_max"], int) or None) if f"{name}_max" in query else old.max
        q = replace(q, **{name: Lengths(median, old.sigma if sigma is None else sigma, top)})
    if query.get("mix") in PRESETS:
        q = replace(q, mix=query["mix"])
    if query.get("trace"):
        q = replace(q, trace=str(query["trace"]))
    for key, attr, cast in (
        ("qps", "qps", float),
        ("requests", "requests", int),
        ("max_devices", "max_devices", int),
    ):
        value = _number(query.get(key), cast)
        if value is not None and value > 0:
            q = replace(q, **{attr: value})
    for key in ("ttft_p99", "tpot_p99", "e2e_p99"):
        if key in query:
            q = replace(q, **{f"{key}_s": _number(query[key]) or None})
    if query.get("stack") in stack_choices():
        q = replace(q, stack=query["stack"])
    if query.get("basis") in BASIS_LABELS:
        q = replace(q, basis=query["basis"])
    if "price" in query:
        q = replace(q, price=own_price(query["price"]))
    chosen = [h for h in _listed(query.get("hardware")) if h in hardware_names]
    if chosen:
        q = replace(q, hardware=tuple(chosen))
    tps = sorted({int(t) for t in _listed(query.get("tp")) if str(t) in {str(x) for x in TPS}})
    return replace(q, tps=tuple(tps)) if tps else q


FORM_FIELDS = (
    "model",
    "workload",
    *(f"{name}-{part}" for name in ("prompt", "output") for part in ("median", "sigma", "max")),
    "mix",
    "trace",
    "qps",
    "requests",
    "ttft",
    "tpot",
    "e2e",
    "hardware",
    "tps",
    "max-devices",
    "stack",
    "basis",
    "price",
)
"""The sizing form's fields, in the order `question_from_form` reads them and `form_values` gives them;
the SLO fields are p99 limits in seconds."""


def question_from_form(values: list) -> Question:
    """The sizing form's values (in `FORM_FIELDS` order) as a question. Empty fields take the CLI's
    defaults (`requests`, `tps`, `max_devices`) or mean "no target"."""
    f = dict(zip(FORM_FIELDS, values, strict=True))

    def lengths(name: str, default: Lengths) -> Lengths:
        median, sigma, top = (_number(f[f"{name}-{part}"]) for part in ("median", "sigma", "max"))
        return Lengths(
            median or default.median, default.sigma if sigma is None else sigma, int(top) if top else None
        )

    return Question(
        model=f["model"] if f["model"] in model_names() else None,
        workload=f["workload"] if f["workload"] in WORKLOADS else "scenario",
        prompt=lengths("prompt", DEFAULT_PROMPT),
        output=lengths("output", DEFAULT_OUTPUT),
        mix=f["mix"],
        trace=f["trace"] or None,
        qps=_number(f["qps"]) or 0.0,
        requests=_number(f["requests"], int) or DEFAULT_REQUESTS,
        ttft_p99_s=_number(f["ttft"]) or None,
        tpot_p99_s=_number(f["tpot"]) or None,
        e2e_p99_s=_number(f["e2e"]) or None,
        hardware=tuple(f["hardware"] or ()),
        tps=tuple(sorted(int(t) for t in (f["tps"] or TPS))),
        max_devices=_number(f["max-devices"], int) or MAX_DEVICES,
        stack=f["stack"] if f["stack"] in stack_choices() else None,
        basis=f["basis"] if f["basis"] in BASIS_LABELS else "cloud",
        price=own_price(f["price"]),
    )


def form_values(q: Question) -> list:
    """The form's field values for a question, in `FORM_FIELDS` order."""
    return [
        q.model,
        q.workload,
        q.prompt.median,
        q.prompt.sigma,
        q.prompt.max,
        q.output.median,
        q.output.sigma,
        q.output.max,
        q.mix,
        q.trace,
        q.qps,
        q.requests,
        q.ttft_p99_s,
        q.tpot_p99_s,
        q.e2e_p99_s,
        list(q.hardware),
        list(q.tps),
        q.max_devices,
        q.stack,
        q.basis,
        q.price,
    ]


# ---- the scenario the question asks about --------------------------------------------------------------
def trace_path(root: Path, relative: str) -> Path:
    """A trace file named relative to the dashboard's data folder; one outside it, missing, or not a
    trace file's type is a ScenarioError."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ScenarioError(f"trace: {relative} is outside the folder the dashboard serves ({root})")
    if not path.is_file():
        raise ScenarioError(f"trace: no file {relative} under {root}")
    if path.suffix.lower() not in TRACE_SUFFIXES:
        raise ScenarioError(f"trace: {relative} is not a trace ({', '.join(TRACE_SUFFIXES)})")
    return path


def planned_scenario(data: dict, q: Question, data_root: Path) -> dict:
    """The scenario mapping `ctxsim plan` is given for the question: `data` with the question's model,
    workload, serving stack, cost basis and price where they differ from its own. Arrivals keep their
    process (Poisson unless the scenario's has a rate to set) and the load sets their rate; a trace
    gives lengths only."""
    own = scenario_question(data)
    out = data
    if q.model is not None and q.model != own.model:
        out = set_path(out, "model", q.model)
    if q.stack is not None and q.stack != own.stack:
        out = set_path(out, "stack", q.stack)
    basis = q.basis if q.basis != own.basis else None
    out = with_cost(out, basis, q.price if q.price != own.price else None)
    if q.workload == "scenario" or _same_workload(q, own):
        return out
    old = data.get("workload") or {}
    arrivals = old.get("arrivals") or {"kind": "poisson", "rate_per_s": q.qps}
    if arrivals.get("kind", "poisson") not in RATE_ARRIVALS:
        arrivals = {"kind": "poisson", "rate_per_s": q.qps}
    workload: dict[str, Any] = {"arrivals": arrivals}
    if "block_tokens" in old:
        workload["block_tokens"] = old["block_tokens"]
    if q.workload == "lengths":
        workload |= {"prompt_tokens": q.prompt.mapping(), "output_tokens": q.output.mapping()}
    elif q.workload == "mix":
        if q.mix not in PRESETS:
            raise ScenarioError(f"task mix: choose one of {', '.join(sorted(PRESETS))}")
        workload["preset"] = q.mix
    else:
        if not q.trace:
            raise ScenarioError("trace: give a trace file under the dashboard's data folder")
        path = trace_path(data_root, q.trace)
        workload["trace"] = {"path": str(path), "replay_timestamps": False}
    return set_path(out, "workload", workload)


def _same_workload(q: Question, own: Question) -> bool:
    if q.workload != own.workload:
        return False
    if q.workload == "lengths":
        return (q.prompt, q.output) == (own.prompt, own.output)
    return q.workload == "mix" and q.mix == own.mix


def describe(data: dict, label: str, q: Question) -> dict[str, str]:
    """What the page is sizing, in words: the model, the workload, the load and targets, and the
    hardware searched. `data` is the planned scenario mapping (`planned_scenario`)."""
    sc = scenario_from_dict(data)
    classes = sc.workload.classes
    if q.workload == "lengths":
        workload = f"prompts {q.prompt.text()}, outputs {q.output.text()}"
    elif len(classes) == 1 and classes[0].trace is not None:
        workload = f"prompt and output lengths of {Path(classes[0].trace.path).name}"
    elif len(classes) == 1 and classes[0].preset is not None:
        workload = f"task mix {classes[0].preset}: {PRESETS[classes[0].preset].description}"
    elif len(classes) == 1:
        workload = _class_text(classes[0])
    else:
        total = sum(c.weight for c in classes)
        workload = ", ".join(f"{c.name} {c.weight / total:.0%}" for c in classes)
        workload = f"{len(classes)} classes ({workload}) as in {label}"
    targets = ", ".join(f"{s.metric.upper()} ≤ {seconds(s.limit_s)}" for s in q.slos()) or "none set"
    hardware = ", ".join(q.hardware) or f"{sc.hardware.name} (the scenario's)"
    return {
        "model": sc.model.name,
        "workload": workload,
        "load": f"{q.qps:g} req/s ({sc.workload.arrivals.kind} arrivals); p99 {targets}",
        "serving": f"stack {sc.stack}; dollars on the {sc.cost.basis} basis"
        + (f" at your ${q.price:,.4g}/device-hour" if q.price is not None else ""),
        "search": f"{hardware}; tp {', '.join(map(str, q.tps))}; at most {q.max_devices} devices; "
        f"{count(q.requests)} simulated requests per configuration (more when borderline)",
    }


def _class_text(c) -> str:
    parts = []
    for name, length in (("prompts", c.prompt_tokens), ("outputs", c.output_tokens)):
        if isinstance(length, LogNormal):
            parts.append(f"{name} {Lengths(length.median, length.sigma, length.max).text()}")
        elif length is not None:
            parts.append(f"{name} {length.kind}")
    for extra in ("session", "document"):
        if getattr(c, extra) is not None:
            parts.append(f"with a {extra}")
    return ", ".join(parts) or c.name


# ---- a share link's scenario ----------------------------------------------------------------------
def link_scenario(data: dict) -> str | None:
    """An uploaded scenario as a share link's value (YAML, deflated, URL-safe base64), or None when
    it is longer than `LINK_CHARS` and cannot travel in a link."""
    text = yaml.safe_dump(data, sort_keys=False).encode()
    packed = base64.urlsafe_b64encode(zlib.compress(text, 9)).decode().rstrip("=")
    return packed if len(packed) <= LINK_CHARS else None


def unlink_scenario(packed: str, max_bytes: int) -> str:
    """The scenario a share link carries, as the data URL of an upload of it (for
    `dashboard.runs.parse_upload` to check like any upload); ScenarioError when it does not read or
    inflates past `max_bytes`."""
    if len(packed) > LINK_CHARS:
        raise ScenarioError(f"the link's scenario is over {LINK_CHARS} characters")
    try:
        raw = base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4))
        inflater = zlib.decompressobj()
        text = inflater.decompress(raw, max_bytes + 1)
    except (binascii.Error, ValueError, zlib.error):
        raise ScenarioError("the link's scenario does not read; upload the file again") from None
    if len(text) > max_bytes or inflater.unconsumed_tail:
        raise ScenarioError(f"the link's scenario is over the {max_bytes:,}-byte limit for uploads")
    return "data:application/x-yaml;base64," + base64.b64encode(text).decode()


def question_mapping(q: Question) -> dict:
    """A question as plain data for a background job (`question_from_mapping` reads it back)."""
    return asdict(q)


def question_from_mapping(data: dict) -> Question:
    return Question(
        **{
            **data,
            "prompt": Lengths(**data["prompt"]),
            "output": Lengths(**data["output"]),
            "hardware": tuple(data["hardware"]),
            "tps": tuple(data["tps"]),
        }
    )
