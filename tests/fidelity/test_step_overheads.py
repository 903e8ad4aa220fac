"""Per-step framework overhead and tree all-reduce latency, fitted from measured step timings."""

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from hardware import load_hardware
from sim import validate as val
from sim.overheads import Overheads, fit_overheads, with_overheads
from sim.cli import app

DATA = Path(__file__).resolve().parents[1] / "data" / "validation"
STEPS = DATA / "splitwise_a100_steps_sample.csv"
runner = CliRunner()


def rows_and_models():
    rows = val.read_measurements(STEPS)
    models = [val.resolve_model(r.model, r.precision, DATA / "models") for r in rows.itertuples(index=False)]
    return rows, models


def test_fit_recovers_overheads_it_generated():
    """Rows whose 'measured' values are the cost model's own predictions with 2 ms per step and
    12 us per hop fit back to exactly those two numbers."""
    rows, models = rows_and_models()
    truth = with_overheads(load_hardware("a100-80g-sxm"), Overheads(2e-3, 12e-6))
    synthetic = rows.copy()
    synthetic["value"] = [
        str(val.predict_row(r, m, truth, engine=False).value)
        for r, m in zip(rows.itertuples(index=False), models, strict=True)
    ]
    knobs = fit_overheads(synthetic, models, load_hardware("a100-80g-sxm"))
    assert knobs.step_overhead_s == pytest.approx(2e-3, rel=1e-6)
    assert knobs.hop_latency_s == pytest.approx(12e-6, rel=1e-6)
    assert knobs.moe_gemm == 1.0  # no MoE row: the knob stays at its default


def test_fit_refuses_rows_it_cannot_use():
    rows, models = rows_and_models()
    with pytest.raises(ValueError, match="metric 'power'; overheads are fitted on tpot, ttft"):
        fit_overheads(rows.assign(metric="power"), models, load_hardware("a100-80g-sxm"))
    offline = rows.assign(metric="output_token_throughput")
    with pytest.raises(ValueError, match="offline throughput needs the engine"):
        fit_overheads(offline, models, load_hardware("a100-80g-sxm"))


def test_calibrate_steps_with_held_out_tp(tmp_path):
    out = tmp_path / "a100-steps.yaml"
    r = runner.invoke(
        app,
        [
            "calibrate",
            "--hardware",
            "a100-80g-sxm",
            "-o",
            str(out),
            "--steps",
            str(STEPS),
            "--holdout-tp",
            "8",
            "--models",
            str(DATA / "models"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "held out (TP 8)" in r.stdout
    hw = load_hardware(out)
    assert hw.scale_up.algorithm == "tree"
    assert hw.efficiency.step_overhead_s > 0 or hw.scale_up.latency_s > 2e-6
    rows, models = rows_and_models()
    held = rows[rows["tp"].astype(int) == 8]
    held_models = [m for m, tp in zip(models, rows["tp"].astype(int), strict=True) if tp == 8]

    def median_error(device):
        pred = [
            val.predict_row(r, m, device, engine=False).value
            for r, m in zip(held.itertuples(index=False), held_models, strict=True)
        ]
        return float((abs(pd.Series(pred) / held["value"].astype(float).to_numpy() - 1)).median())

    assert median_error(hw) < 0.5 * median_error(load_hardware("a100-80g-sxm"))


def test_calibrate_needs_something_to_fit(tmp_path):
    r = runner.invoke(app, ["calibrate", "--hardware", "a100-80g-sxm", "-o", str(tmp_path / "x.yaml")])
    assert r.exit_code == 2 and "give kernel measurements, --steps, or both" in r.stderr
    assert not (tmp_path / "x.yaml").exists()
