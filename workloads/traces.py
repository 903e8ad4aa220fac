"""Real request traces: the Azure LLM inference CSV, Mooncake JSONL, Vidur/Splitwise CSVs, and any
CSV or JSONL file with a column mapping.

A trace is a shop's till roll: one line per customer, with when they came and how much they asked for
(and, in Mooncake, fingerprints of the pages they brought, 512 tokens each, so a prefix cache can
tell when two customers brought the same pages). The file is read in blocks of whole lines (8 MB
each), so a 10M-row trace never sits in memory as text or Python objects. A fast columnar parser
(pandas for CSV, pyarrow for JSONL) reads each block; a block it rejects is read again line by line,
which names the first bad line or, with `skip_bad_rows`, skips and counts the bad lines.

Arrival times come back in seconds from the file's first row. Rows must be in time order: a row
earlier than the one before it is refused (naming both times), never silently sorted, since a
misordered file usually means a wrong column or a concatenation the user should know about.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Self

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.json as pa_json
from pydantic import Field, model_validator

from hardware.base import Frozen
from workloads.blocks import mix
from workloads.lengths import MAX_TOKENS

BLOCK_BYTES = 8 << 20
BOM = b"\xef\xbb\xbf"


class Columns(Frozen):
    """Which field of a row holds what. `arrival` is None for a trace without timestamps; its values
    are numbers in units of `arrival_unit_s` seconds (1e-3 for milliseconds) or, with
    `arrival_datetime`, date-time strings. `block_hashes` (JSONL only) holds a list of prefix-block
    ids per row, each block covering `block_tokens` tokens."""

    arrival: str | None = None
    arrival_unit_s: float = Field(default=1.0, gt=0)
    arrival_datetime: bool = False
    prompt_tokens: str
    output_tokens: str
    block_hashes: str | None = None
    block_tokens: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.arrival_datetime and self.arrival is None:
            raise ValueError("arrival_datetime needs arrival: the column that holds the date-times")
        if (self.block_hashes is None) != (self.block_tokens is None):
            raise ValueError("give block_hashes and block_tokens together")
        return self


Container = Literal["csv", "jsonl"]
FORMATS: dict[str, tuple[Container, Columns]] = {
    "azure": ("csv", Columns(arrival="TIMESTAMP", arrival_datetime=True, prompt_tokens="ContextTokens",
                             output_tokens="GeneratedTokens")),
    "mooncake": ("jsonl", Columns(arrival="timestamp", arrival_unit_s=1e-3, prompt_tokens="input_length",
                                  output_tokens="output_length", block_hashes="hash_ids", block_tokens=512)),
    "vidur": ("csv", Columns(arrival="arrived_at", prompt_tokens="num_prefill_tokens",
                             output_tokens="num_decode_tokens")),
}
TraceFormat = Literal["auto", "azure", "mooncake", "vidur", "csv", "jsonl"]


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


class TraceError(ValueError):
    """A trace that cannot be read; the message names the file and, for a bad row, its line."""


@dataclass(frozen=True)
class Layout:
    """How to read one file: its container, its columns, and the CSV header's field names."""

    path: Path
    format: str
    container: Container
    columns: Columns
    header: tuple[str, ...] = ()


@dataclass(frozen=True)
class TraceRows:
    """Rows read from a trace, columnar. `arrival_s` is seconds from the file's first row (None
    without timestamps); block ids are flat: row i holds `hash_values[hash_offsets[i]:hash_offsets[i+1]]`.
    `skipped` counts malformed rows left out."""

    arrival_s: np.ndarray | None
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    hash_values: np.ndarray | None = None
    hash_offsets: np.ndarray | None = None
    block_tokens: int | None = None
    skipped: int = 0

    def __len__(self) -> int:
        return len(self.prompt_tokens)

    def take(self, index: np.ndarray) -> TraceRows:
        """The rows at `index`, in that order (repeats allowed)."""
        values, offsets = (None, None) if self.hash_values is None else \
            take_ragged(self.hash_values, self.hash_offsets, index)
        arrival = None if self.arrival_s is None else self.arrival_s[index]
        return TraceRows(arrival, self.prompt_tokens[index], self.output_tokens[index], values, offsets,
                         self.block_tokens, self.skipped)


def take_ragged(values: np.ndarray, offsets: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows `index` of a ragged array stored flat (`values` split at `offsets`)."""
    if len(index) == len(offsets) - 1 and np.array_equal(index, np.arange(len(index))):
        return values, offsets
    starts, lengths = offsets[index], np.diff(offsets)[index]
    new_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    within = np.arange(new_offsets[-1]) - np.repeat(new_offsets[:-1], lengths)
    return values[np.repeat(starts, lengths) + within], new_offsets


def concat_rows(parts: list[TraceRows]) -> TraceRows:
    first = parts[0]
    values = offsets = None
    if first.hash_values is not None:
        values = np.concatenate([p.hash_values for p in parts])
        lengths = np.concatenate([np.diff(p.hash_offsets) for p in parts])
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    arrival = None if first.arrival_s is None else np.concatenate([p.arrival_s for p in parts])
    return TraceRows(arrival, np.concatenate([p.prompt_tokens for p in parts]),
                     np.concatenate([p.output_tokens for p in parts]), values, offsets, first.block_tokens,
                     sum(p.skipped for p in parts))


# ---- format detection -----------------------------------------------------------------------------
def open_trace(path: str | Path, format: TraceFormat = "auto", columns: Columns | None = None) -> Layout:
    """Look at the first line of `path` and decide how to read it (or check the given format)."""
    path = Path(path)
    first = _first_line(path)
    container: Container = "jsonl" if first.lstrip().startswith("{") else "csv"
    if format == "auto":
        format = _detect(path, first, container) if columns is None else container
    if format in ("csv", "jsonl"):
        if columns is None:
            raise TraceError(f"{path}: format {format} needs a column mapping "
                             "(prompt_tokens, output_tokens, ...)")
        container = format
    else:
        container, columns = FORMATS[format]
    header = tuple(next(csv.reader([first]))) if container == "csv" else ()
    if format == "vidur" and columns.arrival not in header:
        columns = columns.model_copy(update={"arrival": None})
    if container == "csv":
        if columns.block_hashes is not None:
            raise TraceError(f"{path}: block_hashes needs JSONL (a list per row); CSV rows cannot hold one")
        missing = [c for c in _wanted(columns) if c not in header]
        if missing:
            raise TraceError(f"{path}, line 1: no column {', '.join(map(repr, missing))} for format "
                             f"{format}; the header has {', '.join(header)}")
    return Layout(path, format, container, columns, header)


def _first_line(path: Path) -> str:
    try:
        with path.open("rb") as f:
            raw = f.readline(1 << 20).removeprefix(BOM)
    except OSError as exc:
        raise TraceError(f"{path}: cannot read: {exc.strerror}") from None
    if not raw.strip():
        raise TraceError(f"{path}: empty file")
    return raw.decode("utf-8", errors="replace").rstrip("\r\n")


def _detect(path: Path, first: str, container: Container) -> str:
    if container == "jsonl":
        try:
            keys = set(json.loads(first))
        except (ValueError, TypeError):
            keys = set()
        if {"timestamp", "input_length", "output_length"} <= keys:
            return "mooncake"
        raise TraceError(f"{path}: JSONL with fields {sorted(keys)} is no known trace format; "
                         "give format jsonl and columns")
    header = set(next(csv.reader([first])))
    if {"TIMESTAMP", "ContextTokens", "GeneratedTokens"} <= header:
        return "azure"
    if {"num_prefill_tokens", "num_decode_tokens"} <= header:
        return "vidur"
    raise TraceError(f"{path}: CSV header {first!r} is no known trace format; give format csv and columns")


def _wanted(columns: Columns) -> list[str]:
    names = (columns.arrival, columns.prompt_tokens, columns.output_tokens, columns.block_hashes)
    return [c for c in names if c]


# ---- reading --------------------------------------------------------------------------------------
def iter_rows(layout: Layout, skip_bad_rows: bool = False,
              block_bytes: int = BLOCK_BYTES) -> Iterator[TraceRows]:
    """The file's rows, one block of lines at a time, with arrival times from the first row."""
    origin, last, seen = None, None, 0
    for first_line, block, lines in _blocks(layout, block_bytes):
        rows, times = _parse_fast(layout, block, lines)
        if rows is None:
            rows, times = _parse_slow(layout, block, first_line, skip_bad_rows)
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


def _parse_fast(layout: Layout, block: bytes, lines: int) -> tuple[TraceRows | None, np.ndarray | None]:
    """Columnar parse of a clean block; (None, None) when anything looks wrong, for `_parse_slow`."""
    cols = layout.columns
    try:
        if layout.container == "csv":
            frame = pd.read_csv(io.BytesIO(block), header=None, names=list(layout.header),
                                skip_blank_lines=False, engine="c")
            table = {name: frame[name] for name in _wanted(cols)}
        else:
            table = _arrow_block(block, cols)
    except (ValueError, pa.ArrowException, pd.errors.ParserError):
        return None, None
    if len(table[cols.prompt_tokens]) != lines:
        return None, None
    prompt, output = (_whole(table[c]) for c in (cols.prompt_tokens, cols.output_tokens))
    if prompt is None or output is None or not (_in_range(prompt) and _in_range(output)):
        return None, None
    times = None
    if cols.arrival is not None:
        times = _times(table[cols.arrival], cols.arrival_datetime)
        if times is None:
            return None, None
    values = offsets = None
    if cols.block_hashes is not None:
        hashes = table[cols.block_hashes]
        if hashes.null_count:
            return None, None
        values = hashes.values.to_numpy(zero_copy_only=False).astype(np.int64)
        offsets = hashes.offsets.to_numpy().astype(np.int64)
        offsets -= offsets[0]
    return TraceRows(None, prompt, output, values, offsets, cols.block_tokens), times


def _arrow_block(block: bytes, cols: Columns) -> dict:
    fields = [(cols.prompt_tokens, pa.int64()), (cols.output_tokens, pa.int64())]
    if cols.arrival is not None:
        fields.append((cols.arrival, pa.string() if cols.arrival_datetime else pa.float64()))
    if cols.block_hashes is not None:
        fields.append((cols.block_hashes, pa.list_(pa.int64())))
    options = pa_json.ParseOptions(explicit_schema=pa.schema(fields), unexpected_field_behavior="ignore")
    table = pa_json.read_json(io.BytesIO(block), parse_options=options,
                              read_options=pa_json.ReadOptions(block_size=max(1 << 20, len(block) // 4)))
    out = {}
    for name, _ in fields:
        column = table.column(name).combine_chunks()
        out[name] = column if name == cols.block_hashes else column.to_pandas()
    return out


def _in_range(tokens: np.ndarray) -> bool:
    return tokens.min(initial=1) >= 1 and tokens.max(initial=1) <= MAX_TOKENS


def _whole(series: pd.Series) -> np.ndarray | None:
    if not pd.api.types.is_integer_dtype(series.dtype):
        return None
    return series.to_numpy(np.int64)


def _times(series: pd.Series, as_datetime: bool) -> np.ndarray | None:
    if as_datetime:
        try:
            stamps = pd.to_datetime(series, format="ISO8601")
        except (ValueError, TypeError):
            return None
        return None if stamps.isna().any() else stamps.to_numpy("datetime64[ns]").astype(np.int64)
    if not pd.api.types.is_numeric_dtype(series.dtype) or series.isna().any():
        return None
    return series.to_numpy(np.float64)


class BadRow(ValueError):
    """One line that cannot be read; the message says why."""


def _parse_slow(layout: Layout, block: bytes, first_line: int, skip_bad_rows: bool
                ) -> tuple[TraceRows, np.ndarray | None]:
    """Line-by-line parse: exact line numbers for errors, or bad lines skipped and counted."""
    cols = layout.columns
    times, prompt, output, hashes, skipped = [], [], [], [], 0
    for number, raw in enumerate(block.split(b"\n"), start=first_line):
        if not raw.strip():
            continue
        try:
            fields = _fields_of(layout, raw)
            row = (_tokens(fields, cols.prompt_tokens), _tokens(fields, cols.output_tokens),
                   _time(fields, cols) if cols.arrival else None,
                   _hash_list(fields, cols.block_hashes) if cols.block_hashes else None)
        except BadRow as exc:
            if not skip_bad_rows:
                raise TraceError(f"{layout.path}, line {number}: {exc} "
                                 "(skip_bad_rows skips such rows)") from None
            skipped += 1
            continue
        prompt.append(row[0])
        output.append(row[1])
        times.append(row[2])
        hashes.append(row[3])
    values = offsets = None
    if cols.block_hashes is not None:
        values = np.array([h for row in hashes for h in row], np.int64)
        offsets = np.concatenate([[0], np.cumsum([len(row) for row in hashes])]).astype(np.int64)
    rows = TraceRows(None, np.array(prompt, np.int64), np.array(output, np.int64), values, offsets,
                     cols.block_tokens, skipped)
    if cols.arrival is None:
        return rows, None
    return rows, np.array(times, np.int64 if cols.arrival_datetime else np.float64)


def _fields_of(layout: Layout, raw: bytes) -> dict:
    try:
        text = raw.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError:
        raise BadRow("not UTF-8 text") from None
    if layout.container == "jsonl":
        try:
            fields = json.loads(text)
        except ValueError as exc:
            raise BadRow(f"not a JSON object ({exc})") from None
        if not isinstance(fields, dict):
            raise BadRow("not a JSON object")
        return fields
    values = next(csv.reader([text]))
    if len(values) > len(layout.header):
        raise BadRow(f"{len(values)} fields, the header has {len(layout.header)}")
    return {name: value for name, value in zip(layout.header, values, strict=False) if value != ""}


def _number(fields: dict, name: str) -> float:
    if name not in fields or fields[name] is None or isinstance(fields[name], bool | list | dict):
        raise BadRow(f"{name} is missing")
    try:
        value = float(fields[name])
    except ValueError:
        raise BadRow(f"{name} {fields[name]!r} is not a number") from None
    if not math.isfinite(value):
        raise BadRow(f"{name} {fields[name]!r} is not a finite number")
    return value


def _tokens(fields: dict, name: str) -> int:
    value = _number(fields, name)
    if value != int(value) or value < 1:
        raise BadRow(f"{name} {fields[name]!r} is not a whole number of tokens >= 1")
    if value > MAX_TOKENS:
        raise BadRow(f"{name} {fields[name]!r} is over the limit of {MAX_TOKENS:,} tokens")
    return int(value)


def _time(fields: dict, cols: Columns) -> float | int:
    if not cols.arrival_datetime:
        return _number(fields, cols.arrival)
    try:
        stamp = pd.Timestamp(fields.get(cols.arrival))
    except (ValueError, TypeError):
        stamp = pd.NaT
    if pd.isna(stamp):
        raise BadRow(f"{cols.arrival} {fields.get(cols.arrival)!r} is not a date-time")
    return stamp.value


def _hash_list(fields: dict, name: str) -> list[int]:
    ids = fields.get(name)
    if not isinstance(ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and -(2**63) <= i < 2**63 for i in ids
    ):
        raise BadRow(f"{name} is not a list of 64-bit integer block ids")
    return ids


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

