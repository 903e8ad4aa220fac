"""A sweep's results folder, safe to kill at any moment.

    DIR/sweep.json            name, swept paths and point ids of the sweep last run here
    DIR/points/<id>.parquet   one row per finished point, each moved into place whole
    DIR/results.parquet       every point of the sweep, in sweep order (rebuilt at the end)
    DIR/report.html

A point's file appears by rename only after it is fully written, so a sweep killed even by SIGKILL
leaves whole point files and at most a stray `.NAME.tmp-*` file, which the next run removes. Point files
are named by point id, so running the same point twice replaces its row instead of adding one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.files import OutputError, atomic_write, check_writable

POINTS = "points"
MANIFEST = "sweep.json"
RESULTS = "results.parquet"
REPORT = "report.html"


def check_folder(out_dir: Path) -> None:
    """Refuse, before any work, a folder that is neither new, empty, nor a sweep folder of ours:
    a sweep adds files to its folder and resumes from them, so it must never adopt a user's."""
    if out_dir.exists() or out_dir.is_symlink():
        if out_dir.is_symlink() or not out_dir.is_dir():
            raise OutputError(f"--out {out_dir}: exists and is not a folder")
        if any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file():
            raise OutputError(
                f"--out {out_dir}: folder exists, is not empty and is not a sweep's results folder "
                f"(no {MANIFEST}); name a new folder"
            )
    check_writable(out_dir.parent, out_dir)


def prepare(out_dir: Path, name: str, params: Iterable[str], point_ids: Iterable[str]) -> None:
    """Create the folder, drop leftovers of a killed run, and record what this sweep is."""
    (out_dir / POINTS).mkdir(parents=True, exist_ok=True)
    for stray in [*(out_dir / POINTS).glob(".*.tmp-*"), *out_dir.glob(".*.tmp-*")]:
        stray.unlink(missing_ok=True)
    manifest = {"name": name, "params": list(params), "points": list(point_ids)}
    atomic_write(out_dir / MANIFEST, lambda p: p.write_text(json.dumps(manifest, indent=1) + "\n"))


def read_manifest(out_dir: Path) -> dict[str, Any]:
    path = out_dir / MANIFEST
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"{out_dir}: not a sweep folder ({MANIFEST}: {exc.strerror})") from None


def saved(out_dir: Path, failed_too: bool = True) -> set[str]:
    """Ids of the points with a stored row; without `failed_too`, only those that succeeded."""
    ids = set()
    for path in (out_dir / POINTS).glob("*.parquet"):
        if failed_too or pq.read_table(path, columns=["error"]).column(0)[0].as_py() is None:
            ids.add(path.stem)
    return ids


def write_point(out_dir: Path, row: dict[str, Any]) -> None:
    table = pa.Table.from_pylist([row])
    atomic_write(out_dir / POINTS / f"{row['point_id']}.parquet", lambda p: pq.write_table(table, p))


def collect(out_dir: Path, point_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Stored rows as one table in sweep order; only `point_ids` when given."""
    wanted = None if point_ids is None else set(point_ids)
    rows = [
        pq.read_table(p).to_pylist()[0]
        for p in sorted((out_dir / POINTS).glob("*.parquet"))
        if wanted is None or p.stem in wanted
    ]
    df = pd.DataFrame.from_records(rows)
    return df.sort_values("point", kind="stable").reset_index(drop=True) if len(df) else df


def write_results(out_dir: Path, results: pd.DataFrame, report_html: str) -> None:
    atomic_write(out_dir / RESULTS, lambda p: results.to_parquet(p, index=False))
    atomic_write(out_dir / REPORT, lambda p: p.write_text(report_html))
