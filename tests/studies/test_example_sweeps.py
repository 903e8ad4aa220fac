"""Every sweep file under examples/ runs as written: each of its points validates and fits its
hardware (running them is the examples' job; they take seconds each)."""

from pathlib import Path

import pytest

from sim.studies.sweep import load_sweep

SWEEPS = sorted((Path(__file__).resolve().parents[2] / "examples" / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_example_sweep_points_validate(path):
    assert load_sweep(path).points
