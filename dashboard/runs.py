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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from hardware import hardware_names
from hardware.catalog import read_yaml
from hardware.yamltext import load_yaml
from sim import scenario as schema
from sim.api import Result, make_requests, run
from sim.engine.steady import ci_names
from sim.engine.summary import Summary
from sim.format import interval
from sim.report.readout import measured, overload
from sim.runnable import scenario_from_dict
from sim.scenario import Scenario, ScenarioError, set_path
from workloads import model_names

CDF_POINTS = 1000
TIMESERIES_ROWS = 3000
COMPARED = [
    ("requests_finished", "requests finished"),
    ("requests_rejected", "requests rejected"),
    ("throughput_rps", "throughput (req/s)"),
    ("output_tokens_per_s", "output tokens/s"),
    ("ttft_p50_s", "TTFT p50 (s)"),
    ("ttft_p99_s", "TTFT p99 (s)"),
    ("tpot_p50_s", "TPOT p50 (s)"),
    ("tpot_p99_s", "TPOT p99 (s)"),
    ("e2e_p99_s", "e2e p99 (s)"),
    ("goodput_rps", "goodput (req/s)"),
    ("slo_attainment", "SLO attainment"),
    ("kv_peak_fraction", "KV peak"),
    ("preemptions", "preemptions"),
    ("compute_bound_time_fraction", "compute-bound share"),
    ("devices", "devices"),
    ("cost_per_hour_usd", "$ / hour"),
    ("cost_per_1m_output_tokens_usd", "$ / 1M output tokens"),
]


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
                f"{key}: {name!r} is not a preset; an uploaded scenario names presets "
                f"({', '.join(names)}) or gives the fields inline"
            )


def parse_upload(contents: str, filename: str, max_bytes: int, runnable: bool = True) -> dict:
    """A `dcc.Upload` data URL as a scenario mapping, validated against the schema and, when
    `runnable`, checked to run as it stands (`ctxsim run`'s checks; `ctxsim plan` takes a scenario
    whose own parallelism does not fit, since it chooses tp itself). Raises `ScenarioError` naming
    the file and the field."""
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
        (scenario_from_dict if runnable else schema.scenario_from_dict)(data)
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
]


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
    ]


def apply_form(data: dict, values: list) -> tuple[dict, list[str]]:
    """The raw mapping with the changed form fields set, and those edits as `key=value` overrides.
    A field equal to the scenario's current value is left alone, so a patched preset stays patched."""
    current = form_values(scenario_from_dict(data))
    edits = []
    for (path, _label), new, old in zip(FORM_FIELDS, values, current, strict=True):
        if new is None or new == "" or new == old:
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


INTERVALS = {
    "throughput_rps": "throughput interval (req/s)",
    "ttft_p99_s": "TTFT p99 interval (s)",
    "tpot_p99_s": "TPOT p99 interval (s)",
    "e2e_p99_s": "e2e p99 interval (s)",
    "goodput_rps": "goodput interval (req/s)",
    "slo_attainment": "SLO attainment interval",
}
"""The compared fields shown with their confidence interval, in a row of its own under the field."""


def _compared_cells(s: Summary) -> dict[str, Any]:
    """One run's column: what was measured and any overload, then each compared field, followed by
    its interval (text, a dash when too few samples) where it has one."""
    cells: dict[str, Any] = {"measured requests": measured(s), "overloaded": overload(s) or "no"}
    for key, label in COMPARED:
        cells[label] = s.metric(key)
        if key in INTERVALS:
            cells[INTERVALS[key]] = interval(*(s.metric(name) for name in ci_names(key)))
    return cells


def compare_table(runs: list[dict]) -> pd.DataFrame:
    """One row per compared summary field (and interval), one column per run."""
    return pd.DataFrame({run["label"]: _compared_cells(Summary(**run["summary"])) for run in runs})
