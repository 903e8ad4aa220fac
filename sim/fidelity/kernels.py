"""Kernel tables: timed kernels, one row each, in the columns of `sim.fidelity.profile.COLUMNS` (what
`ctxsim profile` writes), read and checked so that every error names the file, line and column.

`read_kernels` reads a `ctxsim profile` CSV; `aiconfigurator_kernels` turns that project's published
H100/A100 measurements into the same table, and `nccl_allreduce_kernels` a measured NCCL all-reduce
table (apex_plus's format); `load_kernels` tells them apart. `sim.fidelity.calibrate` fits on them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sim.fidelity.profile import COLUMNS

KERNEL_OPS = (
    "gemm",
    "attention_prefill",
    "attention_decode",
    "memcpy",
    "allreduce",
    "prefill_step",
    "decode_step",
)
STEP_OPS = ("prefill_step", "decode_step")
NUMERIC = tuple(c for c in COLUMNS if c not in ("device", "op", "dtype", "model", "source"))


class KernelDataError(ValueError):
    """A kernel table that cannot be read; the message names the file, line and column."""


def read_kernels(path: str | Path) -> pd.DataFrame:
    """A kernel table (`sim.fidelity.profile.COLUMNS`), checked: every column known, every row's op known, its
    time positive and the numbers it needs present. Errors name the file line (header = line 1)."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise KernelDataError(f"{path}: cannot read as CSV: {exc}") from exc
    unknown = [c for c in df.columns if c not in COLUMNS]
    if unknown:
        raise KernelDataError(
            f"{path}: unknown column {unknown[0]!r}; kernel tables have {', '.join(COLUMNS)}"
        )
    missing = [c for c in ("op", "time_s") if c not in df.columns]
    if missing:
        raise KernelDataError(f"{path}: missing column {missing[0]!r}")
    df = df.reindex(columns=list(COLUMNS), fill_value="")
    need = {
        "gemm": ("m", "n", "k"),
        "attention_prefill": ("batch", "seq_len", "heads", "kv_heads", "head_dim"),
        "attention_decode": ("batch", "kv_len", "heads", "kv_heads", "head_dim"),
        "memcpy": ("bytes",),
        "allreduce": ("bytes", "gpus"),
        "prefill_step": ("batch", "seq_len", "model"),
        "decode_step": ("batch", "kv_len", "model"),
    }
    for i, row in enumerate(df.itertuples(index=False), start=2):
        if row.op not in need:
            raise KernelDataError(f"{path}: line {i}: unknown op {row.op!r}; ops are {', '.join(KERNEL_OPS)}")
        for col in ("time_s", *need[row.op]):
            value = getattr(row, col)
            if col == "model":
                if not value:
                    raise KernelDataError(f"{path}: line {i}: {row.op} needs column 'model'")
                continue
            try:
                number = float(value)
            except ValueError:
                raise KernelDataError(
                    f"{path}: line {i}: column {col!r} must be a number, got {value!r}"
                ) from None
            if not number > 0:
                raise KernelDataError(f"{path}: line {i}: column {col!r} must be positive, got {value!r}")
    out = df.copy()
    for col in NUMERIC:
        out[col] = pd.to_numeric(df[col].replace("", np.nan))
    out["dtype"] = df["dtype"].replace("", "bf16")
    return out


def aiconfigurator_kernels(system_dir: str | Path, framework: str = "trtllm") -> pd.DataFrame:
    """aiconfigurator's measured kernels for one system (`.../data/h100_sxm`) as a kernel table: GEMMs
    (bf16, fp8, and nvfp4 as fp4 where the system measured it), full-attention context and
    generation attention in bf16, NCCL all-reduce (half).
    Latencies there are milliseconds, message sizes elements."""
    root = Path(system_dir)

    def table(sub: str, name: str) -> pd.DataFrame:
        files = (
            sorted((root / sub / framework).glob(f"*/{name}.parquet"))
            if sub != "comm"
            else sorted((root / "comm" / "nccl").glob(f"*/{name}.parquet"))
        )
        if not files:
            raise KernelDataError(f"{root}: no {sub}/{framework}/*/{name}.parquet")
        return pd.read_parquet(files[-1])

    device = root.name
    g = table("gemm", "gemm_perf")
    dtypes = {"bfloat16": "bf16", "fp8": "fp8", "nvfp4": "fp4"}
    g = g[g.gemm_dtype.isin(list(dtypes))]
    gemm = pd.DataFrame(
        {
            "op": "gemm",
            "dtype": g.gemm_dtype.map(dtypes),
            "m": g.m,
            "n": g.n,
            "k": g.k,
            "time_s": g.latency / 1e3,
        }
    )
    parts = [gemm]
    for name, op, length in (
        ("context_attention_perf", "attention_prefill", "seq_len"),
        ("generation_attention_perf", "attention_decode", "kv_len"),
    ):
        a = table("attention", name)
        a = a[(a.attn_dtype == "bfloat16") & (a.kv_cache_dtype == "bfloat16") & (a.window_size == 0)]
        parts.append(
            pd.DataFrame(
                {
                    "op": op,
                    "dtype": "bf16",
                    "batch": a.batch_size,
                    length: a.isl if op == "attention_prefill" else a.step,
                    "heads": a.num_heads,
                    "kv_heads": a.num_key_value_heads,
                    "head_dim": a.head_dim,
                    "time_s": a.latency / 1e3,
                }
            )
        )
    c = table("comm", "nccl_perf")
    c = c[(c.op_name == "all_reduce") & (c.nccl_dtype == "half")]
    parts.append(
        pd.DataFrame(
            {
                "op": "allreduce",
                "dtype": "bf16",
                "bytes": c.message_size * 2.0,
                "gpus": c.num_gpus,
                "time_s": c.latency / 1e3,
            }
        )
    )
    out = pd.concat(parts, ignore_index=True).reindex(columns=list(COLUMNS))
    out["device"] = device
    out["source"] = f"aiconfigurator {device} {framework}"
    return out


NCCL_TABLE_COLUMNS = ("num_nodes", "num_gpus_per_node", "size(kb)", "time(us)")
SIXTEEN_BIT = ("half", "fp16", "float16", "bf16", "bfloat16")


def nccl_allreduce_kernels(path: str | Path) -> pd.DataFrame:
    """A measured NCCL all-reduce table in apex_plus's format (`gpu, num_nodes, num_gpus_per_node,
    dtype, size(kb), time(us)`: one timed all-reduce of `size(kb)` KiB over the GPUs of one or more
    nodes) as a kernel table: single-node rows of non-zero size in a 16-bit dtype (the activations
    the cost model all-reduces), `bytes` the message, `gpus` the GPUs per node. Errors name the file
    and the column or line."""
    path = Path(path)
    try:
        df = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise KernelDataError(f"{path}: cannot read as CSV: {exc}") from exc
    missing = [c for c in NCCL_TABLE_COLUMNS if c not in df.columns]
    if missing:
        raise KernelDataError(
            f"{path}: missing column {missing[0]!r}; NCCL tables have {', '.join(NCCL_TABLE_COLUMNS)}"
        )
    for col in NCCL_TABLE_COLUMNS:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() | (values < 0)
        if bad.any():
            first = int(np.flatnonzero(bad.to_numpy())[0])
            raise KernelDataError(
                f"{path}: line {first + 2}: column {col!r} must be a non-negative number, "
                f"got {df[col].iloc[first]!r}"
            )
        df[col] = values
    keep = (df["num_nodes"] == 1) & (df["size(kb)"] > 0) & (df["time(us)"] > 0)
    if "dtype" in df:
        keep &= df["dtype"].astype(str).str.strip().str.lower().isin(SIXTEEN_BIT)
    one_node = df[keep]
    if one_node.empty:
        raise KernelDataError(f"{path}: no single-node 16-bit all-reduce of non-zero size and time")
    out = pd.DataFrame(
        {
            "op": "allreduce",
            "dtype": "bf16",
            "bytes": one_node["size(kb)"].to_numpy(float) * 1024.0,
            "gpus": one_node["num_gpus_per_node"].to_numpy(float),
            "time_s": one_node["time(us)"].to_numpy(float) / 1e6,
        }
    ).reindex(columns=list(COLUMNS))
    out["device"] = str(one_node["gpu"].iloc[0]) if "gpu" in one_node else path.parent.name
    out["source"] = f"NCCL all-reduce table {path.name}"
    return out


def load_kernels(path: str | Path) -> pd.DataFrame:
    """The kernel table at `path`: an aiconfigurator system folder, an NCCL all-reduce table (its
    `size(kb)` / `time(us)` header), or a `ctxsim profile` CSV."""
    path = Path(path)
    if path.is_dir():
        return aiconfigurator_kernels(path)
    try:
        with path.open(encoding="utf-8") as f:
            header = f.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise KernelDataError(f"{path}: cannot read: {exc}") from exc
    if "size(kb)" in (h.strip() for h in header.split(",")):
        return nccl_allreduce_kernels(path)
    return read_kernels(path)
