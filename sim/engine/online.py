"""The summary of a streamed run, kept as its finished rows go by, in memory that does not grow with
the number of requests.

Counts and sums are exact. Latency percentiles come from DDSketch (Masson, Rim and Lee, "DDSketch:
a fast and fully-mergeable quantile sketch with relative-error guarantees", VLDB 2019; Datadog's
`ddsketch` package): a reported percentile is within `RELATIVE_ACCURACY` (0.5%) of the exact one,
whatever the run's length and however its sketches were merged, and it is deterministic, so the
same seed gives the same numbers (randomised sketches such as KLL would not).
tests/engine/test_stream.py checks the bound against the exact percentiles of the same run. Finish
and arrival times are counted in a histogram of `TIME_BINS` bins whose width doubles as the run
grows, so rates over parts of the run are exact to within a bin (1/4096 of the run).

The intervals are those of an ordinary run's summary (`sim.stats`), with the run's chunks as the
units of its batches: the chunks are grouped into `stats.BATCHES` contiguous batches, each batch's
sketches merged for its percentile. Each value goes into one sketch, of its chunk and class; the
run's, a batch's and a class's sketches are merges of those. A streamed run measures every request,
as a run with time-varying arrivals does: a day of traffic has no steady state, and a warm-up of
seconds is nothing against it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from ddsketch import DDSketch
from ddsketch.mapping import LogarithmicMapping

from sim import stats
from sim.engine import metrics, steady
from sim.engine.steady import LATENCIES, PERCENTILES
from workloads.spec import Slo

RELATIVE_ACCURACY = 0.005
"""DDSketch's bound: a reported quantile is within this fraction of the exact one (the value of
rank floor(q (n - 1)) in sorted order); about 1,600 buckets span latencies from 0.1 ms to an hour."""
MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
"""The bucket mapping `DDSketch(RELATIVE_ACCURACY)` uses, for adding values in bulk (`add_values`)."""
TIME_BINS = 4096


class TimeCounts:
    """How many events fell in each of `TIME_BINS` equal bins from time 0; when an event falls past
    the last bin, neighbouring bins merge and the width doubles."""

    def __init__(self, width_s: float = 1.0 / 64) -> None:
        self.width = width_s
        self.counts = np.zeros(TIME_BINS, np.int64)

    def add(self, times_s: np.ndarray) -> None:
        if not len(times_s):
            return
        while times_s.max() >= TIME_BINS * self.width:
            self.counts = self.counts.reshape(-1, 2).sum(axis=1)
            self.counts = np.concatenate([self.counts, np.zeros(TIME_BINS // 2, np.int64)])
            self.width *= 2
        self.counts += np.bincount((times_s // self.width).astype(np.int64), minlength=TIME_BINS)

    def before(self, t_s: float) -> float:
        """Events before `t_s`, the bin it falls in split in proportion."""
        position = min(max(t_s / self.width, 0.0), float(TIME_BINS))
        whole = int(position)
        partial = self.counts[whole] * (position - whole) if whole < TIME_BINS else 0.0
        return float(self.counts[:whole].sum() + partial)

    def between(self, lo_s: float, hi_s: float) -> float:
        return self.before(hi_s) - self.before(lo_s)

    def time_of(self, count: float) -> float:
        """The time by which `count` events had happened (within a bin)."""
        cumulative = np.cumsum(self.counts)
        b = int(np.searchsorted(cumulative, count))
        return (b + 1) * self.width


def _sketch() -> DDSketch:
    return DDSketch(RELATIVE_ACCURACY)


@dataclass
class _Chunk:
    """What one chunk of finished rows adds to the intervals: counts, and a sketch per latency and
    class (class name -> latency -> sketch)."""

    rows: int
    finished: int
    queue_s: float
    queued: int
    met: int
    sketches: dict[str, dict[str, DDSketch]]

    def merged(self, metric: str) -> list[DDSketch]:
        return [by_metric[metric] for by_metric in self.sketches.values()]


@dataclass
class _Class:
    requests: int = 0
    finished: int = 0
    rejected: int = 0
    met: int = 0


class OnlineSummary:
    """Feed it each chunk of the request table (`add`) and the timeseries rows (`add_events`); ask
    for the summary at the end."""

    def __init__(self, slo: Slo | None, class_slos: dict[str, Slo | None], capacity_blocks: int) -> None:
        self.slo, self.class_slos, self.capacity_blocks = slo, class_slos, capacity_blocks
        self.chunks: list[_Chunk] = []
        self.classes: dict[str, _Class] = {}
        self.finishes, self.good_finishes, self.arrivals = TimeCounts(), TimeCounts(), TimeCounts()
        self.requests = self.finished = self.rejected = self.preemptions = 0
        self.input_tokens = self.output_tokens = 0.0
        self.first_arrival_s, self.last_arrival_s, self.last_finish_s = np.inf, -np.inf, -np.inf
        self.kv_peak_blocks = 0
        self.recomputed_tokens = 0
        self.transfer_s, self.admitted = 0.0, 0
        self.reasons: dict[str, int] = {}

    def add(self, table: pd.DataFrame) -> None:
        """A chunk of `metrics.requests_table` rows, all of them finished or rejected."""
        finish = table["finish_s"].to_numpy()
        arrival = table["arrival_s"].to_numpy()
        done = ~np.isnan(finish)
        met = metrics.slo_mask(table, self.slo, self.class_slos).to_numpy(dtype=bool)
        queue = (table["scheduled_s"] - table["arrival_s"]).to_numpy()[done]
        sketches = self._add_classes(table, done, met)
        self.chunks.append(
            _Chunk(len(table), int(done.sum()), float(queue.sum()), len(queue), int(met.sum()), sketches)
        )
        self.finishes.add(finish[done])
        self.good_finishes.add(finish[met])
        self.arrivals.add(arrival)
        self.requests += len(table)
        self.finished += int(done.sum())
        reasons = table["rejected_reason"].dropna()
        self.rejected += len(reasons)
        for reason, count in reasons.value_counts().items():
            self.reasons[str(reason)] = self.reasons.get(str(reason), 0) + int(count)
        self.preemptions += int(table["preemptions"].sum())
        self.input_tokens += float(table["prompt_tokens"].to_numpy()[done].sum())
        self.output_tokens += float(table["output_tokens"].to_numpy()[done].sum())
        self.first_arrival_s = min(self.first_arrival_s, float(arrival.min()))
        self.last_arrival_s = max(self.last_arrival_s, float(arrival.max()))
        if done.any():
            self.last_finish_s = max(self.last_finish_s, float(finish[done].max()))
        admitted = table[table["scheduled_s"].notna()]
        fresh = admitted["prompt_tokens"] - admitted["cached_tokens"]
        self.recomputed_tokens += int((admitted["prefilled_tokens"] - fresh).clip(lower=0).sum())
        self.transfer_s += float(admitted["kv_transfer_s"].sum())
        self.admitted += len(admitted)

    def _add_classes(self, table: pd.DataFrame, done: np.ndarray, met: np.ndarray) -> dict:
        """Count each class's rows, and sketch their latencies: class -> latency -> sketch."""
        sketches = {}
        for name, rows in table.groupby("class", observed=True).indices.items():
            c = self.classes.setdefault(str(name), _Class())
            finished = done[rows]
            c.requests += len(rows)
            c.finished += int(finished.sum())
            c.rejected += int(table["rejected_reason"].iloc[rows].notna().sum())
            c.met += int(met[rows].sum())
            sketches[str(name)] = by_metric = {m: _sketch() for m in LATENCIES}
            for m in LATENCIES:
                values = table[f"{m}_s"].to_numpy()[rows][finished]
                add_values(by_metric[m], values[~np.isnan(values)])
        return sketches

    def add_events(self, rows: np.ndarray) -> None:
        """Timeseries rows (`Recorder.COLUMNS`): only the peak KV use is kept."""
        if len(rows):
            self.kv_peak_blocks = max(self.kv_peak_blocks, int(rows[:, 4].max()))

    # ---- the summary ---------------------------------------------------------------------------------
    def window(self) -> steady.Window:
        if self.finished == 0:
            return steady.Window(0.0, 0.0, np.ones(0, dtype=bool))
        return steady.Window(self.first_arrival_s, self.last_finish_s, np.ones(0, dtype=bool))

    def totals(self) -> metrics.Totals:
        duration = self.last_finish_s - self.first_arrival_s if self.finished else 0.0
        kv_peak = self.kv_peak_blocks / self.capacity_blocks if self.capacity_blocks else 0.0
        return metrics.Totals(
            self.requests,
            self.finished,
            self.rejected,
            duration,
            self.input_tokens,
            self.output_tokens,
            self.input_tokens,
            self.output_tokens,
            kv_peak,
            self.preemptions,
        )

    def intervals(self, level: float) -> dict[str, float | None]:
        """Point estimates and batch intervals of every interval field, as `steady.intervals` gives them."""
        batches = [self.chunks[i:j] for i, j in _groups(len(self.chunks), stats.BATCHES)]
        out: dict[str, stats.Interval] = {}
        for m in LATENCIES:
            parts = [_merged(s for c in b for s in c.merged(m)) for b in batches]
            whole = _merged(parts) if parts else _merged(s for c in self.chunks for s in c.merged(m))
            for q in PERCENTILES:
                point = _quantile(whole, q)
                tail = min((p.count for p in parts), default=0) * (100.0 - q) / 100.0
                values = (
                    np.array([_quantile(p, q) for p in parts]) if tail >= stats.TAIL_SAMPLES else np.array([])
                )
                out[f"{m}_p{q}_s"] = stats.interval(point, values, level).within(0.0)
        queued = sum(c.queued for c in self.chunks)
        queue_means = np.array(
            [sum(c.queue_s for c in b) / max(sum(c.queued for c in b), 1) for b in batches]
        )
        mean_queue = sum(c.queue_s for c in self.chunks) / queued if queued else np.nan
        out["mean_queue_s"] = stats.interval(mean_queue, queue_means, level).within(0.0)
        win = self.window()
        met = sum(c.met for c in self.chunks)
        out["throughput_rps"] = self._rate(self.finishes, self.finished, win, level)
        out["goodput_rps"] = self._rate(self.good_finishes, met, win, level)
        attained = np.array([sum(c.met for c in b) / sum(c.rows for c in b) for b in batches])
        share = met / self.requests if self.requests else np.nan
        out["slo_attainment"] = stats.interval(share, attained, level).within(0.0, 1.0)
        fields: dict[str, float | None] = {}
        for name, ci in out.items():
            lo, hi = steady.ci_names(name)
            fields[name], fields[lo], fields[hi] = (
                steady.finite_or_none(v) for v in (ci.value, ci.lo, ci.hi)
            )
        return fields

    def _rate(self, counts: TimeCounts, total: int, win: steady.Window, level: float) -> stats.Interval:
        """`total` events over the window, with batch means of the counts in `BATCHES` equal windows."""
        span = win.end_s - win.start_s
        if not span > 0:
            return stats.Interval(np.nan, np.nan, np.nan)
        edges = np.linspace(win.start_s, win.end_s, stats.BATCHES + 1)
        per_window = np.array([counts.between(a, b) for a, b in itertools.pairwise(edges)])
        rates = per_window / (span / stats.BATCHES) if total >= stats.MIN_SAMPLES else np.array([])
        return stats.interval(total / span, rates, level).within(0.0)

    def load(self, open_loop: bool) -> stats.Load:
        """`stats.overload` from the counts: arrivals and completions from the median arrival on."""
        if not open_loop or self.requests < stats.MIN_SAMPLES:
            return stats.Load(False, np.nan, np.nan)
        start = self.arrivals.time_of(self.requests - self.requests // 2)
        start = min(start, self.last_arrival_s)
        span = self.last_arrival_s - start
        if not span > 0:
            return stats.Load(False, np.nan, np.nan)
        served = self.finishes.between(start, self.last_arrival_s)
        return stats.load_verdict(float(self.requests - self.requests // 2), served, span)

    def summary(self, c: metrics.RunConstants) -> dict:
        """The summary fields of `metrics.summarize`, from what was kept."""
        return metrics.assemble(
            self.totals(), self.window(), self.intervals(c.ci_level), self.load(c.open_loop), c
        )

    def cache_fields(self, replicas: int, counters: dict) -> dict:
        """`metrics.cache_summary`'s fields for a run without a prefix cache."""
        return {
            "prefix_hit_rate_tokens": 0.0,
            "offload_hit_rate_tokens": 0.0,
            "prefix_hit_rate_blocks": 0.0,
            "offload_hit_rate_blocks": 0.0,
            "prefix_hit_rate_by_replica": [0.0] * replicas,
            "recomputed_tokens": self.recomputed_tokens,
            "kv_transfer_mean_s": self.transfer_s / self.admitted if self.admitted else 0.0,
            "cache_storage_cost_usd": 0.0,
            "cache_prefill_saved_s": 0.0,
            "cache_prefill_saved_usd": None,
            **counters,
        }

    def per_class(self) -> pd.DataFrame:
        """`metrics.per_class`'s table, percentiles from the class sketches."""
        rows = []
        for name, c in self.classes.items():
            sketches = {
                m: _merged(chunk.sketches[name][m] for chunk in self.chunks if name in chunk.sketches)
                for m in LATENCIES
            }
            rows.append(
                {
                    "class": name,
                    "requests": c.requests,
                    "finished": c.finished,
                    "rejected": c.rejected,
                    "slo_attainment": c.met / c.requests if c.requests else 0.0,
                    **{
                        f"{m}_p{q}_s": steady.finite_or_none(_quantile(sketches[m], q))
                        for m in LATENCIES
                        for q in PERCENTILES
                    },
                }
            )
        return pd.DataFrame(rows)


def _groups(n: int, k: int) -> list[tuple[int, int]]:
    """`k` contiguous, near-equal [start, stop) ranges over n items; none when n < k."""
    if n < k:
        return []
    edges = np.linspace(0, n, k + 1).round().astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


def add_values(sketch: DDSketch, values: np.ndarray) -> None:
    """Add positive `values` to `sketch` as one `add` per bucket instead of one per value: the same
    bucket counts, so the same quantiles (tests/engine/test_stream.py). Buckets are the mapping's
    ceil(ln v / ln gamma), computed in bulk; a value within rounding of a bucket edge is placed by
    the library's own `key`. Each bucket is added as its representative value with the bucket's
    count as weight (the sketch's sum and min/max then describe representatives, which no quantile
    reads)."""
    if not len(values):
        return
    mapping = MAPPING
    position = np.log(values) / math.log(mapping.gamma)
    keys = np.ceil(position)
    edge = np.abs(position - np.round(position)) < 1e-9
    keys[edge] = [mapping.key(v) for v in values[edge].tolist()]
    buckets, counts = np.unique(keys.astype(np.int64), return_counts=True)
    for key, count in zip(buckets.tolist(), counts.tolist(), strict=True):
        sketch.add(mapping.value(key), count)


def _merged(sketches) -> DDSketch:
    out = _sketch()
    for s in sketches:
        out.merge(s)
    return out


def _quantile(sketch: DDSketch, q: float) -> float:
    return float(sketch.get_quantile_value(q / 100.0)) if sketch.count else np.nan
