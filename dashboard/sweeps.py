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

from sim.report.sweep import pareto_mask

RESULTS = "results.parquet"
POINTS = "points"
MANIFEST = "sweep.json"
BOOKKEEPING = {"point_id", "point", "label", "error", "point_wall_s", "sim_wall_s", "sim_events"}


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
