import json
import re
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from tests.conftest import SHARED
from workloads.blocks import reuse_fraction
from workloads.describe import summarize
from workloads.trace_format import Columns, TraceError, open_trace
from workloads.trace_rows import parse_fast, parse_slow
from workloads.traces import TraceReplay, _blocks, iter_rows, read_rows, replay

DATA = Path(__file__).resolve().parents[1] / "data"
TRACES = SHARED / "traces"

# Samples: the first 300 rows of each shared trace. Counts, means and spans checked by hand with awk
# over the sample files (not with this package).
SAMPLES = {
    "azure_code_sample.csv": ("azure", 300, 2091.7633, 23.7533, 216.838239),
    "splitwise_conv_sample.csv": ("vidur", 300, 900.0, 256.2333, 84.029102),
    "sharegpt_sample.csv": ("vidur", 300, 2178.5767, 477.65, None),
    "mooncake_conversation_sample.jsonl": ("mooncake", 300, 14233.2367, 376.93, 102.0),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_reproduce_hand_checked_numbers(name):
    fmt, rows, prompt_mean, output_mean, span_s = SAMPLES[name]
    layout = open_trace(DATA / name)
    assert layout.format == fmt
    r = read_rows(layout)
    assert len(r) == rows and r.skipped == 0
    assert r.prompt_tokens.mean() == pytest.approx(prompt_mean, abs=1e-4)
    assert r.output_tokens.mean() == pytest.approx(output_mean, abs=1e-4)
    if span_s is None:
        assert r.arrival_s is None
    else:
        assert r.arrival_s[0] == 0.0 and r.arrival_s[-1] == pytest.approx(span_s, abs=1e-6)
        assert np.all(np.diff(r.arrival_s) >= 0)


def independent_reuse(path: Path) -> float:
    """Blocks already seen in an earlier position, read with the json module and a set."""
    seen, hits, total = set(), 0, 0
    with path.open() as f:
        for line in f:
            for block in json.loads(line)["hash_ids"]:
                hits += block in seen
                total += 1
                seen.add(block)
    return hits / total


def test_mooncake_sample_block_reuse_matches_an_independent_count():
    path = DATA / "mooncake_conversation_sample.jsonl"
    r = read_rows(open_trace(path))
    assert r.block_tokens == 512
    assert np.array_equal(np.diff(r.hash_offsets), -(-r.prompt_tokens // 512))
    assert reuse_fraction(r.hash_values) == pytest.approx(independent_reuse(path), abs=1e-12)


def test_small_blocks_stream_to_the_same_rows():
    for name in SAMPLES:
        layout = open_trace(DATA / name)
        whole = read_rows(layout)
        parts = list(iter_rows(layout, block_bytes=700))
        assert len(parts) > 5
        assert np.array_equal(np.concatenate([p.prompt_tokens for p in parts]), whole.prompt_tokens)
        if whole.arrival_s is not None:
            assert np.array_equal(np.concatenate([p.arrival_s for p in parts]), whole.arrival_s)
        if whole.hash_values is not None:
            assert np.array_equal(np.concatenate([p.hash_values for p in parts]), whole.hash_values)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_fast_and_line_by_line_parsers_agree(name):
    layout = open_trace(DATA / name)
    (line, block, lines), = list(_blocks(layout, 1 << 20))
    fast, fast_times = parse_fast(layout, block, lines)
    slow, slow_times = parse_slow(layout, block, line, skip_bad_rows=False)
    assert fast is not None
    for field in ("prompt_tokens", "output_tokens", "hash_values", "hash_offsets"):
        a, b = getattr(fast, field), getattr(slow, field)
        assert (a is None and b is None) or np.array_equal(a, b)
    assert (fast_times is None and slow_times is None) or np.array_equal(fast_times, slow_times)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


AZURE = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
GOOD = "2023-11-16 18:17:0{i}.0000000,{p},7\n"


@pytest.mark.parametrize(("bad", "reason"), [
    ("2023-11-16 18:17:09.0000000,abc,7\n", "ContextTokens 'abc' is not a number"),
    ("2023-11-16 18:17:09.0000000,0,7\n", "whole number of tokens >= 1"),
    ("2023-11-16 18:17:09.0000000,12.5,7\n", "whole number"),
    ("not a time,12,7\n", "TIMESTAMP 'not a time' is not a date-time"),
    ("2023-11-16 18:17:09.0000000,12\n", "GeneratedTokens is missing"),
    ("2023-11-16 18:17:09.0000000,,7\n", "ContextTokens is missing"),
    ("2023-11-16 18:17:09.0000000,12,7,1\n", "4 fields, the header has 3"),
])
def test_malformed_csv_row_names_its_line(tmp_path, bad, reason):
    rows = [GOOD.format(i=i, p=100 + i) for i in range(6)]
    path = write(tmp_path, "t.csv", AZURE + "".join(rows[:3]) + bad + "".join(rows[3:]))
    with pytest.raises(TraceError, match=rf"t\.csv, line 5: .*{re.escape(reason)}"):
        read_rows(open_trace(path))
    r = read_rows(open_trace(path), skip_bad_rows=True)
    assert r.skipped == 1 and list(r.prompt_tokens) == [100, 101, 102, 103, 104, 105]


@pytest.mark.parametrize(("bad", "reason"), [
    ('{"timestamp": 5, "input_length": 10, "output_length": 3, "hash_ids": [0]', "not a JSON object"),
    ('{"timestamp": 5, "output_length": 3, "hash_ids": [0]}', "input_length is missing"),
    ('{"timestamp": 5, "input_length": -4, "output_length": 3, "hash_ids": [0]}', "input_length -4"),
    ('{"timestamp": 5, "input_length": 10, "output_length": 3, "hash_ids": "0"}', "hash_ids is not a list"),
    ('{"timestamp": "soon", "input_length": 10, "output_length": 3, "hash_ids": [0]}', "timestamp 'soon'"),
    ("[1, 2, 3]", "not a JSON object"),
])
def test_malformed_jsonl_row_names_its_line(tmp_path, bad, reason):
    good = [json.dumps({"timestamp": i, "input_length": 600, "output_length": 3, "hash_ids": [0, i + 1]})
            for i in range(4)]
    path = write(tmp_path, "m.jsonl", "\n".join([*good[:2], bad, *good[2:]]) + "\n")
    with pytest.raises(TraceError, match=rf"m\.jsonl, line 3: .*{re.escape(reason)}"):
        read_rows(open_trace(path, "mooncake"))
    r = read_rows(open_trace(path, "mooncake"), skip_bad_rows=True)
    assert r.skipped == 1 and len(r) == 4
    assert list(r.hash_values) == [0, 1, 0, 2, 0, 3, 0, 4]


def test_blank_lines_and_a_missing_final_newline_are_fine(tmp_path):
    text = "arrived_at,num_prefill_tokens,num_decode_tokens\n0,5,1\n\n1.5,6,2\n2.5,7,3"
    path = write(tmp_path, "b.csv", text)
    r = read_rows(open_trace(path))
    assert list(r.prompt_tokens) == [5, 6, 7] and r.skipped == 0
    assert list(r.arrival_s) == [0.0, 1.5, 2.5]


def test_generic_csv_and_jsonl_with_a_column_mapping(tmp_path):
    csv_path = write(tmp_path, "g.csv", "when_ms,in,out,other\n1000,10,2,x\n1500,20,3,y\n4000,30,4,z\n")
    cols = Columns(arrival="when_ms", arrival_unit_s=1e-3, prompt_tokens="in", output_tokens="out")
    r = read_rows(open_trace(csv_path, "csv", cols))
    assert list(r.arrival_s) == pytest.approx([0.0, 0.5, 3.0]) and list(r.prompt_tokens) == [10, 20, 30]
    lines = [{"at": "2024-01-01T00:00:00", "p": 8, "o": 1, "blocks": [1, 2]},
             {"at": "2024-01-01T00:00:02.5", "p": 9, "o": 2, "blocks": [1, 3], "extra": True}]
    jsonl = write(tmp_path, "g.jsonl", "\n".join(json.dumps(x) for x in lines))
    cols = Columns(arrival="at", arrival_datetime=True, prompt_tokens="p", output_tokens="o",
                   block_hashes="blocks", block_tokens=4)
    r = read_rows(open_trace(jsonl, columns=cols))
    assert list(r.arrival_s) == [0.0, 2.5] and list(r.hash_values) == [1, 2, 1, 3] and r.block_tokens == 4


def test_format_errors_are_clear(tmp_path):
    with pytest.raises(TraceError, match="no known trace format"):
        open_trace(write(tmp_path, "x.csv", "a,b\n1,2\n"))
    with pytest.raises(TraceError, match="no column 'in'"):
        cols = Columns(prompt_tokens="in", output_tokens="b")
        open_trace(write(tmp_path, "y.csv", "a,b\n1,2\n"), "csv", cols)
    with pytest.raises(TraceError, match="empty file"):
        open_trace(write(tmp_path, "z.csv", ""))
    with pytest.raises(TraceError, match="no rows to read"):
        read_rows(open_trace(write(tmp_path, "h.csv", AZURE)))
    with pytest.raises(TraceError, match=r"no rows to read \(1 malformed rows skipped\)"):
        read_rows(open_trace(write(tmp_path, "h.csv", AZURE + "x,y,z\n")), skip_bad_rows=True)
    with pytest.raises(TraceError, match="cannot read"):
        open_trace(tmp_path / "absent.csv")
    with pytest.raises(ValidationError, match="needs columns"):
        TraceReplay(path="t.csv", format="csv")
    with pytest.raises(ValidationError, match="time_scale"):
        TraceReplay(path="t.csv", time_scale=0)


def test_time_scale_and_rate_multiplier():
    path = DATA / "mooncake_conversation_sample.jsonl"
    base = replay(TraceReplay(path=path), np.random.default_rng(0))
    slow = replay(TraceReplay(path=path, time_scale=2.0), np.random.default_rng(0))
    assert np.array_equal(slow.arrival_s, 2 * base.arrival_s)
    double = replay(TraceReplay(path=path, rate_multiplier=2.0), np.random.default_rng(0))
    assert len(double) == 600 and double.arrival_s[-1] == base.arrival_s[-1]
    assert np.all(np.diff(double.arrival_s) >= 0)
    # copies are further users with the same habits: same lengths, their own blocks
    assert sorted(double.prompt_tokens) == sorted(np.repeat(base.prompt_tokens, 2))
    assert reuse_fraction(double.hash_values) == pytest.approx(
        1 - 2 * len(np.unique(base.hash_values)) / (2 * len(base.hash_values)))
    half = replay(TraceReplay(path=path, rate_multiplier=0.5), np.random.default_rng(0))
    assert 120 < len(half) < 180
    cut = replay(TraceReplay(path=path, time_scale=0.5), np.random.default_rng(0), duration_s=20.0)
    assert cut.arrival_s[-1] <= 20.0 and len(cut) == np.sum(base.arrival_s * 0.5 <= 20.0)
    first = replay(TraceReplay(path=path, rate_multiplier=1.7), np.random.default_rng(0), requests=50)
    assert len(first) == 50


# Numbers from the SOURCE.md files next to the shared traces (rows, span, mean rate, token means and
# nearest-rank p50/p99/max, reuse with an unbounded cache).
AZURE_CODE = (8819, 3436, 2.57, (2048, 1469, 7436, 7437), (28, 13, 252, 1899), None)
AZURE_CONV = (19366, 3502, 5.53, (1155, 1020, 4142, 14050), (211, 129, 601, 1000), None)
SHARED_TRACES = {
    "azure-llm-2023/AzureLLMInferenceTrace_code.csv": AZURE_CODE,
    "azure-llm-2023/AzureLLMInferenceTrace_conv.csv": AZURE_CONV,
    "vidur-lengths/splitwise_code.csv": AZURE_CODE,
    "vidur-lengths/splitwise_conv.csv": AZURE_CONV,
    "mooncake-fast25/conversation_trace.jsonl":
        (12031, 3536.999, 3.40, (12035, 6909, 85401, 126195), (343, 350, 1120, 2000), 0.366),
    "mooncake-fast25/synthetic_trace.jsonl":
        (3993, 1022.025, 3.91, (15325, 11587, 66458, 191378), (149, 69, 769, 893), 0.640),
    "vidur-lengths/arxiv_summarization_stats_llama2_tokenizer_filtered_v2.csv":
        (28257, None, None, (2588, 2730, None, 4054), (291, None, None, 4056), None),
    "vidur-lengths/sharegpt_8k_filtered_stats_llama2_tokenizer.csv":
        (30731, None, None, (2340, None, None, 8141), (439, None, None, 1024), None),
}


@pytest.mark.skipif(not TRACES.is_dir(), reason="shared traces not present")
@pytest.mark.parametrize("name", sorted(SHARED_TRACES))
def test_full_shared_traces_match_their_source_notes(name):
    rows, span_s, rate, prompt, output, reuse = SHARED_TRACES[name]
    r = read_rows(open_trace(TRACES / name))
    s = summarize(r.arrival_s, r.prompt_tokens, r.output_tokens, r.hash_values, r.block_tokens)
    assert s["requests"] == rows
    if span_s is None:
        assert s["duration_s"] is None
    else:
        assert s["duration_s"] == pytest.approx(span_s, abs=0.5)
        assert round(s["rate_per_s"], 2) == rate
    for key, expected in zip(("mean", "p50", "p99", "max"), prompt, strict=True):
        if expected is not None:
            assert round(s[f"prompt_tokens_{key}"]) == expected
    for key, expected in zip(("mean", "p50", "p99", "max"), output, strict=True):
        if expected is not None:
            assert round(s[f"output_tokens_{key}"]) == expected
    if reuse is None:
        assert s["block_reuse_fraction"] is None
    else:
        assert round(s["block_reuse_fraction"], 3) == reuse
        assert s["block_reuse_fraction"] == pytest.approx(independent_reuse(TRACES / name), abs=1e-12)
