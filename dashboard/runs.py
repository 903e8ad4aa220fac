"""Scenarios in the browser: uploads checked at the edge, form edits as overrides, and a run as a
background job whose answer is kept small enough to draw quickly.

An upload goes through the same gate as a file given to `ctxsim run`: YAML safe loading, then the
`Scenario` schema, whose errors name the field. On top of that an upload is capped in size and may
not point at files on the server (a preset name is fine, a path is not). Form edits are dotted-path
overrides on the raw mapping, exactly like `ctxsim run --set`, so what the page runs is what the CLI
would run with the same overrides.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import ValidationError

from dashboard.whatif import BASIS_LABELS, own_price, stack_choices
from hardware import hardware_names
from hardware.catalog import read_yaml
from hardware.yamltext import load_yaml
from sim import scenario as schema
from sim.api import Result, make_requests, run
from sim.engine.steady import INTERVAL_FIELDS, ci_names
from sim.engine.summary import FIELDS, Summary
from sim.errors import did_you_mean, one_field_error
from sim.format import MISSING, count, interval, is_missing, seconds_ci
from sim.limits import check_numbers
from sim.report import labels
from sim.report.readout import estimate, measured, overload
from sim.runnable import scenario_from_dict
from sim.scenario import Scenario, ScenarioError, set_path
from workloads import model_names

CDF_POINTS = 1000
TIMESERIES_ROWS = 3000
COMPARED_KEYS = (
    "requests_finished",
    "requests_rejected",
    "throughput_rps",
    "output_tokens_per_s",
    "ttft_p50_s",
    "ttft_p99_s",
    "tpot_p50_s",
    "tpot_p99_s",
    "e2e_p99_s",
    "slo_attainment",
    "goodput_rps",
    "kv_peak_fraction",
    "preemptions",
    "compute_bound_time_fraction",
    "devices",
    "cost_per_hour_usd",
    "cost_per_1m_output_tokens_usd",
)
COMPARED = [(key, labels.label(key)) for key in COMPARED_KEYS]
"""The summary fields the runs page compares, as (field, row label from `sim.report.labels`)."""


FIRST_EXAMPLE = "chat-h100"
"""The example a page opens with: the README's first scenario, a small chat service any preset serves."""


def example_names(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def default_example(names: list[str]) -> str | None:
    """`FIRST_EXAMPLE` when the folder has it, else the first by name (None for no examples)."""
    return FIRST_EXAMPLE if FIRST_EXAMPLE in names else (names[0] if names else None)


def read_example(folder: Path, name: str) -> dict:
    if name not in example_names(folder):
        raise ScenarioError(f"no example named {name!r}; examples are {', '.join(example_names(folder))}")
    try:
        return read_yaml(folder / f"{name}.yaml")
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None


def _server_paths(node: Any, where: str = "") -> list[str]:
    """Dotted paths of fields that would make the server read a file: keys ending in `path`, and
    hardware or model given as anything but a preset name."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}" if where else str(key)
            if str(key).endswith("path"):
                found.append(here)
            found += _server_paths(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _server_paths(value, f"{where}.{i}")
    return found


def _check_presets(data: dict) -> None:
    for key, names in (("hardware", hardware_names()), ("model", model_names())):
        value = data.get(key)
        name = value.get("preset") if isinstance(value, dict) and "preset" in value else value
        if isinstance(name, str) and name not in names:
            raise ScenarioError(
                f"{key}: {name!r} is not a preset{did_you_mean(name, names)} (an uploaded scenario "
                f"names presets, {', '.join(names)}, or gives the fields inline)"
            )


def _check_schema(data: dict) -> None:
    """Validate `data` against the scenario schema, refusing it with the one field at fault as the
    user wrote it and what they probably meant (`sim.errors.one_field_error`): a misspelt key gives
    pydantic an unknown key and a missing field; only the first is shown, with the name it meant."""
    try:
        check_numbers(data)
        Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(one_field_error(exc, data, Scenario)) from None
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None


def parse_upload(contents: str, filename: str, max_bytes: int, runnable: bool = True) -> dict:
    """A `dcc.Upload` data URL as a scenario mapping, validated against the schema and, when
    `runnable`, checked to run as it stands (`ctxsim run`'s checks; `ctxsim plan` takes a scenario
    whose own parallelism does not fit, since it chooses tp itself). Raises `ScenarioError` naming
    the file and the one field at fault, with "did you mean" for a misspelt key, kind or preset."""
    try:
        raw = base64.b64decode(contents.split(",", 1)[1], validate=True)
    except (IndexError, ValueError, binascii.Error):
        raise ScenarioError(f"{filename}: not a readable upload") from None
    if len(raw) > max_bytes:
        raise ScenarioError(f"{filename}: {len(raw):,} bytes, over the {max_bytes:,}-byte limit for uploads")
    try:
        data = load_yaml(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{filename}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{filename}: expected a mapping of scenario fields at the top level")
    paths = _server_paths(data)
    if paths:
        raise ScenarioError(f"{paths[0]}: an uploaded scenario cannot refer to files on the server")
    try:
        _check_presets(data)
        _check_schema(data)
        if runnable:
            scenario_from_dict(data)
    except ScenarioError as exc:
        raise ScenarioError(f"{filename}: {exc}") from None
    return data


# ---- the form: a few fields a study changes most, applied as `--set` overrides ------------------------
FORM_FIELDS = [
    ("name", "name"),
    ("seed", "seed"),
    ("hardware", "hardware"),
    ("model", "model"),
    ("parallelism.tp", "tensor parallel"),
    ("cluster.replicas", "replicas"),
    ("workload.arrivals.rate_per_s", "arrival rate (req/s)"),
    ("stop.requests", "requests"),
    ("scheduler.max_num_seqs", "max sequences per batch"),
    ("scheduler.max_num_batched_tokens", "token budget per step"),
    ("stack", "serving stack"),
    ("cost.basis", "cost basis"),
    ("cost.per_device_hour_usd", "$ / device-hour (empty: the basis's)"),
]
CHOICES = {"stack": stack_choices(), "cost.basis": list(BASIS_LABELS)}
"""The form fields picked from a list."""
COST_BASIS = "$ on"
"""The compare table's row saying what each run's dollars are on."""


def form_values(scenario: Scenario) -> list:
    """The form's fields read from a validated scenario (None where the field does not apply)."""
    arrivals = scenario.workload.arrivals
    return [
        scenario.name,
        scenario.seed,
        scenario.hardware.name,
        scenario.model.name,
        scenario.par.tp,
        scenario.replicas,
        getattr(arrivals, "rate_per_s", None),
        scenario.stop.requests,
        scenario.scheduler.max_num_seqs,
        scenario.scheduler.max_num_batched_tokens,
        scenario.stack,
        scenario.cost.basis,
        own_price(scenario.cost.per_device_hour_usd),  # a per-preset mapping is not one field's value
    ]


def apply_form(data: dict, values: list) -> tuple[dict, list[str]]:
    """The raw mapping with the changed form fields set, and those edits as `key=value` overrides.
    A field equal to the scenario's current value is left alone, so a patched preset stays patched."""
    current = form_values(scenario_from_dict(data))
    edits = []
    for (path, _label), new, old in zip(FORM_FIELDS, values, current, strict=True):
        if new is None or new == "" or new == old:
            continue
        if path == "cost.per_device_hour_usd":
            new = own_price(new)
            if new is None or new == old:
                continue
        if path == "cluster.replicas":
            cluster = {k: v for k, v in (data.get("cluster") or {}).items() if k != "devices"}
            data = set_path(data, "cluster", {**cluster, "replicas": new})
        else:
            data = set_path(data, path, new)
        edits.append(f"{path}={new}")
    return data, edits


# ---- a run, kept small for the browser -----------------------------------------------------------------
def _order_stats(values: pd.Series) -> list[float]:
    """At most CDF_POINTS evenly spaced order statistics: the same CDF, drawn with fewer points."""
    v = np.sort(values.dropna().to_numpy())
    if len(v) > CDF_POINTS:
        v = v[np.linspace(0, len(v) - 1, CDF_POINTS).round().astype(int)]
    return v.tolist()


def compact(result: Result, label: str, data: dict) -> dict:
    """What the page keeps of a run: its scenario mapping, summary, per-class table, latency CDF
    points and a thinned timeseries."""
    ts = result.timeseries
    if len(ts) > TIMESERIES_ROWS:
        ts = ts.iloc[:: len(ts) // TIMESERIES_ROWS + 1]
    return {
        "label": label,
        "scenario": data,
        "summary": result.summary.to_dict(),
        "classes": result.classes.to_dict("records"),
        "latency": {m: _order_stats(result.requests[m]) for m in ("ttft_s", "tpot_s", "e2e_s")},
        "timeseries": ts[["time_s", "replica", "batch_size", "kv_used_fraction", "in_system"]].to_dict(
            "list"
        ),
    }


def run_label(scenario: Scenario) -> str:
    return f"{scenario.name} ({scenario.replicas}x{scenario.par.devices} {scenario.hardware.name})"


def run_job(data: dict, label: str, *, progress: Callable[[float | None, str], None]) -> dict:
    """A background job (`dashboard.jobs`): simulate the scenario mapping `data`, reporting the share
    of requests finished as it goes, and keep the run by `compact` under `label`."""
    sc = scenario_from_dict(data)
    requests = make_requests(sc)
    total, done = len(requests), 0

    def finished(k: int) -> None:
        nonlocal done
        done += k
        if done < total:
            progress(100 * done / total, f"{done:,} / {total:,} requests")

    result = run(sc, progress=finished, requests=requests)
    progress(100, f"{total:,} requests in {result.summary.sim_wall_s:.2f} s")
    return compact(result, label, data)


def latency_frame(run: dict) -> pd.DataFrame:
    """A kept run's latency points as columns (NaN-padded to equal length) for `latency_cdfs`."""
    return pd.DataFrame({m: pd.Series(v, dtype=float) for m, v in run["latency"].items()})


# ---- the compare table: human units, SLO verdicts, the change between the first and last run ---------
SLO_METRICS = (("ttft", "TTFT"), ("tpot", "TPOT"), ("e2e", "end to end"))
SLO_TARGET, SLO_VERDICT = "SLO target", "SLO verdict"


def slo_row(name: str) -> str:
    """The compare table's row for one SLO metric: 'TTFT vs SLO'."""
    return f"{name} vs SLO"


@dataclass(frozen=True)
class SloCheck:
    """One latency target of a run: `metric` (ttft, tpot, e2e) at `percentile` within `limit_s`,
    for the whole run or one class (`scope`), and what the run achieved (None: not measured, or a
    percentile the summary does not keep)."""

    metric: str
    percentile: float
    limit_s: float
    achieved_s: float | None
    scope: str | None = None

    @property
    def passed(self) -> bool | None:
        return None if self.achieved_s is None else self.achieved_s <= self.limit_s

    def text(self) -> str:
        """'PASS 298 ms ≤ 1 s (p99)', 'MISS 1.2 s > 1 s (p99, class chat)'."""
        where = f"p{self.percentile:g}" + (f", class {self.scope}" if self.scope else "")
        limit = seconds_ci(self.limit_s)
        if self.achieved_s is None:
            return f"not measured ({where} ≤ {limit})"
        verdict, sign = ("PASS", "≤") if self.passed else ("MISS", ">")
        return f"{verdict} {seconds_ci(self.achieved_s)} {sign} {limit} ({where})"


def _percentile_key(metric: str, percentile: float) -> str | None:
    """The summary field of `metric` at `percentile`, if the summary keeps that percentile."""
    key = f"{metric}_p{percentile:g}_s"
    return key if key in FIELDS else None


def slo_checks(data: dict | None, summary: Summary, classes: list[dict] | None = None) -> list[SloCheck]:
    """Every latency target a run's scenario mapping `data` sets (its SLO, and each class's own),
    against what the run achieved: the summary's percentile for the run's SLO, the class's row of
    the per-class table for a class's."""
    if not data:
        return []
    try:
        scenario = schema.scenario_from_dict(data)
    except ScenarioError:
        return []
    by_class = {row.get("class"): row for row in classes or []}
    scopes = [(None, scenario.slo, summary.to_dict())] + [
        (c.name, c.slo, by_class.get(c.name, {})) for c in scenario.workload.classes if c.slo is not None
    ]
    checks = []
    for scope, slo, achieved in scopes:
        if slo is None:
            continue
        for metric, _ in SLO_METRICS:
            limit = getattr(slo, f"{metric}_s")
            if limit is None:
                continue
            key = _percentile_key(metric, slo.percentile)
            value = achieved.get(key) if key else None
            checks.append(
                SloCheck(metric, slo.percentile, limit, None if is_missing(value) else value, scope)
            )
    return checks


def _slo_cells(checks: list[SloCheck], s: Summary) -> dict[str, str]:
    """The SLO rows of one run's column: its targets, each metric's worst check, and the verdict
    (a run that rejected requests or could not keep up misses whatever its percentiles say)."""
    if not checks:
        return {SLO_TARGET: "none set", **{slo_row(n): MISSING for _, n in SLO_METRICS}, SLO_VERDICT: MISSING}
    targets = [
        f"{name} ≤ {seconds_ci(c.limit_s)}"
        for c in checks
        if c.scope is None
        for m, name in SLO_METRICS
        if c.metric == m
    ]
    per_class = sorted({c.scope for c in checks if c.scope})
    cells = {
        SLO_TARGET: ", ".join(targets)
        + (f" at p{checks[0].percentile:g}" if targets else "")
        + (f"{'; ' if targets else ''}per class: {', '.join(per_class)}" if per_class else "")
    }
    for metric, name in SLO_METRICS:
        mine = [c for c in checks if c.metric == metric]
        worst = min(
            mine, key=lambda c: (c.passed is not False, c.passed is not None, c.limit_s), default=None
        )
        cells[slo_row(name)] = worst.text() if worst else "no target"
    failed = [
        name for metric, name in SLO_METRICS if any(c.metric == metric and c.passed is False for c in checks)
    ]
    if s.requests_rejected:
        failed.append(f"{count(s.requests_rejected)} rejected")
    if s.overloaded:
        failed.append("overloaded")
    unmeasured = any(c.passed is None for c in checks)
    cells[SLO_VERDICT] = f"MISS ({', '.join(failed)})" if failed else "not measured" if unmeasured else "PASS"
    return cells


def _cell(s: Summary, key: str) -> str:
    """A compared field as a person reads it, with its confidence interval where it has one."""
    value = s.metric(key)
    if key not in INTERVAL_FIELDS:
        return labels.text(key, value)
    if key.endswith("_s") or key == "slo_attainment":
        return estimate(s, key)
    lo, hi = (s.metric(name) for name in ci_names(key))
    ci = interval(lo, hi)
    return labels.text(key, value) + (f" {ci}" if ci != MISSING else "")


def _column(run: dict) -> dict[str, str]:
    """One run's column: what was measured and any overload, each compared field, and after the
    latencies the SLO rows."""
    s = Summary(**run["summary"])
    cells = {"measured requests": measured(s) or MISSING, "overloaded": overload(s) or "no"}
    for key, label in COMPARED:
        cells[label] = _cell(s, key)
        if key == "e2e_p99_s":
            cells |= _slo_cells(slo_checks(run.get("scenario"), s, run.get("classes")), s)
    cells[COST_BASIS] = s.cost_basis or MISSING
    return cells


def change(key: str, first: Any, last: Any) -> tuple[str, str | None]:
    """(text, 'better' | 'worse' | None) for `key` going from `first` to `last`: a share in
    percentage points ('+3.1 pp'), anything else relative ('-12%'); judged by `sim.report.labels.better`."""
    if is_missing(first) or is_missing(last) or isinstance(first, bool) or isinstance(last, bool):
        return MISSING, None
    first, last = float(first), float(last)
    if labels.quantity(key).kind == "fraction":
        diff = round((last - first) * 100, 9)
        written = f"{diff:+.1f} pp"
    elif first == 0:
        return ("no change" if last == 0 else "new"), None
    else:
        diff = round((last / first - 1) * 100, 9)
        written = f"{diff:+.1f}%" if abs(diff) < 10 else f"{diff:+,.0f}%"
    if abs(diff) < 0.05:
        return "no change", None
    direction = labels.better(key)
    if direction is None:
        return written, None
    return written, "better" if (diff < 0) == (direction == "lower") else "worse"


def run_number(label: str) -> str:
    """'#3' of a kept run's label '#3 chat-h100 (2x1 h100-sxm)'; the label itself otherwise."""
    first = label.split(" ", 1)[0]
    return first if first.startswith("#") else label


def change_header(runs: list[dict]) -> str | None:
    """The change column's header, 'change #3 vs #1'; None with fewer than two runs."""
    if len(runs) < 2:
        return None
    return f"change {run_number(runs[-1]['label'])} vs {run_number(runs[0]['label'])}"


def compare_table(runs: list[dict]) -> pd.DataFrame:
    """One row per compared field (with its interval where it has one), each run's SLO targets and
    verdicts, one column per run of text in human units (ms, %, $), and with two runs or more the
    change from the first run to the last (`change_header`)."""
    table = pd.DataFrame({run["label"]: _column(run) for run in runs})
    header = change_header(runs)
    if header is not None:
        table[header] = pd.Series(change_tones(runs)).map(lambda t: t[0])
        table[header] = table[header].fillna("")
    return table


def change_tones(runs: list[dict]) -> dict[str, tuple[str, str | None]]:
    """Row label -> (change text, tone) between the first and last of `runs`, for the compared
    fields (the SLO and bookkeeping rows have none)."""
    if len(runs) < 2:
        return {}
    first, last = Summary(**runs[0]["summary"]), Summary(**runs[-1]["summary"])
    return {label: change(key, first.metric(key), last.metric(key)) for key, label in COMPARED}
