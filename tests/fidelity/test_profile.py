"""`ctxsim profile --tiny` on a CPU: the whole path from a model preset to a kernel table that
`ctxsim calibrate` reads and fits (skipped where PyTorch is not installed)."""

import pytest
from typer.testing import CliRunner

from hardware import load_hardware
from sim.cli import app
from sim.fidelity import calibrate as cal
from sim.fidelity import kernels as kernel_tables

pytest.importorskip("torch")


def said(result):
    """The command's output with line wrapping undone."""
    return " ".join(result.output.split())


def test_profile_tiny_on_cpu_feeds_calibrate(tmp_path):
    runner = CliRunner()
    table = tmp_path / "profile.csv"
    r = runner.invoke(
        app, ["profile", "--model", "llama-3.1-8b", "-o", str(table), "--device", "cpu", "--tiny"]
    )
    assert r.exit_code == 0, r.output
    kernels = kernel_tables.read_kernels(table)
    assert set(kernels["op"]) == {
        "gemm",
        "attention_prefill",
        "attention_decode",
        "memcpy",
        "prefill_step",
        "decode_step",
    }
    assert (kernels["time_s"] > 0).all() and (kernels["device"] == "cpu").all()
    step = kernels[kernels["op"] == "decode_step"].iloc[0]
    assert cal.step_model(step["model"]).num_layers == 2
    out = tmp_path / "cpu.yaml"
    r = runner.invoke(app, ["calibrate", str(table), "--hardware", "h100-sxm", "-o", str(out), "--holdout"])
    assert r.exit_code == 0, r.output
    assert "held out" in r.stdout
    assert load_hardware(out).efficiency.calibration.device == "cpu"


def test_profile_rejects_models_it_cannot_build(tmp_path):
    r = CliRunner().invoke(
        app, ["profile", "--model", "deepseek-v3", "-o", str(tmp_path / "p.csv"), "--device", "cpu", "--tiny"]
    )
    assert r.exit_code != 0
    assert "MLA, SSM and windowed models are not supported" in said(r)
    assert not (tmp_path / "p.csv").exists()
