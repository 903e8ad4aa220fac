"""What the engine writes down as it runs: per-request columns and the replica timeseries."""

from __future__ import annotations

from array import array
from dataclasses import dataclass

import numpy as np

REASONS = ("", "kv_capacity", "prompt_exceeds_batch_tokens", "context_limit")  # rejection reasons, by code
KV_CAPACITY, PROMPT_TOO_LONG, CONTEXT_LIMIT = 1, 2, 3


_COLUMNS = {  # name: (dtype, the value before anything happened)
    "scheduled_s": (np.float64, np.nan),
    "first_token_s": (np.float64, np.nan),
    "finish_s": (np.float64, np.nan),
    "replica": (np.int32, -1),
    "decode_replica": (np.int32, -1),
    "preemptions": (np.int32, 0),
    "rejected": (np.int8, 0),
    "generated": (np.int64, 0),  # output tokens produced so far (kept across preemption)
    "prefilled": (np.int64, 0),  # prompt tokens run through prefill, recomputation included
    "cached_tokens": (np.int64, 0),  # prompt tokens served from the device prefix cache
    "reloaded_tokens": (np.int64, 0),  # prompt tokens reloaded from an offload tier
    "cached_blocks": (np.int64, 0),  # prefix blocks hit on the device
    "reloaded_blocks": (np.int64, 0),  # prefix blocks hit in the offload tier
    "swapped_kv": (np.int64, 0),  # KV tokens parked in the offload tier by swap preemption
    "transferred_kv": (np.int64, 0),  # KV tokens arriving from a prefill replica
    "transfer_s": (np.float64, 0.0),  # time spent moving KV from the prefill to the decode pool
}


class RequestState:
    """Per-request columns the engine fills in (seconds; NaN where it never happened), one
    attribute per entry of `_COLUMNS`."""

    scheduled_s: np.ndarray
    first_token_s: np.ndarray
    finish_s: np.ndarray
    replica: np.ndarray
    decode_replica: np.ndarray
    preemptions: np.ndarray
    rejected: np.ndarray
    generated: np.ndarray
    prefilled: np.ndarray
    cached_tokens: np.ndarray
    reloaded_tokens: np.ndarray
    cached_blocks: np.ndarray
    reloaded_blocks: np.ndarray
    swapped_kv: np.ndarray
    transferred_kv: np.ndarray
    transfer_s: np.ndarray

    def __init__(self, n: int) -> None:
        self.n = n
        for name, (dtype, fill) in _COLUMNS.items():
            setattr(self, name, np.full(n, fill, dtype))

    def rows(self, start: int, stop: int) -> RequestState:
        """Rows [start, stop) as views of these columns."""
        view = object.__new__(RequestState)
        view.n = stop - start
        for name in _COLUMNS:
            setattr(view, name, getattr(self, name)[start:stop])
        return view

    def clear(self, start: int, stop: int) -> None:
        """Rows [start, stop) back to their values before anything happened (a streamed run reuses them)."""
        for name, (_, fill) in _COLUMNS.items():
            getattr(self, name)[start:stop] = fill


class Recorder:
    """Append-only rows of the replica timeseries in one typed buffer (8 bytes a value, not a
    Python object), turned into columns once at the end."""

    COLUMNS = (
        "time_s",
        "replica",
        "batch",
        "waiting",
        "kv_blocks",
        "cached_blocks",
        "offload_blocks",
        "in_system",
    )

    def __init__(self) -> None:
        self.rows = array("d")
        # row((t, replica, batch, waiting, kv_blocks, cached_blocks, offload_blocks, in_system)):
        # the buffer's own extend, called once per engine event
        self.row = self.rows.extend

    def column(self, name: str) -> np.ndarray:
        return column(np.frombuffer(self.rows, np.float64).reshape(-1, len(self.COLUMNS)), name)


def column(rows: np.ndarray, name: str) -> np.ndarray:
    """One column of timeseries rows (one row per event, `Recorder.COLUMNS`); every column but time
    is a count (exact in a float64 below 2**53)."""
    values = rows[:, Recorder.COLUMNS.index(name)]
    if name == "time_s":
        return values.copy()
    return values.astype(np.int64 if name.endswith("blocks") else np.int32)


@dataclass
class EngineStats:
    events: int = 0
    steps: int = 0
    spans: int = 0
    in_system: int = 0
    done: int = 0
    transfers: int = 0
