"""A sweep's results folder, read for the explorer page.

`ctxsim sweep --out DIR` writes one row per point: `DIR/results.parquet` when the sweep finished,
`DIR/points/*.parquet` (one row each) while it runs or after it was stopped, and `DIR/sweep.json`
naming the swept parameters. A row holds the point's parameters (dotted scenario paths), `error`,
and every summary field. Folders are only opened below the dashboard's data root.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from sim.report import labels
from sim.report.sweep import pareto_mask

RESULTS = "results.parquet"
POINTS = "points"
MANIFEST = "sweep.json"
BOOKKEEPING = {"point_id", "point", "label", "error", "point_wall_s", "sim_wall_s", "sim_events"}
KEY_METRICS = [
    "cost_per_1m_output_tokens_usd",
    "ttft_p99_s",
    "tpot_p99_s",
    "e2e_p99_s",
    "throughput_rps",
    "goodput_rps",
    "slo_attainment",
    "devices",
    "cost_per_hour_usd",
]
"""The metrics the points table shows first, after the swept parameters."""
MAX_DISCRETE = 12
"""A swept numeric parameter with at most this many values is coloured as categories."""


class SweepFolderError(ValueError):
    """A folder that is not a readable sweep, or lies outside the data root."""


def is_sweep(folder: Path) -> bool:
    return (folder / RESULTS).is_file() or any((folder / POINTS).glob("*.parquet"))


def find_sweeps(root: Path, depth: int = 3) -> list[str]:
    """Sweep folders under `root` (at most `depth` levels down), as paths relative to it."""
    found, frontier = [], [root]
    for _ in range(depth + 1):
        nxt = []
        for folder in frontier:
            if is_sweep(folder):
                found.append(folder.relative_to(root).as_posix() or ".")
            nxt += (
                [
                    d
                    for d in sorted(folder.iterdir())
                    if d.is_dir() and not d.name.startswith((".", "__")) and d.name != POINTS
                ]
                if folder.is_dir()
                else []
            )
        frontier = nxt
    return sorted(found)


def resolve(root: Path, relative: str) -> Path:
    """`relative` inside `root`; anything that escapes it is refused."""
    folder = (root / relative).resolve()
    if not folder.is_relative_to(root.resolve()):
        raise SweepFolderError(f"{relative}: outside the folder the dashboard serves ({root})")
    if not is_sweep(folder):
        raise SweepFolderError(f"{relative}: no {RESULTS} or {POINTS}/*.parquet there")
    return folder


def read_results(folder: Path) -> tuple[pd.DataFrame, list[str]]:
    """(one row per point, the swept parameters). Point files are read when the sweep has no
    combined table yet; parameters come from the manifest, or are the columns before `error`."""
    if (folder / RESULTS).is_file():
        df = pd.read_parquet(folder / RESULTS)
    else:
        df = pd.concat(
            [pd.read_parquet(p) for p in sorted((folder / POINTS).glob("*.parquet"))], ignore_index=True
        )
        if "point" in df:
            df = df.sort_values("point", kind="stable").reset_index(drop=True)
    params = []
    if (folder / MANIFEST).is_file():
        params = [p for p in json.loads((folder / MANIFEST).read_text()).get("params", []) if p in df]
    if not params and "error" in df:
        params = [c for c in df.columns[: list(df.columns).index("error")] if c not in BOOKKEEPING]
    return df, params


def metric_columns(df: pd.DataFrame, params: list[str]) -> list[str]:
    return [
        c
        for c in df.columns
        if c not in params and c not in BOOKKEEPING and pd.api.types.is_numeric_dtype(df[c])
    ]


def pareto_front(df: pd.DataFrame, x: str, y: str, maximize_y: bool = False) -> pd.Series:
    """True for points no other point beats: lower x and lower y (or higher, with `maximize_y`),
    at least as good on both and better on one. Points missing either value are never on it."""
    return pareto_mask(df[x], -df[y].astype(float) if maximize_y else df[y])


def pivot(df: pd.DataFrame, rows: str, columns: str, metric: str) -> pd.DataFrame:
    """`metric` averaged over the other parameters for each (rows, columns) pair."""
    return df.pivot_table(index=rows, columns=columns, values=metric, aggfunc="mean")


def is_discrete(df: pd.DataFrame, column: str, params: list[str]) -> bool:
    """Whether to colour by `column` as categories (one colour and legend entry per value): text and
    yes/no columns, and swept parameters with a few values (tp 1, 2, 4); other numbers get a scale."""
    values = df[column]
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return True
    return column in params and values.nunique(dropna=True) <= MAX_DISCRETE


def mixed_loads(df: pd.DataFrame, params: list[str], front: pd.Series) -> dict[str, list]:
    """The swept load parameters (`sim.report.labels.is_load`: arrival rate, users) whose values differ among
    the Pareto front's points, with those values: a front across loads compares a configuration at
    light load with another at heavy load, and looks cheaper or faster for it."""
    on_front = df[front.to_numpy(bool)]
    found = {}
    for p in params:
        if labels.is_load(p) and p in on_front and on_front[p].nunique(dropna=True) > 1:
            found[p] = sorted(on_front[p].dropna().unique().tolist())
    return found


def ordered_columns(df: pd.DataFrame, params: list[str]) -> list[str]:
    """The points table's columns: the swept parameters, the key metrics, any error, then the rest;
    the point's id left out (its number stays, last)."""
    first = [*params, *(m for m in KEY_METRICS if m in df), *(["error"] if "error" in df else [])]
    rest = [c for c in df.columns if c not in first and c not in ("point_id", "point", "label")]
    return [*first, *rest, *(c for c in ("point", "label") if c in df)]


def table(df: pd.DataFrame, params: list[str]) -> tuple[list[dict], list[dict]]:
    """(AG Grid column definitions, rows) for the points table. Every header is the column's human
    label with its unit (`sim.report.labels.axis`); a numeric column holds its values in that unit, so it
    sorts and filters as numbers, and shows each as a person writes it ('3.35', '15,040'); other
    columns show `sim.report.labels.text`. Fields are c0, c1, ... (names have dots) with text in c0_t."""
    columns, data = [], {}
    for i, c in enumerate(ordered_columns(df, params)):
        field, values = f"c{i}", df[c]
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        definition = {"field": field, "headerTooltip": c, "pinned": "left" if c in params else None}
        if numeric:
            ax = labels.axis(c, values)
            data[field] = [labels.scaled(v, ax) for v in values]
            data[f"{field}_t"] = [labels.axis_number(v) for v in data[field]]
            definition |= {
                "headerName": ax.title,
                "filter": "agNumberColumnFilter",
                "valueFormatter": {"function": f"params.data.{field}_t"},
                "type": "rightAligned",
            }
        else:
            data[field] = [labels.text(c, v) if v is not None else "" for v in values]
            definition["headerName"] = labels.label(c)
        columns.append(definition)
    rows = [dict(zip(data, row, strict=True)) for row in zip(*data.values(), strict=True)] if data else []
    return columns, rows


def options(columns: list[str]) -> list[dict]:
    """Dropdown options for `columns`: each named by its human label (its name too where two share
    a label), valued by the column."""
    names = [labels.label(c) for c in columns]
    return [
        {"label": name if names.count(name) == 1 else f"{name} ({c})", "value": c}
        for c, name in zip(columns, names, strict=True)
    ]
