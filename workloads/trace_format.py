"""What a trace file is and how to read it: the column mapping (`Columns`), the known formats (Azure
LLM inference CSV, Mooncake JSONL, Vidur/Splitwise CSV), and `open_trace`, which detects the format
from the header or first line and checks that the columns it needs are there before any row is read.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator

from hardware.base import Frozen

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
        missing = [c for c in named_columns(columns) if c not in header]
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


def named_columns(columns: Columns) -> list[str]:
    """The file's fields that `columns` reads, in order: what a CSV header must hold."""
    names = (columns.arrival, columns.prompt_tokens, columns.output_tokens, columns.block_hashes)
    return [c for c in names if c]

