"""Regenerate the golden summaries in tests/golden/ from the example scenarios.

    python scripts/regen_goldens.py

Review the diff before committing: a changed golden means changed numbers for users.
"""

from pathlib import Path

import pandas as pd

from sim.api import run
from sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
EXAMPLES = ROOT / "examples"
# every example scenario but the streamed day (minutes, and `--stream` only); sweeps are not scenarios
SCENARIOS = sorted(
    [
        *EXAMPLES.glob("*.yaml"),
        *(EXAMPLES / "cluster").glob("*.yaml"),
        *(EXAMPLES / "workloads").glob("*.yaml"),
    ]
)
VOLATILE = {"sim_wall_s"}
TEXT = {"cost_basis"}  # not a number: the price's basis, checked by the pricing tests


def golden_summary(path: Path) -> pd.DataFrame:
    summary = run(load_scenario(path)).summary.to_dict()
    keys = [k for k, v in summary.items() if k not in VOLATILE | TEXT and not isinstance(v, list)]
    return pd.DataFrame({"metric": keys, "value": [summary[k] for k in keys]})


if __name__ == "__main__":
    GOLDEN.mkdir(exist_ok=True)
    for path in SCENARIOS:
        out = GOLDEN / f"{path.stem}.summary.csv"
        golden_summary(path).to_csv(out, index=False)
        print(f"wrote {out.relative_to(ROOT)}")
