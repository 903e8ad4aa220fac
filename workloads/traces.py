"""Real request traces: the Azure LLM inference CSV, Mooncake JSONL, Vidur/Splitwise CSVs, and any
CSV or JSONL file with a column mapping.

A trace is a shop's till roll: one line per customer, with when they came and how much they asked for
(and, in Mooncake, fingerprints of the pages they brought, 512 tokens each, so a prefix cache can
tell when two customers brought the same pages). The file is read in blocks of whole lines (8 MB
each), so a 10M-row trace never sits in memory as text or Python objects. A fast columnar parser
(pandas for CSV, pyarrow for JSONL) reads each block; a block it rejects is read again line by line,
which names the first bad line or, with `skip_bad_rows`, skips and counts the bad lines. This module
streams the blocks and replays the rows; `workloads.trace_format` says how a file is laid out and
`workloads.trace_rows` parses a block.

Arrival times come back in seconds from the file's first row. Rows must be in time order: a row
earlier than the one before it is refused (naming both times), never silently sorted, since a
misordered file usually means a wrong column or a concatenation the user should know about.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Self

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from hardware.base import Frozen
from workloads.blocks import mix
from workloads.trace_format import BOM, FORMATS, Columns, Layout, TraceError, TraceFormat, open_trace
from workloads.trace_rows import TraceRows, concat_rows, parse_fast, parse_slow

BLOCK_BYTES = 8 << 20


class TraceReplay(Frozen):
    """Replay a trace file as requests.

    `format` is detected from the header or first line when `auto`; `csv`/`jsonl` need `columns`.
    `time_scale` stretches the clock (2.0: the same requests over twice the time, half the rate).
    `rate_multiplier` keeps the clock and changes the count: each row is replayed
    `floor(r)` or `floor(r) + 1` times (the latter with probability `r - floor(r)`), the original at
    its own time and each extra copy at a uniform time before the next row, with its block ids
    salted by copy number, so copies behave like further users with the same habits and never
    share blocks with the original. With `replay_timestamps: false`, or a trace without timestamps,
    the workload's arrival process supplies the times and rows are taken in file order."""

    path: Path
    format: TraceFormat = "auto"
    columns: Columns | None = None
    time_scale: float = Field(default=1.0, gt=0)
    rate_multiplier: float = Field(default=1.0, gt=0)
    replay_timestamps: bool = True
    skip_bad_rows: bool = False

    @model_validator(mode="after")
    def _columns_for_generic(self) -> Self:
        if self.format in ("csv", "jsonl") and self.columns is None:
            raise ValueError(f"format {self.format} needs columns: which field holds prompt_tokens, ...")
        if self.format in FORMATS and self.columns is not None:
            raise ValueError(f"format {self.format} has fixed columns; use format csv or jsonl to map "
                             "your own")
        return self


# ---- reading --------------------------------------------------------------------------------------
def iter_rows(layout: Layout, skip_bad_rows: bool = False,
              block_bytes: int = BLOCK_BYTES) -> Iterator[TraceRows]:
    """The file's rows, one block of lines at a time, with arrival times from the first row."""
    origin, last, seen = None, None, 0
    for first_line, block, lines in _blocks(layout, block_bytes):
        rows, times = parse_fast(layout, block, lines)
        if rows is None:
            rows, times = parse_slow(layout, block, first_line, skip_bad_rows)
        if times is not None and len(times):
            _check_order(layout, times, last, seen)
            origin = times[0] if origin is None else origin
            last = times[-1]
            arrival = (times - origin) / 1e9 if layout.columns.arrival_datetime else \
                (times - origin) * layout.columns.arrival_unit_s
            rows = replace(rows, arrival_s=arrival.astype(np.float64))
        seen += len(rows)
        if len(rows) or rows.skipped:
            yield rows


def _check_order(layout: Layout, times: np.ndarray, last, seen: int) -> None:
    """Refuse a block whose arrival times go backwards (within it, or from the block before,
    whose last time is `last`); `seen` rows came before it."""
    series = times if last is None else np.concatenate([[last], times])
    back = np.flatnonzero(np.diff(series) < 0)
    if not len(back):
        return
    i = int(back[0])
    row = seen + i + (1 if last is None else 0) + 1
    show = (lambda t: str(pd.Timestamp(int(t)))) if layout.columns.arrival_datetime else (lambda t: f"{t:g}")
    raise TraceError(f"{layout.path}: arrival column {layout.columns.arrival}: row {row:,} is earlier than "
                     f"the row before it ({show(series[i + 1])} < {show(series[i])}); timestamps must not "
                     "decrease: sort the file by arrival time")


def read_rows(layout: Layout, skip_bad_rows: bool = False, max_rows: int | None = None) -> TraceRows:
    """Read whole blocks until at least `max_rows` rows (or the end); the caller cuts to the count."""
    parts, count = [], 0
    for rows in iter_rows(layout, skip_bad_rows):
        parts.append(rows)
        count += len(rows)
        if max_rows is not None and count >= max_rows:
            break
    return _nonempty(layout, parts)


def _nonempty(layout: Layout, parts: list[TraceRows]) -> TraceRows:
    rows = concat_rows(parts) if parts else None
    if rows is None or len(rows) == 0:
        skipped = f" ({rows.skipped} malformed rows skipped)" if rows is not None else ""
        raise TraceError(f"{layout.path}: no rows to read{skipped}")
    return rows


def _blocks(layout: Layout, block_bytes: int) -> Iterator[tuple[int, bytes, int]]:
    """(number of the block's first line, whole lines, how many) triples; the CSV header is not part of
    any block."""
    try:
        f = layout.path.open("rb")
    except OSError as exc:
        raise TraceError(f"{layout.path}: cannot read: {exc.strerror}") from None
    with f:
        if f.read(len(BOM)) != BOM:
            f.seek(0)
        line, carry = 1, b""
        if layout.container == "csv":
            f.readline()
            line = 2
        while True:
            data = f.read(block_bytes)
            if not data:
                if carry.strip():
                    yield line, carry, carry.count(b"\n") + (not carry.endswith(b"\n"))
                return
            data = carry + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data
                continue
            block, carry = data[:cut], data[cut:]
            lines = block.count(b"\n")
            yield line, block, lines
            line += lines


# ---- replay ---------------------------------------------------------------------------------------
def replay(spec: TraceReplay, rng: np.random.Generator, requests: int | None = None,
           duration_s: float | None = None) -> TraceRows:
    """The trace's rows as replayed requests (time-scaled, rate-multiplied, sorted), cut to the
    first `requests` or to arrivals within `duration_s`."""
    layout = open_trace(spec.path, spec.format, spec.columns)
    if layout.columns.arrival is None or not spec.replay_timestamps:
        raise TraceError(f"{spec.path}: no timestamps to replay; the workload's arrivals must supply them")
    parts, total = [], 0
    for rows in iter_rows(layout, spec.skip_bad_rows):
        copies = _copies(len(rows), spec.rate_multiplier, rng)
        parts.append((rows, copies))
        total += int(copies.sum())
        if requests is not None and total >= requests:
            break
        if duration_s is not None and len(rows) and rows.arrival_s[-1] * spec.time_scale > duration_s:
            break
    rows = _nonempty(layout, [p[0] for p in parts])
    rows = _multiply(rows, np.concatenate([p[1] for p in parts]), spec.time_scale, rng)
    keep = len(rows) if requests is None else min(requests, len(rows))
    if duration_s is not None:
        keep = int(np.searchsorted(rows.arrival_s, duration_s, side="right"))
    return rows.take(np.arange(keep))


def _copies(n: int, r: float, rng: np.random.Generator) -> np.ndarray:
    """How many times each of n rows is replayed: floor(r), plus one with probability r - floor(r)."""
    whole = np.full(n, math.floor(r), np.int64)
    return whole if r == math.floor(r) else whole + (rng.random(n) < r - math.floor(r))


def _multiply(rows: TraceRows, copies: np.ndarray, time_scale: float, rng: np.random.Generator) -> TraceRows:
    """Row i replayed `copies[i]` times; copy 0 at its own time, copies >= 1 jittered within the gap to
    the next row and with salted block ids; sorted by time."""
    base = rows.arrival_s * time_scale
    if np.all(copies == 1):
        return replace(rows, arrival_s=base)
    index = np.repeat(np.arange(len(rows)), copies)
    copy = np.arange(len(index)) - np.repeat(np.cumsum(copies) - copies, copies)
    gap = np.diff(base, append=base[-1])
    arrival = base[index] + np.where(copy > 0, rng.random(len(index)) * gap[index], 0.0)
    out = rows.take(index)
    values = out.hash_values
    if values is not None and np.any(copy > 0):
        owner = np.repeat(copy, np.diff(out.hash_offsets))
        values = np.where(owner > 0, mix(owner, values), values)
    order = np.argsort(arrival, kind="stable")
    out = TraceRows(arrival, out.prompt_tokens, out.output_tokens, values, out.hash_offsets,
                    rows.block_tokens, rows.skipped)
    return out.take(order)

