"""What the engine writes down as it runs: per-request columns and the replica timeseries."""

from __future__ import annotations

from array import array
from dataclasses import dataclass

import numpy as np

REASONS = ("", "kv_capacity", "prompt_exceeds_batch_tokens", "context_limit")  # rejection reasons, by code
KV_CAPACITY, PROMPT_TOO_LONG, CONTEXT_LIMIT = 1, 2, 3


class RequestState:
    """Per-request columns the engine fills in (seconds; NaN where it never happened)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.scheduled_s = np.full(n, np.nan)
        self.first_token_s = np.full(n, np.nan)
        self.finish_s = np.full(n, np.nan)
        self.replica = np.full(n, -1, np.int32)
        self.decode_replica = np.full(n, -1, np.int32)
        self.preemptions = np.zeros(n, np.int32)
        self.rejected = np.zeros(n, np.int8)
        self.generated = np.zeros(n, np.int64)  # output tokens produced so far (kept across preemption)
        self.prefilled = np.zeros(n, np.int64)  # prompt tokens run through prefill, recomputation included
        self.cached_tokens = np.zeros(n, np.int64)  # prompt tokens served from the device prefix cache
        self.reloaded_tokens = np.zeros(n, np.int64)  # prompt tokens reloaded from an offload tier
        self.cached_blocks = np.zeros(n, np.int64)  # prefix blocks hit on the device
        self.reloaded_blocks = np.zeros(n, np.int64)  # prefix blocks hit in the offload tier
        self.swapped_kv = np.zeros(n, np.int64)  # KV tokens parked in the offload tier by swap preemption
        self.transferred_kv = np.zeros(n, np.int64)  # KV tokens arriving from a prefill replica
        self.transfer_s = np.zeros(n)  # time spent moving KV from the prefill to the decode pool


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
        """One column; every column but time is a count (exact in a float64 below 2**53)."""
        values = np.frombuffer(self.rows, np.float64).reshape(-1, len(self.COLUMNS))[
            :, self.COLUMNS.index(name)
        ]
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
