"""The request table the engine consumes: one row per request, columnar, sorted by arrival."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Requests:
    """Columns are numpy arrays of equal length, sorted by `arrival_s`.

    `cls` indexes `class_names` (the task class each request belongs to). `block_hashes`, when the
    source has them (Mooncake traces, multi-turn sessions), holds one int64 array of prefix-block
    hash ids per request; `block_tokens` is the block size those hashes cover. `meta` may hold
    `retrieval_s` (per request, seconds a RAG retriever took before the request arrived; 0 for
    others), `skipped_rows` (malformed trace rows left out) and `truncated_tokens` (prompt tokens cut
    by `truncated_to`)."""

    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    cls: np.ndarray
    class_names: tuple[str, ...] = ("default",)
    block_hashes: tuple[np.ndarray, ...] | None = None
    block_tokens: int | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.arrival_s)
        for name in ("prompt_tokens", "output_tokens", "cls"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Requests.{name} has {len(getattr(self, name))} rows, arrival_s has {n}")
        if n and np.any(np.diff(self.arrival_s) < 0):
            raise ValueError("Requests must be sorted by arrival_s")
        if n and (self.prompt_tokens.min() < 1 or self.output_tokens.min() < 1):
            raise ValueError("every request needs at least one prompt token and one output token")

    def __len__(self) -> int:
        return len(self.arrival_s)

    def rows(self, start: int, stop: int) -> Requests:
        """Rows [start, stop) as views of these columns (meta is shared, not sliced)."""
        hashes = None if self.block_hashes is None else self.block_hashes[start:stop]
        return Requests(self.arrival_s[start:stop], self.prompt_tokens[start:stop],
                        self.output_tokens[start:stop], self.cls[start:stop], self.class_names, hashes,
                        self.block_tokens, self.meta)

    @classmethod
    def from_arrays(cls, arrival_s, prompt_tokens, output_tokens, klass=None, class_names=("default",),
                    block_hashes=None, block_tokens=None) -> Requests:
        arrival = np.asarray(arrival_s, dtype=np.float64)
        order = np.argsort(arrival, kind="stable")
        klass = np.zeros(len(arrival), np.int32) if klass is None else np.asarray(klass, np.int32)
        hashes = None if block_hashes is None else tuple(np.asarray(block_hashes[i], np.int64) for i in order)
        return cls(arrival[order], np.asarray(prompt_tokens, np.int64)[order],
                   np.asarray(output_tokens, np.int64)[order], klass[order], tuple(class_names), hashes,
                   block_tokens)

    def truncated_to(self, limit_tokens: int) -> Requests:
        """The requests with each prompt cut so that prompt + output fits `limit_tokens` (a model's
        context limit), keeping the prompt's first tokens and the prefix blocks they cover, so shared
        prefixes still hit a prefix cache. A request whose output alone reaches the limit keeps its
        prompt (the engine rejects it as `context_limit`)."""
        room = limit_tokens - self.output_tokens
        cut = (self.prompt_tokens > room) & (room >= 1)
        if not cut.any():
            return self
        prompt = np.where(cut, room, self.prompt_tokens)
        hashes = self.block_hashes
        if hashes is not None and self.block_tokens:
            blocks = -(-prompt // self.block_tokens)
            hashes = tuple(h[: blocks[i]] if cut[i] else h for i, h in enumerate(hashes))
        meta = {**self.meta, "truncated_tokens": int((self.prompt_tokens - prompt).sum())}
        return Requests(self.arrival_s, prompt, self.output_tokens, self.cls, self.class_names, hashes,
                        self.block_tokens, meta)
