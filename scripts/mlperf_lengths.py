"""Writes sim/fidelity/datasets/*.csv.gz: per-sample (prompt, output) token counts of the MLPerf
Inference datasets, which `sim.fidelity.serving` draws each simulated request of a benchmark row from.

    python scripts/mlperf_lengths.py SUMMARIES_DIR

SUMMARIES_DIR holds mlperf-data/summaries/<name>.csv of github.com/openshift-psap/performance-dashboard
(commit 7100702): one row per sample of the official MLCommons dataset file, `input_length` and
`output_length`. Prompt lengths are kept as they are. Output lengths are the tokens the benchmarked
model generates, whose mean MLCommons publishes (`sim.fidelity.serving.DATASET_LENGTHS`):

- mixtral-8x7b and llama3.1-405b: the file's outputs are the reference generations, whose mean is
  already MLCommons' published one; kept.
- llama2-70b: the file's outputs are the dataset's GPT-4 answers (mean 218.9 tokens), not Llama-2-70B's
  (294.45); their shape is kept, scaled so that, capped at the benchmark's 1,024, their mean is the
  published one.
- deepseek-r1: the file's reference outputs (mean 4,043.5) are scaled so that, capped at the
  benchmark's 32,768, their mean is the published 3,886.2.
- llama3.1-8b: the file's output column is a character count over four, not tokens; every output is
  the benchmark's measured mean (the reference caps generation at 128 tokens).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sim.fidelity.serving import DATASET_FILES, DATASET_LENGTHS

OUT = Path(__file__).resolve().parents[1] / "sim" / "fidelity" / "datasets"
# summary file, how its outputs become generated tokens ("keep", "scale" or "mean"), output cap
SUMMARIES = {
    "llama2-70b": ("llama2-70b-99.csv", "scale", 1024),
    "mixtral-8x7b": ("mixtral-8x7b.csv", "keep", None),
    "llama3.1-405b": ("llama3-1-405b.csv", "keep", None),
    "deepseek-r1": ("deepseek-r1.csv", "scale", 32768),
    "llama3.1-8b": ("llama3-1-8b-datacenter.csv", "mean", None),
}


def lengths(summary: pd.DataFrame, how: str, cap: int | None, mean_output: float) -> pd.DataFrame:
    raw = summary["output_length"].to_numpy(float)
    cap = cap or np.inf
    if how == "keep":
        out = np.clip(raw, 1, cap)
    elif how == "mean":
        out = np.full(len(raw), mean_output)
    else:  # scale until the mean after the cap is the published one
        scale = 1.0
        for _ in range(50):
            out = np.clip(np.rint(raw * scale), 1, cap)
            scale *= mean_output / out.mean()
    out = np.rint(out).astype(np.int64)
    return pd.DataFrame({"prompt_tokens": summary["input_length"].astype(np.int64), "output_tokens": out})


def main(summaries: Path) -> None:
    OUT.mkdir(exist_ok=True)
    for dataset, name in DATASET_FILES.items():
        file, how, cap = SUMMARIES[name]
        table = lengths(pd.read_csv(summaries / file), how, cap, DATASET_LENGTHS[dataset][1])
        table.to_csv(OUT / f"{name}.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
        print(f"{name}: {len(table)} samples, mean {table.mean().round(2).to_dict()}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
