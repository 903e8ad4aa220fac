"""Example scenarios double as goldens: their summaries must match the reviewed CSVs in tests/golden/.
Regenerate with `python scripts/regen_goldens.py` and review the diff; never edit a value by hand."""

import math
from pathlib import Path

import pandas as pd
import pytest

from scripts.regen_goldens import GOLDEN, SCENARIOS, golden_summary


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_example_matches_golden(path: Path):
    golden = pd.read_csv(GOLDEN / f"{path.stem}.summary.csv").set_index("metric")["value"]
    actual = golden_summary(path).set_index("metric")["value"]
    assert set(golden.index) == set(actual.index), "summary keys changed: regenerate the goldens"
    rows = []
    for metric, want in golden.items():
        got = actual[metric]
        if pd.isna(want) and pd.isna(got):
            continue
        if str(want) in ("True", "False"):  # flags such as steady_state, read back from the CSV as text
            if str(want) != str(got):
                rows.append(f"{metric:34s} golden {want} actual {got}")
            continue
        want_f, got_f = float(want), float(got)
        if not math.isclose(want_f, got_f, rel_tol=1e-6, abs_tol=1e-12):
            rows.append(
                f"{metric:34s} golden {want_f:<14.6g} actual {got_f:<14.6g} delta {got_f - want_f:+.3g}"
            )
    assert not rows, "\n" + "\n".join(rows)
