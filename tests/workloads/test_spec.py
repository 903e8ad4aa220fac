import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

import workloads
from workloads.spec import Workload, generate
from workloads.trace_format import TraceError, open_trace
from workloads.traces import read_rows

DATA = Path(__file__).resolve().parents[1] / "data"
MOONCAKE = DATA / "mooncake_conversation_sample.jsonl"
FIXED = {"kind": "fixed", "tokens": 64}


def test_exported_names_are_honest():
    public = {n for n in dir(workloads)
              if not n.startswith("_") and not isinstance(getattr(workloads, n), types.ModuleType)}
    assert sorted(workloads.__all__) == sorted(public)


def test_a_trace_workload_replays_the_trace():
    rows = read_rows(open_trace(MOONCAKE))
    reqs = generate(Workload(trace={"path": MOONCAKE}), np.random.default_rng(0), requests=120)
    assert reqs.class_names == ("trace",) and len(reqs) == 120 and reqs.block_tokens == 512
    assert np.array_equal(reqs.prompt_tokens, rows.prompt_tokens[:120])
    assert np.array_equal(reqs.arrival_s, rows.arrival_s[:120])
    assert np.array_equal(reqs.block_hashes[7], rows.hash_values[rows.hash_offsets[7]:rows.hash_offsets[8]])
    timed = generate(Workload(trace={"path": MOONCAKE}), np.random.default_rng(0), duration_s=30.0)
    assert len(timed) == np.sum(rows.arrival_s <= 30.0)


def test_traces_and_drawn_classes_mix():
    w = Workload.model_validate({
        "arrivals": {"kind": "poisson", "rate_per_s": 0.5},
        "classes": [{"name": "kimi", "trace": {"path": str(MOONCAKE)}},
                    {"name": "azure", "trace": {"path": str(DATA / "azure_code_sample.csv"),
                                                "time_scale": 0.5}},
                    {"preset": "chat", "system_prompt_tokens": 1024}]})
    reqs = generate(w, np.random.default_rng(0), duration_s=100.0)
    counts = np.bincount(reqs.cls, minlength=3)
    assert reqs.class_names == ("kimi", "azure", "chat")
    kimi, azure = (read_rows(open_trace(p)).arrival_s for p in (MOONCAKE, DATA / "azure_code_sample.csv"))
    assert counts[0] == np.sum(kimi <= 100.0) and counts[1] == np.sum(azure * 0.5 <= 100.0)
    assert 30 < counts[2] < 75
    assert reqs.arrival_s[-1] <= 100.0
    # every request has block ids: Mooncake's (salted, so two traces never collide), generated for the rest
    assert all(len(ids) == -(-p // 512) for ids, p in zip(reqs.block_hashes, reqs.prompt_tokens, strict=True))
    chat = [ids for ids, c in zip(reqs.block_hashes, reqs.cls, strict=True) if c == 2]
    assert len({tuple(ids[:2]) for ids in chat}) == 1  # the shared system prompt


def test_a_trace_without_timestamps_takes_the_workloads_arrivals():
    sharegpt = read_rows(open_trace(DATA / "sharegpt_sample.csv"))
    w = Workload.model_validate({"arrivals": {"kind": "gamma", "rate_per_s": 4, "cv": 2},
                                 "trace": {"path": str(DATA / "sharegpt_sample.csv")}})
    reqs = generate(w, np.random.default_rng(0), requests=450)
    cycled = np.concatenate([sharegpt.prompt_tokens, sharegpt.prompt_tokens[:150]])
    assert np.array_equal(reqs.prompt_tokens, cycled)
    assert reqs.block_hashes is None
    ignore_times = Workload.model_validate({"arrivals": {"kind": "poisson", "rate_per_s": 100},
                                           "trace": {"path": str(MOONCAKE), "replay_timestamps": False}})
    fast = generate(ignore_times, np.random.default_rng(0), requests=300)
    assert fast.arrival_s[-1] < 10.0 and reqs.block_tokens is None and fast.block_tokens == 512


def test_mismatched_block_sizes_and_bad_classes_are_rejected():
    w = Workload.model_validate({"block_tokens": 256, "classes": [
        {"name": "kimi", "trace": {"path": str(MOONCAKE)}},
        {"name": "talk", "prompt_tokens": FIXED, "output_tokens": FIXED, "system_prompt_tokens": 300}]})
    with pytest.raises(TraceError, match="block sizes"):
        generate(w, np.random.default_rng(0), requests=10)
    with pytest.raises(ValidationError, match="takes its lengths from the trace; drop prompt_tokens"):
        Workload.model_validate({"trace": {"path": "x.csv"}, "prompt_tokens": FIXED})
    with pytest.raises(ValidationError, match="give prompt_tokens and output_tokens"):
        Workload.model_validate({"prompt_tokens": FIXED})
    with pytest.raises(ValidationError, match="not both"):
        Workload.model_validate({"prompt_tokens": FIXED, "output_tokens": FIXED, "classes": []})
    with pytest.raises(ValidationError, match="names must be unique"):
        Workload.model_validate({"classes": [{"preset": "chat"}, {"preset": "chat"}]})
    with pytest.raises(ValueError, match="give requests or duration_s"):
        generate(Workload(preset="chat"), np.random.default_rng(0))


ARRIVALS = st.sampled_from([
    {"kind": "poisson", "rate_per_s": 3.0},
    {"kind": "gamma", "rate_per_s": 2.0, "cv": 3.0},
    {"kind": "diurnal", "mean_rate_per_s": 5.0, "amplitude": 0.9, "period_s": 60.0},
    {"kind": "diurnal", "rates_per_s": [1.0, 0.0, 6.0], "bucket_s": 10.0},
])
CLASSES = st.lists(st.sampled_from([
    {"preset": "chat"}, {"preset": "role-play"}, {"preset": "document-analysis"},
    {"name": "doc", "prompt_tokens": FIXED, "output_tokens": FIXED,
     "document": {"document_tokens": {"kind": "uniform", "low": 1000, "high": 9000}, "corpus_documents": 3,
                  "serve": {"kind": "rag", "chunks": 2, "chunk_tokens": 300, "retrieval_s": 0.1}}},
    {"name": "replay", "trace": {"path": str(MOONCAKE), "rate_multiplier": 1.5}},
]), min_size=1, max_size=3, unique_by=lambda c: c.get("name", c.get("preset")))


@given(arrivals=ARRIVALS, classes=CLASSES, seed=st.integers(0, 2**32 - 1), stop=st.sampled_from(
    [{"requests": 40}, {"duration_s": 20.0}]))
def test_the_same_seed_gives_the_same_requests(arrivals, classes, seed, stop):
    w = Workload.model_validate({"arrivals": arrivals, "classes": classes})
    a = generate(w, np.random.default_rng(seed), **stop)
    b = generate(w, np.random.default_rng(seed), **stop)
    for field in ("arrival_s", "prompt_tokens", "output_tokens", "cls"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert (a.block_hashes is None) == (b.block_hashes is None)
    if a.block_hashes is not None:
        assert all(np.array_equal(x, y) for x, y in zip(a.block_hashes, b.block_hashes, strict=True))
    assert np.all(np.diff(a.arrival_s) >= 0) and a.prompt_tokens.min(initial=1) >= 1
    if "requests" in stop:
        assert len(a) <= 40
    else:
        assert a.arrival_s.max(initial=0) <= 20.0


def test_different_seeds_give_different_requests():
    w = Workload(preset="role-play", arrivals={"kind": "gamma", "rate_per_s": 1, "cv": 2})
    a, b = (generate(w, np.random.default_rng(s), requests=50) for s in (1, 2))
    assert not np.array_equal(a.prompt_tokens, b.prompt_tokens)
