"""Does a per-step framework overhead plus tree all-reduce latency explain splitwise-sim's timings?

    python benchmarks/step_overhead.py [--validation ../shared/validation]

splitwise-sim measured Llama-2-70B per-token decode time (TPOT) and batch prefill time (TTFT) on
A100 and H100 at TP 2, 4 and 8. Kernel-calibrated ctxsim is 25-65% too fast there, and the gap grows
with TP. For each GPU this fits `sim.fidelity.overheads.fit_overheads` on the TP 2 and TP 4 TPOT rows only,
by least squares on relative error: `efficiency.step_overhead_s` (paid once per step), the scale-up
link's per-hop latency with a tree all-reduce (2*ceil(log2 tp) hops, 2 all-reduces a layer) and the
fraction of the link's bandwidth its all-reduces reach (`efficiency.collective`; grouped expert GEMMs
do not apply to a dense model). It then scores, with the real cost model, the rows the fit never
read: TPOT at TP 8, and every TTFT row.
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from hardware import Accelerator, load_hardware
from sim.fidelity import validate as val
from sim.fidelity.overheads import fit_overheads, with_overheads

ROOT = Path(__file__).resolve().parents[1]
GPUS = {"a100-80gb": "a100-80g-sxm-calibrated.yaml", "h100-80gb": "h100-sxm-calibrated.yaml"}


def predict(rows: pd.DataFrame, model, hw: Accelerator) -> np.ndarray:
    """Predicted value of each row in its unit (ms), per token for TPOT, per batch for TTFT."""
    return np.array([val.predict_row(r, model, hw, engine=False).value for r in rows.itertuples(index=False)])


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
        mine = rows[rows["gpu"] == gpu]
        tp = mine["tp"].astype(int)
        train = mine[(mine["metric"] == "tpot") & tp.isin([2, 4])]
        knobs = fit_overheads(train, [model] * len(train), calibrated)
        fitted = with_overheads(calibrated, knobs)
        print(
            f"{gpu}: fitted on {len(train)} TPOT rows at TP 2/4: step overhead "
            f"{knobs.step_overhead_s * 1e3:.2f} ms (+ {knobs.seq_overhead_s * 1e6:.1f} us per sequence), "
            "tree all-reduce hop latency "
            f"{knobs.hop_latency_s * 1e6:.1f} us, all-reduces at {knobs.collective:.2f} of the link's "
            "bandwidth"
        )
        groups = {
            "TPOT, TP 2/4 (fitted on)": train,
            "TPOT, TP 8 (held out)": mine[(mine["metric"] == "tpot") & (tp == 8)],
            "TTFT, all TP (held out)": mine[mine["metric"] == "ttft"],
        }
        for name, part in groups.items():
            before = errors(part, predict(part, model, calibrated))
            after = errors(part, predict(part, model, fitted))
            out.append(
                {
                    "gpu": gpu,
                    "rows": name,
                    "n": len(part),
                    "median before %": before[0],
                    "p90 before %": before[1],
                    "median after %": after[0],
                    "p90 after %": after[1],
                }
            )
    table = pd.DataFrame(out)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))


if __name__ == "__main__":
    main()
