"""Trace rows, columnar (`TraceRows`), and the two parsers that turn a block of whole lines into
them: a fast columnar one (pandas for CSV, pyarrow for JSONL) for clean blocks, and a line-by-line one
that names the first bad line or, with `skip_bad_rows`, skips and counts the bad lines.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.json as pa_json

from workloads.lengths import MAX_TOKENS
from workloads.trace_format import Columns, Layout, TraceError, named_columns


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
    """The rows of `parts` one after another, block ids renumbered into one flat array."""
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


def parse_fast(layout: Layout, block: bytes, lines: int) -> tuple[TraceRows | None, np.ndarray | None]:
    """Columnar parse of a clean block; (None, None) when anything looks wrong, for `parse_slow`."""
    cols = layout.columns
    try:
        if layout.container == "csv":
            frame = pd.read_csv(io.BytesIO(block), header=None, names=list(layout.header),
                                skip_blank_lines=False, engine="c")
            table = {name: frame[name] for name in named_columns(cols)}
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


def parse_slow(layout: Layout, block: bytes, first_line: int, skip_bad_rows: bool
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

