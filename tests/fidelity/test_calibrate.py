"""`sim.fidelity.calibrate`: a fit recovers known curves from kernels it generated, held-out shapes are
predicted from the rest, and the shipped GPU profile of one model predicts another model's kernels and
steps."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from hardware import load_hardware
from hardware.spec import Curve, Curves
from sim.fidelity import calibrate as cal
from sim.fidelity import kernels as kernel_tables
from sim.fidelity.profile import COLUMNS
from tests.conftest import SHARED

PROFILES = Path(__file__).resolve().parents[2] / "benchmarks" / "data"


def kernels(rows):
    return (
        pd.DataFrame(rows)
        .reindex(columns=list(COLUMNS))
        .assign(dtype=lambda d: d["dtype"].fillna("bf16"), device="synthetic")
    )


def synthetic_table():
    rows = [
        {"op": "gemm", "m": m, "n": n, "k": k}
        for m in (1, 16, 128, 1024, 4096, 16384)
        for n, k in ((4096, 4096), (14336, 4096), (4096, 14336), (6144, 4096), (1024, 8192), (28672, 8192))
    ]
    rows += [
        {"op": "attention_prefill", "batch": b, "seq_len": s, "heads": h, "kv_heads": 8, "head_dim": 128}
        for b in (1, 4)
        for s in (512, 2048, 8192, 16384)
        for h in (32, 64, 16)
    ]
    rows += [
        {"op": "attention_decode", "batch": b, "kv_len": s, "heads": h, "kv_heads": 8, "head_dim": 128}
        for b in (1, 8, 64)
        for s in (1024, 8192, 65536)
        for h in (32, 64, 16)
    ]
    rows += [{"op": "memcpy", "bytes": 2.0**e} for e in range(16, 34)]
    return kernels(rows)


@pytest.fixture(scope="module")
def truth():
    hw = load_hardware("h100-sxm")
    curves = Curves(
        gemm=Curve(size=(1e9, 1e11, 1e13), efficiency=(0.3, 0.6, 0.75)),
        attention=Curve(size=(1e10, 1e13), efficiency=(0.3, 0.6)),
        memory=Curve(size=(1e5, 1e7, 1e10), efficiency=(0.2, 0.7, 0.9)),
        attention_memory=Curve(size=(1e5, 1e10), efficiency=(0.3, 0.85)),
    )
    eff = hw.efficiency.model_copy(update={"curves": curves, "op_overhead_s": 2e-6})
    return hw.model_copy(update={"efficiency": eff})


def test_fit_then_evaluate_on_held_out_shapes(truth):
    table = synthetic_table()
    table["time_s"] = cal.predict_kernels(table, truth)
    fit_rows, held = cal.split_by_shape(table)
    assert len(held) and not set(map(tuple, held[["n", "k"]].dropna().values)) & set(
        map(tuple, fit_rows[["n", "k"]].dropna().values)
    )
    fitted = cal.fit(fit_rows, load_hardware("h100-sxm"), ("synthetic",))
    assert fitted.efficiency.op_overhead_s == pytest.approx(table["time_s"].min())
    errors = cal.error_summary(cal.kernel_errors(held, fitted)).set_index("op")
    # the fit only saw other shapes; piecewise-linear knots per half decade follow the true curves
    assert (errors["median_abs_error_pct"] < 5).all(), errors
    assert fitted.efficiency.curves.gemm.efficiency[-1] == pytest.approx(0.75, abs=0.08)


def test_calibrated_file_round_trips(tmp_path, truth):
    table = synthetic_table()
    table["time_s"] = cal.predict_kernels(table, truth)
    fitted = cal.fit(table, load_hardware("h100-sxm"), ("synthetic",))
    path = tmp_path / "h100-calibrated.yaml"
    path.write_text(yaml.safe_dump(cal.to_yaml_dict(fitted), sort_keys=False))
    back = load_hardware(path)
    assert back.efficiency == fitted.efficiency
    assert back.efficiency.calibration.device == "synthetic"
    assert np.allclose(cal.predict_kernels(table, back), cal.predict_kernels(table, fitted))


def test_one_model_profile_predicts_another_model():
    small = kernel_tables.read_kernels(PROFILES / "profile-h200-llama-3.1-8b.csv")
    large = kernel_tables.read_kernels(PROFILES / "profile-h200-llama-3.1-70b.csv")
    fitted = cal.fit(small, load_hardware("h200"), ("8b",))
    errors = cal.error_summary(cal.kernel_errors(large, fitted)).set_index("op")
    assert errors.loc["gemm", "median_abs_error_pct"] < 10
    assert errors.loc["decode_step", "median_abs_error_pct"] < 15
    assert set(errors.index) >= {"gemm", "attention_prefill", "attention_decode", "memcpy", "prefill_step"}


def test_read_kernels_names_the_bad_line(tmp_path):
    bad = tmp_path / "k.csv"
    bad.write_text("op,m,n,k,time_s\ngemm,1,2,3,1e-5\nconv,1,2,3,1e-5\n")
    with pytest.raises(kernel_tables.KernelDataError, match=r"line 3: unknown op 'conv'"):
        kernel_tables.read_kernels(bad)
    bad.write_text("op,m,n,k,time_s\ngemm,1,x,3,1e-5\n")
    with pytest.raises(kernel_tables.KernelDataError, match=r"line 2: column 'n' must be a number"):
        kernel_tables.read_kernels(bad)
    bad.write_text("op,m,n,k,latency_ms\ngemm,1,2,3,1\n")
    with pytest.raises(kernel_tables.KernelDataError, match=r"unknown column 'latency_ms'"):
        kernel_tables.read_kernels(bad)


@pytest.mark.skipif(not (SHARED / "validation" / "aiconfigurator").exists(), reason="needs shared/validation")
def test_aiconfigurator_kernels_become_a_kernel_table():
    system = SHARED / "validation" / "aiconfigurator" / "data" / "a100_sxm"
    table = kernel_tables.aiconfigurator_kernels(system)
    assert set(table["op"]) == {"gemm", "attention_prefill", "attention_decode", "allreduce"}
    assert (table["time_s"] > 0).all() and (table["time_s"] < 1).all()  # ms were converted to s
    assert np.isfinite(cal.predict_kernels(table, load_hardware("a100-80g-sxm"))).all()


def nccl_table(path, hw, efficiency):
    """An NCCL all-reduce table in apex_plus's format, timed as a ring all-reduce on `hw`'s link at
    `efficiency` of its bandwidth plus 2 (g - 1) hops of its latency, with rows the reader must drop."""
    link = hw.scale_up
    lines = ["gpu,num_nodes,num_gpus_per_node,dtype,size(kb),time(us)"]
    for g in (2, 4, 8):
        for kb in [0] + [2**e for e in range(10, 18)]:
            sent = 2 * (g - 1) / g * kb * 1024
            t = 2 * (g - 1) * link.latency_s + sent / (link.bandwidth_bytes_per_s * efficiency)
            lines.append(f"H200,1,{g},half,{kb},{t * 1e6!r}")
            lines.append(f"H200,1,{g},float,{kb},{2 * t * 1e6!r}")  # 32-bit: not what the model reduces
            lines.append(f"H200,2,{g},half,{kb},{10 * t * 1e6!r}")  # two nodes: not the scale-up link
    path.write_text("\n".join(lines) + "\n")
    return path


def test_nccl_table_becomes_allreduce_kernels_and_a_link_curve(tmp_path):
    hw = load_hardware("h200")
    table = kernel_tables.load_kernels(nccl_table(tmp_path / "all_reduce.csv", hw, 0.6))
    assert set(table["op"]) == {"allreduce"} and len(table) == 3 * 8  # half, one node, size > 0
    assert table["bytes"].min() == 1024 * 1024 and table["bytes"].max() == 128 * 1024 * 1024  # KiB -> B
    assert table["time_s"].max() < 1e-2  # us -> s
    fitted = cal.fit(table, hw, ("all_reduce.csv",))
    link = fitted.efficiency.curves.link
    assert link is not None and np.allclose(link.efficiency, 0.6, rtol=1e-6)
    errors = cal.kernel_errors(table, fitted)
    assert errors["error_pct"].abs().max() < 1e-4  # the fitted device predicts every all-reduce


def test_nccl_table_errors_name_the_column_and_line(tmp_path):
    bad = tmp_path / "all_reduce.csv"
    bad.write_text("gpu,num_nodes,num_gpus_per_node,dtype,size(kb)\nH200,1,8,half,4\n")
    with pytest.raises(kernel_tables.KernelDataError, match=r"missing column 'time\(us\)'"):
        kernel_tables.nccl_allreduce_kernels(bad)
    bad.write_text(
        "gpu,num_nodes,num_gpus_per_node,dtype,size(kb),time(us)\nH200,1,8,half,4,15\nH200,1,8,half,x,15\n"
    )
    with pytest.raises(
        kernel_tables.KernelDataError, match=r"line 3: column 'size\(kb\)' must be a non-negative number"
    ):
        kernel_tables.load_kernels(bad)
    bad.write_text("gpu,num_nodes,num_gpus_per_node,dtype,size(kb),time(us)\nH200,2,8,half,4,15\n")
    with pytest.raises(kernel_tables.KernelDataError, match="no single-node 16-bit all-reduce"):
        kernel_tables.nccl_allreduce_kernels(bad)


@pytest.mark.skipif(not (SHARED / "validation" / "apex_plus-comm").exists(), reason="needs shared/validation")
def test_published_h200_nccl_table_gives_a_rising_link_curve():
    path = SHARED / "validation" / "apex_plus-comm" / "profile" / "comm" / "H200-SXM-141GB" / "all_reduce.csv"
    table = kernel_tables.load_kernels(path)
    assert set(table["gpus"]) == {2.0, 4.0, 8.0}
    link = cal.fit(table, load_hardware("h200")).efficiency.curves.link
    # 128 MiB over 8 GPUs in 710 us less 2 * 7 hops of 2 us: 2 * 7/8 * 128 MiB / 682 us = 344 GB/s,
    # 0.76 of 450 GB/s; over 2 GPUs 0.65. The last knot is the median of that largest half decade.
    assert 0.65 <= link.efficiency[-1] <= 0.77
    assert link.efficiency[0] < 0.5 * link.efficiency[-1]  # small messages are latency-bound


def test_calibrate_cli_reads_an_nccl_table(tmp_path):
    from typer.testing import CliRunner

    from sim.cli import app

    out = tmp_path / "h200-nccl.yaml"
    table = nccl_table(tmp_path / "all_reduce.csv", load_hardware("h200"), 0.5)
    r = CliRunner().invoke(app, ["calibrate", str(table), "--hardware", "h200", "-o", str(out)])
    assert r.exit_code == 0, r.output
    link = yaml.safe_load(out.read_text())["efficiency"]["curves"]["link"]
    assert np.allclose(link["efficiency"], 0.5, rtol=1e-6)


def test_fp4_gemms_get_their_own_curve():
    """On a part with an fp4 unit, fp4 GEMMs are fitted apart from fp8 ones (NVFP4 GEMMs reach a
    smaller fraction of their peak), and each recovers the curve that generated it."""
    hw = load_hardware("b200")
    curves = Curves(
        gemm=Curve(size=(1e9, 1e13), efficiency=(0.3, 0.7)),
        gemm_fp8=Curve(size=(1e9, 1e13), efficiency=(0.25, 0.6)),
        gemm_fp4=Curve(size=(1e9, 1e13), efficiency=(0.15, 0.4)),
        memory=Curve(size=(1e5, 1e10), efficiency=(0.2, 0.8)),
    )
    truth = hw.model_copy(update={"efficiency": hw.efficiency.model_copy(update={"curves": curves})})
    gemms = synthetic_table().query("op == 'gemm'")
    table = pd.concat([gemms.assign(dtype=d) for d in ("bf16", "fp8", "fp4")], ignore_index=True)
    table["time_s"] = cal.predict_kernels(table, truth)
    fitted = cal.fit(table, hw, ("synthetic",)).efficiency.curves
    assert fitted.gemm_fp4.efficiency[-1] == pytest.approx(0.4, abs=0.04)
    assert fitted.gemm_fp8.efficiency[-1] == pytest.approx(0.6, abs=0.06)
    assert fitted.gemm.efficiency[-1] == pytest.approx(0.7, abs=0.07)


def test_fp4_on_a_part_without_an_fp4_unit_is_a_bf16_gemm():
    """An H100 has no fp4 unit: fp4 weights are dequantised into bf16 math, at the bf16 peak and
    on the bf16 curve, so its kernels join the bf16 fit and no fp4 curve is made."""
    hw = load_hardware("h100-sxm")
    assert hw.peak_flops.unit_for("fp4") == "bf16" and hw.peak_flops.for_dtype("fp4") == hw.peak_flops.bf16
    gemms = synthetic_table().query("op == 'gemm'").assign(dtype="fp4")
    gemms["time_s"] = cal.predict_kernels(gemms, hw)
    assert cal.fit(gemms, hw, ("synthetic",)).efficiency.curves.gemm_fp4 is None


def test_published_b200_nvfp4_gemms_reach_less_of_their_peak_than_fp8():
    """aiconfigurator's B200 tables (shipped, benchmarks/data/public/aiconfigurator): NVFP4 GEMMs of
    10^12 to 10^13 FLOPs (prefill-sized) reach a smaller fraction of the fp4 peak (vLLM's: 0.44-0.49)
    than fp8 GEMMs of the fp8 peak (0.52-0.57)."""
    table = kernel_tables.aiconfigurator_kernels(PROFILES / "public" / "aiconfigurator" / "b200_sxm", "vllm")
    assert set(table.query("op == 'gemm'")["dtype"]) == {"bf16", "fp8", "fp4"}
    curves = cal.fit(table, load_hardware("b200"), ("b200",)).efficiency.curves
    for size in (1e12, 1e13):
        fp4 = np.interp(np.log10(size), np.log10(curves.gemm_fp4.size), curves.gemm_fp4.efficiency)
        fp8 = np.interp(np.log10(size), np.log10(curves.gemm_fp8.size), curves.gemm_fp8.efficiency)
        assert fp4 < 0.9 * fp8, size
