"""Trace reading speed: rows per second over 1M-row files.

    python benchmarks/traces.py [--rows 1000000]

Builds 1M-row Azure (CSV), Mooncake (JSONL) and Vidur (CSV) files in a temporary folder by
repeating the shared traces (or the 300-row samples in tests/data when the shared traces are absent),
each repetition shifted in time after the previous one, then times, on one process:
(1) `read_rows`, the streaming reader (columns + flat block ids), per format;
(2) `generate` on a Mooncake trace workload, which also builds the `Requests` table with one block-id
    array per request.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from workloads.spec import Workload, generate
from workloads.trace_format import open_trace
from workloads.traces import read_rows

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "traces"
SOURCES = {
    "azure": (SHARED / "azure-llm-2023/AzureLLMInferenceTrace_conv.csv",
              ROOT / "tests/data/azure_code_sample.csv"),
    "mooncake": (SHARED / "mooncake-fast25/conversation_trace.jsonl",
                 ROOT / "tests/data/mooncake_conversation_sample.jsonl"),
    "vidur": (SHARED / "vidur-lengths/splitwise_conv.csv", ROOT / "tests/data/splitwise_conv_sample.csv"),
}


def source(fmt: str) -> Path:
    shared, sample = SOURCES[fmt]
    return shared if shared.exists() else sample


def repeat_azure(src: Path, dst: Path, rows: int) -> None:
    frame = pd.read_csv(src, encoding="utf-8-sig")
    stamps = pd.to_datetime(frame["TIMESTAMP"], format="ISO8601")
    period = stamps.iloc[-1] - stamps.iloc[0] + pd.Timedelta(seconds=1)
    reps = -(-rows // len(frame))
    big = pd.concat([frame] * reps, ignore_index=True).iloc[:rows]
    shift = np.repeat(np.arange(reps), len(frame))[:rows] * period
    big["TIMESTAMP"] = (pd.concat([stamps] * reps, ignore_index=True).iloc[:rows] + shift).dt.strftime(
        "%Y-%m-%d %H:%M:%S.%f")
    big.to_csv(dst, index=False)


def repeat_vidur(src: Path, dst: Path, rows: int) -> None:
    frame = pd.read_csv(src)
    reps = -(-rows // len(frame))
    big = pd.concat([frame] * reps, ignore_index=True).iloc[:rows]
    period = frame["arrived_at"].iloc[-1] + 1.0
    big["arrived_at"] += np.repeat(np.arange(reps), len(frame))[:rows] * period
    big.to_csv(dst, index=False)


def repeat_mooncake(src: Path, dst: Path, rows: int) -> None:
    lines = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
    period = lines[-1]["timestamp"] + 1000
    tails = [json.dumps(r)[len(f'{{"timestamp": {r["timestamp"]}'):] for r in lines]
    with dst.open("w") as f:
        for i in range(rows):
            rep, j = divmod(i, len(lines))
            f.write(f'{{"timestamp": {lines[j]["timestamp"] + rep * period}{tails[j]}\n')


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    rows = parser.parse_args().rows
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for fmt, build, suffix in (("azure", repeat_azure, "csv"), ("mooncake", repeat_mooncake, "jsonl"),
                                   ("vidur", repeat_vidur, "csv")):
            files[fmt] = Path(tmp) / f"{fmt}.{suffix}"
            build(source(fmt), files[fmt], rows)
            print(f"built {files[fmt].name}: {rows:,} rows from {source(fmt).name}, "
                  f"{files[fmt].stat().st_size / 1e6:,.0f} MB")
        for fmt, path in files.items():
            read, seconds = timed(lambda path=path: read_rows(open_trace(path)))
            assert len(read) == rows
            print(f"read_rows {fmt:9s} {rows / seconds:12,.0f} rows/s  ({seconds:.2f} s)")
        workload = Workload(trace={"path": files["mooncake"]})
        reqs, seconds = timed(lambda: generate(workload, np.random.default_rng(0), requests=rows))
        assert len(reqs) == rows and len(reqs.block_hashes) == rows
        print(f"generate  mooncake  {rows / seconds:12,.0f} rows/s  ({seconds:.2f} s, "
              "Requests with block ids)")


if __name__ == "__main__":
    main()
