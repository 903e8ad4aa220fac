"""Does a per-step framework overhead plus tree all-reduce latency explain splitwise-sim's timings?

    python benchmarks/step_overhead.py [--validation ../shared/validation]

splitwise-sim measured Llama-2-70B per-token decode time (TPOT) and batch prefill time (TTFT) on
A100 and H100 at TP 2, 4 and 8. Kernel-calibrated ctxsim is 25-65% too fast there, and the gap grows
with TP. For each GPU this fits two numbers on the TP 2 and TP 4 TPOT rows only, by least squares on
relative error: `efficiency.step_overhead_s` (paid once per step) and the scale-up link's per-hop
latency with a tree all-reduce (2*ceil(log2 tp) hops, 2 all-reduces a layer). It then scores, with
the real cost model, the rows the fit never read: TPOT at TP 8, and every TTFT row.
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from hardware import Accelerator, load_hardware
from sim import validate as val

ROOT = Path(__file__).resolve().parents[1]
GPUS = {"a100-80gb": "a100-80g-sxm-calibrated.yaml", "h100-80gb": "h100-sxm-calibrated.yaml"}


def with_overheads(hw: Accelerator, step_s: float, hop_s: float) -> Accelerator:
    data = hw.model_dump()
    data["efficiency"]["step_overhead_s"] = step_s
    data["scale_up"] = {**data["scale_up"], "latency_s": hop_s, "algorithm": "tree"}
    return Accelerator.model_validate(data)


def predict(rows: pd.DataFrame, model, hw: Accelerator) -> np.ndarray:
    """Predicted value of each row in its unit (ms), per token for TPOT, per batch for TTFT."""
    return np.array([val.predict_row(r, model, hw, engine=False).value for r in rows.itertuples(index=False)])


def fit(rows: pd.DataFrame, base: np.ndarray, layers: int) -> tuple[float, float]:
    """(step overhead s, per-hop latency s) minimising squared relative error, both >= 0. Each step
    adds the overhead once and 2 * layers all-reduces of 2*ceil(log2 tp) hops each."""
    y = rows["value"].astype(float).to_numpy() / 1e3
    tp = rows["tp"].astype(float).to_numpy()
    hops = 2 * layers * 2 * np.ceil(np.log2(tp))
    design = np.column_stack([np.ones_like(y), hops]) / y[:, None]
    (step_s, hop_s), *_ = np.linalg.lstsq(design, (y - base / 1e3) / y, rcond=None)
    return max(step_s, 0.0), max(hop_s, 0.0)


def errors(rows: pd.DataFrame, pred: np.ndarray) -> tuple[float, float]:
    err = np.abs(pred / rows["value"].astype(float).to_numpy() - 1) * 100
    return float(np.median(err)), float(np.percentile(err, 90))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--validation", type=Path, default=ROOT.parent / "shared" / "validation")
    args = ap.parse_args()
    rows = val.splitwise_measurements(args.validation / "splitwise-sim" / "perf_model.csv")
    rows = rows[rows["model"].str.lower().str.contains("llama2-70b")]
    model = val.resolve_model("llama2-70b", "FP16", ROOT / "tests" / "data" / "validation" / "models")
    out = []
    for gpu, preset in GPUS.items():
        calibrated = load_hardware(ROOT / "benchmarks" / "data" / preset)
        zero = with_overheads(calibrated, 0.0, 0.0)
        mine = rows[rows["gpu"] == gpu]
        tp = mine["tp"].astype(int)
        train = mine[(mine["metric"] == "tpot") & tp.isin([2, 4])]
        step_s, hop_s = fit(train, predict(train, model, zero), model.num_layers)
        fitted = with_overheads(calibrated, step_s, hop_s)
        print(f"{gpu}: fitted on {len(train)} TPOT rows at TP 2/4: step overhead {step_s * 1e3:.2f} ms, "
              f"tree all-reduce hop latency {hop_s * 1e6:.1f} us")
        groups = {
            "TPOT, TP 2/4 (fitted on)": train,
            "TPOT, TP 8 (held out)": mine[(mine["metric"] == "tpot") & (tp == 8)],
            "TTFT, all TP (held out)": mine[mine["metric"] == "ttft"],
        }
        for name, part in groups.items():
            before = errors(part, predict(part, model, calibrated))
            after = errors(part, predict(part, model, fitted))
            out.append({"gpu": gpu, "rows": name, "n": len(part), "median before %": before[0],
                        "p90 before %": before[1], "median after %": after[0], "p90 after %": after[1]})
    table = pd.DataFrame(out)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))


if __name__ == "__main__":
    main()
