"""A sweep: one base scenario and many what-ifs, each a point run with `sim.api.run`.

A sweep file names a base scenario (a path, relative to the sweep file, or an inline mapping), fixed
overrides under `set:`, and the swept values: `grid:` (every combination, first path varying
slowest) or `list:` (explicit points). Paths are the dotted paths of `--set`, so
`hardware.memory.hbm.bandwidth_bytes_per_s` reaches into a preset and a memory tier by name:

    name: hbm-bandwidth
    base: ../chat-h100.yaml
    set: {stop.requests: 300}
    grid:
      hardware.memory.hbm.bandwidth_bytes_per_s: ["2 TB/s", "3.35 TB/s", "4.8 TB/s"]
      cluster.replicas: [1, 2]

Every point is validated before anything runs. A point's identity is a hash of its fully resolved
scenario (base, overrides and the presets they name), so a resumed sweep recognises finished
points, and a changed base or preset gives new identities instead of mixing old results in.

Points run in local worker processes or as Ray tasks; `execute()` yields one result row per point
in completion order and leaves storing them to the caller.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from pydantic import ConfigDict, Field, ValidationError, model_validator

from hardware.base import Frozen
from hardware.catalog import read_yaml
from sim.runnable import scenario_from_dict
from sim.scenario import Scenario, ScenarioError, format_error, parse_override, rebase_paths, set_path

PARENT_POLL_S = 0.5
Scalar = str | int | float | bool


class SweepError(ValueError):
    """A sweep file that cannot run; the message names the path and value at fault."""


class SweepSpec(Frozen):
    """The sweep file. `grid` maps dotted paths to value lists; `list` is a list of points, each a
    mapping of dotted paths to values."""

    model_config = ConfigDict(populate_by_name=True)

    name: str = "sweep"
    base: str | dict[str, Any]
    set: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, tuple[Any, ...]] | None = None
    points: tuple[dict[str, Any], ...] | None = Field(default=None, alias="list")

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.grid is None) == (self.points is None):
            raise ValueError("give exactly one of grid or list")
        if self.grid is not None:
            if not self.grid:
                raise ValueError("grid: no paths to sweep")
            for path, values in self.grid.items():
                if not values:
                    raise ValueError(f"grid: {path}: empty list of values")
        if self.points is not None:
            if not self.points:
                raise ValueError("list: no points")
            for i, point in enumerate(self.points):
                if not point:
                    raise ValueError(f"list: point {i + 1} sets nothing")
        for path in [*self.set, *self.params]:
            if not path or not all(path.split(".")):
                raise ValueError(f"{path!r}: not a dotted path such as cluster.replicas")
        return self

    @property
    def params(self) -> tuple[str, ...]:
        """The swept paths, in file order."""
        if self.grid is not None:
            return tuple(self.grid)
        return tuple(dict.fromkeys(path for point in self.points or () for path in point))

    def assignments(self) -> list[tuple[tuple[str, Any], ...]]:
        """Each point's (path, value) pairs: the Cartesian product of the grid, or the list."""
        if self.grid is not None:
            paths = list(self.grid)
            return [tuple(zip(paths, combo, strict=True)) for combo in itertools.product(*self.grid.values())]
        return [tuple(point.items()) for point in self.points or ()]


@dataclass(frozen=True)
class Point:
    """One scenario of the sweep. `params` are the swept values as resolved by validation (SI
    numbers for unit strings), keyed by dotted path; `label` is the human-readable assignment."""

    index: int
    point_id: str
    label: str
    params: dict[str, Scalar | None]
    scenario: Scenario


@dataclass(frozen=True)
class Sweep:
    name: str
    params: tuple[str, ...]
    points: tuple[Point, ...]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _label(assignment: Sequence[tuple[str, Any]]) -> str:
    return ", ".join(f"{path}={_text(value)}" for path, value in assignment)


def point_id(scenario: Scenario) -> str:
    """16 hex digits of the SHA-256 of the resolved scenario: equal scenarios, equal ids."""
    canonical = json.dumps(scenario.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def resolved(scenario: Scenario, path: str, given: Any) -> Scalar | None:
    """The validated value at `path` (e.g. 2e12 for "2 TB/s"); the given value where the path ends
    at a mapping (a preset name such as `hardware: b200`), as text when it is not a scalar."""
    node: Any = scenario.model_dump(mode="json")
    for key in path.split("."):
        if isinstance(node, dict):
            node = node.get(key)
        elif isinstance(node, list):
            node = next((item for item in node if isinstance(item, dict) and item.get("name") == key), None)
        else:
            node = None
    if node is None or isinstance(node, Scalar):
        return node
    return given if isinstance(given, Scalar) else _text(given)


def build(spec: SweepSpec, base: dict, max_reported: int = 1) -> Sweep:
    """Validate every point of `spec` over the `base` scenario mapping. Raises SweepError naming
    the first bad point's assignment (path=value) and the field at fault, with a count of the rest."""
    data = base
    for path, value in spec.set.items():
        data = _set(data, path, value, f"set: {path}={_text(value)}")
    points, errors, seen = [], [], {}
    assignments = spec.assignments()
    for index, assignment in enumerate(assignments):
        label = _label(assignment)
        where = f"point {index + 1} of {len(assignments)} ({label})"
        try:
            point_data = data
            for path, value in assignment:
                point_data = _set(point_data, path, value, where)
            scenario = _validate(point_data, where)
        except SweepError as exc:
            errors.append(str(exc))
            continue
        pid = point_id(scenario)
        if pid in seen:
            errors.append(f"{where}: the same scenario as point {seen[pid].index + 1} ({seen[pid].label})")
            continue
        params = {path: resolved(scenario, path, value) for path, value in assignment}
        points.append(Point(index, pid, label, params, scenario))
        seen[pid] = points[-1]
    if errors:
        more = f" (and {len(errors) - max_reported} more bad points)" if len(errors) > max_reported else ""
        raise SweepError("; ".join(errors[:max_reported]) + more)
    return Sweep(spec.name, spec.params, tuple(points))


def _set(data: dict, path: str, value: Any, where: str) -> dict:
    try:
        return set_path(data, path, value)
    except ScenarioError as exc:
        raise SweepError(f"{where}: {str(exc).removeprefix('--set ')}") from None


def _validate(data: dict, where: str) -> Scenario:
    try:
        return scenario_from_dict(data)
    except ScenarioError as exc:
        message = str(exc).replace("Extra inputs are not permitted", "unknown field")
        raise SweepError(f"{where}: {message}") from None


def load_sweep(path: str | Path, overrides: Sequence[str] = ()) -> Sweep:
    """Read a sweep file and validate every point. A relative `base` resolves from the sweep file's
    folder, and relative file paths inside the base from the base's own folder (an inline base's
    from the sweep file's), as `load_scenario` resolves them. `overrides` (`key.path=value`, as
    `ctxsim sweep --set` takes them) apply to every point after the file's `set:`; a swept path is
    refused, since each point sets its own."""
    path = Path(path)
    try:
        raw = read_yaml(path)
        if "base" not in raw and {"hardware", "model", "workload"} & set(raw):
            raise SweepError(
                f"{path}: this is a scenario file; a sweep file names it as `base:` and adds "
                "`grid:` or `list:` (see examples/sweeps/), or run it with `ctxsim run`"
            )
        spec = SweepSpec.model_validate(raw)
    except ValidationError as exc:
        raise SweepError(f"{path}: {format_error(exc)}") from None
    except ValueError as exc:
        raise SweepError(str(exc)) from None
    spec = spec.model_copy(update={"set": {**spec.set, **_overrides(overrides, spec.params)}})
    if isinstance(spec.base, str):
        base_path = path.parent / spec.base
        try:
            base = rebase_paths(read_yaml(base_path), base_path.parent)
        except ValueError as exc:
            raise SweepError(f"{path}: base: {exc}") from None
    else:
        base = rebase_paths(spec.base, path.parent)
    try:
        return build(spec, base)
    except SweepError as exc:
        raise SweepError(f"{path}: {exc}") from None


def _overrides(items: Sequence[str], swept: Sequence[str]) -> dict[str, Any]:
    parsed = {}
    for item in items:
        try:
            key, value = parse_override(item)
        except ScenarioError as exc:
            raise SweepError(str(exc)) from None
        if key in swept:
            raise SweepError(f"--set {key}: swept by this file, so each point sets its own")
        parsed[key] = value
    return parsed


# ---- running ---------------------------------------------------------------------------------------
def run_point(point: Point) -> dict[str, Any]:
    """Simulate one point and return its result row: id, index, label, parameters, `error` (None,
    or the exception's last line when the point failed) and every summary field."""
    from sim.api import run

    started = time.perf_counter()
    try:
        summary, error = run(point.scenario).summary.to_dict(), None
    except Exception as exc:  # a failing point is recorded and the sweep goes on
        summary, error = {}, "".join(traceback.format_exception_only(exc)).strip()
    return {
        "point_id": point.point_id,
        "point": point.index,
        "label": point.label,
        **point.params,
        "error": error,
        **summary,
        "point_wall_s": time.perf_counter() - started,
    }


def _worker_init(parent_pid: int) -> None:
    """Worker initializer. Ctrl-C is the sweep process's to handle (it stops handing out points), so
    workers ignore SIGINT; and a worker ends when the sweep process dies (even by SIGKILL) instead
    of lingering as an orphan that computes points nobody will store."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _local(points: Sequence[Point], workers: int) -> Iterator[dict[str, Any]]:
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init, initargs=(os.getpid(),))
    try:
        pending = {pool.submit(run_point, p) for p in points}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _ray(points: Sequence[Point], address: str) -> Iterator[dict[str, Any]]:
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(
            address=None if address == "local" else address, logging_level="warning", log_to_driver=False
        )
    task = ray.remote(run_point)
    pending = [task.remote(p) for p in points]
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                yield ray.get(ref)
    finally:
        for ref in pending:
            ray.cancel(ref)
        if started_here:
            ray.shutdown()


def execute(
    points: Sequence[Point], workers: int = 1, ray_address: str | None = None
) -> Iterator[dict[str, Any]]:
    """Run `points` and yield each result row as its point finishes. `workers` local processes, or,
    given `ray_address` ("local" starts a Ray instance here, "auto" joins the running cluster, else
    a cluster address), one Ray task per point; Ray nodes need ctxsim installed."""
    if not points:
        return iter(())
    if ray_address is not None:
        return _ray(points, ray_address)
    return _local(points, max(1, min(workers, len(points))))
