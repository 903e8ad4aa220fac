"""A workload: an arrival process and one or more request classes mixed by weight.

A class is drawn from length distributions (optionally a named task-mix `preset`, multi-turn
`session`s or `document` questions), or replayed from a `trace` file. Classes drawn from
distributions share the workload's `arrivals` by weight; a trace with timestamps brings its own
arrival times, and several such classes are superposed. Results carry each request's class in
`Requests.cls`, indexing `Requests.class_names` (the class names in order).

`generate()` turns a workload into a `Requests` table, drawing every random number from the generator
it is given (the scenario's seed), so the same seed gives the same requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Self

import numpy as np
from pydantic import Field, model_validator

from hardware.base import Frozen
from hardware.spec import Seconds
from workloads import blocks, rag, sessions
from workloads.arrivals import Arrivals, Poisson, arrival_times
from workloads.lengths import MAX_TOKENS, Length, sample_lengths
from workloads.mixes import with_preset
from workloads.rag import DocumentQA
from workloads.requests import Requests
from workloads.sessions import Session
from workloads.trace_format import Layout, TraceError, open_trace
from workloads.trace_rows import TraceRows, take_ragged
from workloads.traces import TraceReplay, read_rows, replay


class Slo(Frozen):
    """Latency targets at a percentile; a request 'meets the SLO' when all set thresholds hold."""

    ttft_s: Seconds | None = Field(default=None, gt=0)
    tpot_s: Seconds | None = Field(default=None, gt=0)
    e2e_s: Seconds | None = Field(default=None, gt=0)
    percentile: float = Field(default=99.0, gt=0, le=100)


class RequestClass(Frozen):
    """One kind of request in the mix, with its own SLO.

    Drawn: `prompt_tokens` and `output_tokens` distributions (`prompt_tokens` counts the tokens after a
    `system_prompt_tokens` prefix common to the whole class; with a `session` it is each user message,
    with a `document` each question). Replayed: a `trace`. `preset` fills the fields left unset from a
    named task mix (see `workloads.mixes`) and names the class after it. `weight` is the class's share
    of the workload's arrivals, where an arrival is one request, or one whole conversation for a
    `session` class; a trace with timestamps brings its own arrivals and ignores it."""

    name: str = "default"
    preset: str | None = None
    weight: float = Field(default=1.0, gt=0)
    prompt_tokens: Length | None = None
    output_tokens: Length | None = None
    system_prompt_tokens: int = Field(default=0, ge=0, le=MAX_TOKENS)
    session: Session | None = None
    document: DocumentQA | None = None
    trace: TraceReplay | None = None
    slo: Slo | None = None

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") is not None:
            return with_preset(data)
        return data

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.trace is not None:
            drawn = [f for f in ("prompt_tokens", "output_tokens", "session", "document") if getattr(self, f)]
            if drawn or self.system_prompt_tokens:
                raise ValueError(f"class {self.name}: a trace class takes its lengths from the trace; "
                                 f"drop {', '.join(drawn) or 'system_prompt_tokens'}")
            return self
        if self.prompt_tokens is None or self.output_tokens is None:
            raise ValueError(f"class {self.name}: give prompt_tokens and output_tokens, a preset, or a trace")
        if self.session is not None and self.document is not None:
            raise ValueError(f"class {self.name}: give session or document, not both")
        return self

    @property
    def shares_prefixes(self) -> bool:
        return bool(self.system_prompt_tokens or self.session or self.document)


class Workload(Frozen):
    """Request classes and the arrival process they share. `block_tokens` is the size of the
    prefix blocks whose ids `generate()` fills in when prompts share prefixes."""

    arrivals: Arrivals = Poisson(rate_per_s=1.0)
    classes: tuple[RequestClass, ...] = Field(min_length=1)
    block_tokens: int = Field(default=512, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _single_class_shorthand(cls, data: Any) -> Any:
        """Class fields at the top level (`prompt_tokens`, `preset`, `trace`, ...) mean one class."""
        if not isinstance(data, dict):
            return data
        own = {k: v for k, v in data.items() if k in RequestClass.model_fields}
        if not own:
            return data
        if "classes" in data:
            raise ValueError(f"give either classes or class fields ({', '.join(own)}) at the top level, "
                             "not both")
        if "trace" in own and "name" not in own and "preset" not in own:
            own["name"] = "trace"
        return {**{k: v for k, v in data.items() if k not in own}, "classes": [own]}

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise ValueError(f"classes: names must be unique, got {names}")
        return self


@dataclass(frozen=True)
class _Part:
    """Requests of one class before sorting. Prefix structure (for generated block ids) or trace ids."""

    cls: int
    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    system_tokens: np.ndarray
    shared_tokens: np.ndarray
    shared_key: np.ndarray
    trace: TraceRows | None = None
    delay_s: np.ndarray | None = None


def generate(workload: Workload, rng: np.random.Generator, requests: int | None = None,
             duration_s: float | None = None, start_s: float = 0.0) -> Requests:
    """The first `requests` requests, or (when `requests` is None) every request arriving within
    `duration_s` seconds, sorted by arrival; drawn arrivals start after `start_s`. A trace shorter
    than that gives all its rows."""
    if requests is None and duration_s is None:
        raise ValueError("stop: give requests or duration_s")
    if requests is not None:
        duration_s = None
    classes = workload.classes
    layouts = {i: open_trace(c.trace.path, c.trace.format, c.trace.columns)
               for i, c in enumerate(classes) if c.trace is not None}
    timed = [i for i, layout in layouts.items()
             if layout.columns.arrival is not None and classes[i].trace.replay_timestamps]
    drawn = [i for i in range(len(classes)) if i not in timed]
    parts = _drawn(workload, drawn, layouts, rng, requests, duration_s, start_s) if drawn else []
    for i in timed:
        parts.append(_trace_part(i, replay(classes[i].trace, rng, requests, duration_s)))
    return _assemble(workload, parts, requests, duration_s)


def streamable(workload: Workload) -> str | None:
    """Why `workload` cannot be drawn piece by piece (`generate_chunks`), or None when it can:
    sessions, documents and traces are laid out over the whole run at once."""
    for c in workload.classes:
        for name in ("session", "document", "trace"):
            if getattr(c, name) is not None:
                return f"class {c.name} has a {name}"
    return None


def generate_chunks(workload: Workload, seed: int, requests: int | None, duration_s: float | None,
                    chunk: int) -> Iterator[Requests]:
    """The requests of a run too long to hold at once, `chunk` at a time (the last may be shorter):
    piece i is drawn by its own generator, seeded (`seed`, i), from where piece i - 1's last arrival
    left off, so the same seed gives the same run (not the same requests as `generate`, which draws
    with one generator). Prefix-block ids are left out: a streamed run has no prefix cache."""
    if (reason := streamable(workload)) is not None:
        raise ValueError(f"workload: {reason}; only classes drawn from length distributions can be streamed")
    start, left, piece = 0.0, requests, 0
    while left is None or left > 0:
        size = chunk if left is None else min(chunk, left)
        reqs = generate(workload, np.random.default_rng([seed, piece]), size, start_s=start)
        if duration_s is not None:
            reqs = reqs.rows(0, int(np.searchsorted(reqs.arrival_s, duration_s, side="right")))
        if len(reqs):
            yield replace(reqs, block_hashes=None, block_tokens=None)
        if len(reqs) < size:
            return
        start, piece = float(reqs.arrival_s[-1]), piece + 1
        left = None if left is None else left - size


def _drawn(workload: Workload, drawn: list[int], layouts: dict[int, Layout], rng: np.random.Generator,
           requests: int | None, duration_s: float | None, start_s: float) -> list[_Part]:
    """Parts of the classes that share the workload's arrivals: each arrival picks a class by weight."""
    times = arrival_times(workload.arrivals, rng, requests, duration_s, start_s)
    weights = np.array([workload.classes[i].weight for i in drawn])
    pick = rng.choice(len(drawn), size=len(times), p=weights / weights.sum())
    parts = []
    for j, i in enumerate(drawn):
        units = np.flatnonzero(pick == j)
        parts.append(_expand(workload.classes[i], i, times[units], units, layouts.get(i), rng))
    return parts


def _expand(c: RequestClass, i: int, start_s: np.ndarray, units: np.ndarray, layout: Layout | None,
            rng: np.random.Generator) -> _Part:
    """The requests that arrivals `units` (at `start_s`) of class `c` (index `i`) turn into."""
    n, system = len(start_s), c.system_prompt_tokens
    if layout is not None:
        rows = read_rows(layout, c.trace.skip_bad_rows, max_rows=max(n, 1))
        return _trace_part(i, rows.take(np.arange(n) % len(rows)), start_s)
    if c.session is not None:
        turns = sessions.expand(c.session, start_s, c.prompt_tokens, c.output_tokens, system, rng)
        key = blocks.mix(blocks.CONVERSATION, units[turns.conversation])
        return _Part(i, turns.arrival_s, turns.prompt_tokens, turns.output_tokens,
                     np.full(len(key), system), turns.prompt_tokens, key)
    if c.document is not None:
        q = rag.expand(c.document, n, c.prompt_tokens, c.output_tokens, system, rng)
        key = blocks.mix(blocks.DOCUMENT, i, q.document)
        return _Part(i, start_s + q.delay_s, q.prompt_tokens, q.output_tokens, np.full(n, system),
                     q.shared_tokens, key, delay_s=q.delay_s)
    prompt = system + sample_lengths(c.prompt_tokens, rng, n)
    output = sample_lengths(c.output_tokens, rng, n)
    system_tokens = np.full(n, system, np.int64)
    return _Part(i, start_s, prompt, output, system_tokens, system_tokens, np.zeros(n, np.int64))


def _trace_part(i: int, rows: TraceRows, arrival_s: np.ndarray | None = None) -> _Part:
    zeros = np.zeros(len(rows), np.int64)
    arrival = rows.arrival_s if arrival_s is None else arrival_s
    return _Part(i, arrival, rows.prompt_tokens, rows.output_tokens, zeros, zeros, zeros, trace=rows)


def _assemble(workload: Workload, parts: list[_Part], requests: int | None,
              duration_s: float | None) -> Requests:
    """Merge the parts, sort by arrival, cut to the stop, and fill block ids where prompts share prefixes."""
    arrival = np.concatenate([p.arrival_s for p in parts])
    order = np.argsort(arrival, kind="stable")
    keep = order[:requests] if requests is not None else order[arrival[order] <= duration_s]
    hashes, block_tokens = _block_ids(workload, parts, keep)
    meta: dict = {}
    if any(p.delay_s is not None for p in parts):
        delay = [np.zeros(len(p.arrival_s)) if p.delay_s is None else p.delay_s for p in parts]
        meta["retrieval_s"] = np.concatenate(delay)[keep]
    skipped = sum(p.trace.skipped for p in parts if p.trace is not None)
    if skipped:
        meta["skipped_rows"] = skipped
    cls = np.concatenate([np.full(len(p.arrival_s), p.cls, np.int32) for p in parts])[keep]
    prompt, output = _column(parts, "prompt_tokens", keep), _column(parts, "output_tokens", keep)
    names = tuple(c.name for c in workload.classes)
    return Requests(arrival[keep], prompt, output, cls, names, hashes, block_tokens, meta)


def _column(parts: list[_Part], name: str, keep: np.ndarray) -> np.ndarray:
    return np.concatenate([getattr(p, name) for p in parts]).astype(np.int64)[keep]


def _block_ids(workload: Workload, parts: list[_Part], keep: np.ndarray
               ) -> tuple[tuple[np.ndarray, ...] | None, int | None]:
    """Per kept request, its prefix-block ids: from the trace where it has them, generated otherwise;
    None when no prompt shares a prefix with another."""
    traced = {p.trace.block_tokens for p in parts if p.trace is not None and p.trace.hash_values is not None}
    generated = any(workload.classes[p.cls].shares_prefixes for p in parts)
    if not traced and not generated:
        return None, None
    sizes = traced | ({workload.block_tokens} if generated else set())
    if len(sizes) > 1:
        raise TraceError(f"block ids of different block sizes ({sorted(sizes)} tokens) cannot be mixed; "
                         "set workload.block_tokens to the trace's")
    block_tokens = sizes.pop()
    values, offsets, start, total = [], [], 0, 0
    for p in parts:
        if p.trace is not None and p.trace.hash_values is not None:
            ids = p.trace.hash_values
            if len(workload.classes) > 1:
                ids = blocks.mix(blocks.TRACE, p.cls, ids)
            v, o = ids, p.trace.hash_offsets
        else:
            own = blocks.mix(blocks.OWN, np.arange(start, start + len(p.arrival_s)))
            system_key = blocks.mix(blocks.SYSTEM, np.full(len(p.arrival_s), p.cls))
            v, o = blocks.prefix_block_ids(p.prompt_tokens, block_tokens, p.system_tokens, system_key,
                                           p.shared_tokens, p.shared_key, own)
        values.append(v)
        offsets.append(o[1:] + total)
        start, total = start + len(p.arrival_s), total + len(v)
    flat = np.concatenate(values)
    bounds = np.concatenate([[0], *offsets])
    kept_values, kept_offsets = take_ragged(flat, bounds, keep)
    ids = map(kept_values.__getitem__, map(slice, kept_offsets[:-1].tolist(), kept_offsets[1:].tolist()))
    return tuple(ids), block_tokens
