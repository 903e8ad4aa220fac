"""Sanity checks and summary counts for serving_measurements.csv.

Run: python benchmarks/data/public/check.py
"""
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
CSV = HERE / "serving_measurements.csv"

NON_NVIDIA_PREFIXES = ("MI", "TPU", "Tenstorrent", "Gaudi", "Trainium", "Inferentia")
UNDER_LOAD = {"poisson_rate", "fixed_concurrency"}


def main() -> int:
    df = pd.read_csv(CSV, dtype=str, keep_default_na=False)
    problems = []
    for col in ("source_id", "unit", "metric", "value"):
        bad = df[df[col].str.strip() == ""]
        if len(bad):
            problems.append(f"{len(bad)} rows without {col}: row_id {list(bad.row_id)[:10]}")
    no_loc = df[(df.source_repo.str.strip() == "") & (df.source_path.str.strip() == "")]
    if len(no_loc):
        problems.append(f"{len(no_loc)} rows with neither source_repo nor source_path")
    repo_no_commit = df[(df.source_repo.str.strip() != "") & (df.source_commit.str.strip() == "")
                        & ~df.source_path.str.contains("https://", regex=False)]
    if len(repo_no_commit):
        problems.append(f"{len(repo_no_commit)} repository rows without a commit or URL")
    vals = pd.to_numeric(df.value, errors="coerce")
    if vals.isna().any():
        problems.append(f"non-numeric values in rows {list(df.row_id[vals.isna()])[:10]}")
    if df.row_id.duplicated().any():
        problems.append("duplicate row_id")

    pd.set_option("display.width", 160)
    print(f"rows: {len(df)}")
    print("\nrows by source_id:")
    print(df.source_id.value_counts().sort_index().to_string())
    print("\nrows by scenario:")
    print(df.scenario.value_counts().to_string())
    under_load = df[df.scenario.isin(UNDER_LOAD)]
    print(f"\nserving rows under load (poisson_rate or fixed_concurrency): {len(under_load)}")
    print("  by framework:", under_load.framework.str.split(" ").str[0].value_counts().to_dict())

    inl = pd.to_numeric(df.input_len, errors="coerce")
    long_rows = df[inl >= 131072]
    print(f"\nrows with input_len >= 131072: {len(long_rows)}")
    print(long_rows.groupby(["source_id", "gpu"]).size().to_string())

    non_nv = df[df.gpu.str.startswith(NON_NVIDIA_PREFIXES)]
    print(f"\nrows on non-NVIDIA hardware: {len(non_nv)}")
    print(non_nv.groupby(["gpu", "framework"]).size().to_string())

    print("\nGPUs:", sorted(df.gpu.unique()))
    print("models:", sorted(df.model.unique()))
    if problems:
        print("\nPROBLEMS:")
        for p in problems:
            print(" -", p)
        return 1
    print("\nall rows have a source, a unit and a numeric value")
    return 0


if __name__ == "__main__":
    sys.exit(main())
