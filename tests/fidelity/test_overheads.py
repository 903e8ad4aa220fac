"""Framework knobs of a serving stack (overhead per step and per sequence, tree hop latency, grouped
expert GEMM speed, achieved all-reduce bandwidth), fitted from end-to-end rows, and the split that
keeps scored rows out of the fit."""

import itertools
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from hardware import load_hardware
from sim.cli import app
from sim.cost.parallelism import Parallelism
from sim.cost.roofline import RooflineCost
from sim.fidelity import validate as val
from sim.fidelity.overheads import (
    Overheads,
    fit_overheads,
    fit_stacks,
    overhead_system,
    roofline_device,
    solve,
    split_by_workload,
    validate_stacks,
    with_overheads,
)

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
    assert knobs.collective == pytest.approx(1.0, abs=1e-6)  # generated at the link's own bandwidth


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


def measurement(**fields) -> dict:
    base = {c: "" for c in val.MEASUREMENT_COLUMNS}
    return {**base, "pp": "1", "batch_size": "1", "unit": "ms", **fields}


def synthetic(rows: pd.DataFrame, truth, engine: bool = False) -> tuple[pd.DataFrame, list]:
    """`rows` with each value replaced by the cost model's prediction on `truth(row)`."""
    models = [val.resolve_model(r.model, r.precision, DATA / "models") for r in rows.itertuples(index=False)]
    values = [
        str(val.predict_row(r, m, truth(r), engine).value)
        for r, m in zip(rows.itertuples(index=False), models, strict=True)
    ]
    return rows.assign(value=values), models


STATIC = pd.DataFrame(
    [
        measurement(
            row_id="a",
            model="Mixtral 8x7B",
            gpu="H100",
            tp="2",
            num_gpus="2",
            metric="ttft",
            input_len="2048",
        ),
        measurement(
            row_id="b",
            model="Mixtral 8x7B",
            gpu="H100",
            tp="2",
            num_gpus="2",
            metric="output_throughput_per_gpu",
            input_len="128",
            output_len="128",
            batch_size="64",
            unit="output tokens/s/gpu",
        ),
        measurement(
            row_id="c",
            model="LLaMA 70B",
            gpu="H100",
            tp="4",
            num_gpus="4",
            metric="tpot",
            input_len="512",
            output_len="128",
            batch_size="8",
        ),
        measurement(
            row_id="d", model="LLaMA 70B", gpu="H100", tp="8", num_gpus="8", metric="ttft", input_len="128"
        ),
        measurement(
            row_id="e", model="LLaMA 7B", gpu="H100", tp="1", num_gpus="1", metric="ttft", input_len="128"
        ),
        measurement(
            row_id="f",
            model="LLaMA 7B",
            gpu="H100",
            tp="1",
            num_gpus="1",
            metric="output_throughput_per_gpu",
            input_len="2048",
            output_len="128",
            batch_size="16",
            unit="output tokens/s/gpu",
        ),
    ],
).assign(source_id="STACK-A", precision="FP16")


def test_fit_recovers_all_three_knobs_from_throughput_and_latency_rows():
    """Static-batch throughput, TTFT and TPOT rows, two of them Mixtral, generated with 1.5 ms per step,
    8 us per hop and grouped expert GEMMs at 0.7 of dense speed, fit back to those three numbers."""
    truth = with_overheads(load_hardware("h100-sxm"), Overheads(1.5e-3, 8e-6, 0.7))
    rows, models = synthetic(STATIC, lambda r: truth)
    knobs = fit_overheads(rows, models, load_hardware("h100-sxm"))
    assert knobs.step_overhead_s == pytest.approx(1.5e-3, rel=1e-6)
    assert knobs.hop_latency_s == pytest.approx(8e-6, rel=1e-6)
    assert knobs.moe_gemm == pytest.approx(0.7, rel=1e-6)
    assert knobs.collective == pytest.approx(1.0, abs=1e-6)


def test_fit_tells_the_overhead_per_sequence_from_the_one_per_step():
    """The same rows generated with 1.5 ms per step and 30 us per sequence of a step as well: rows at
    batch 1, 8, 16 and 64 separate the two (a batch of 64 pays 1.5 + 1.92 ms a step, one request
    1.53 ms), and the fit gives back all four numbers."""
    truth = with_overheads(load_hardware("h100-sxm"), Overheads(1.5e-3, 8e-6, 0.7, seq_overhead_s=30e-6))
    rows, models = synthetic(STATIC, lambda r: truth)
    knobs = fit_overheads(rows, models, load_hardware("h100-sxm"))
    assert (knobs.step_overhead_s, knobs.seq_overhead_s) == pytest.approx((1.5e-3, 30e-6), rel=1e-6)
    assert (knobs.hop_latency_s, knobs.moe_gemm) == pytest.approx((8e-6, 0.7), rel=1e-6)


def test_holding_the_sequence_overhead_refits_the_other_knobs_around_it():
    """On the rows of the test above: held at its true 30 us, the sequence overhead leaves the other
    knobs to come back exact with no error left; held at 0, the fit can only stretch the per-step
    overhead to cover the batch's time, which leaves errors; and solving freely is `fit_overheads`."""
    truth = with_overheads(load_hardware("h100-sxm"), Overheads(1.5e-3, 8e-6, 0.7, seq_overhead_s=30e-6))
    rows, models = synthetic(STATIC, lambda r: truth)
    system = overhead_system(rows, models, load_hardware("h100-sxm"))
    held = solve(system, 30e-6)
    assert held.seq_overhead_s == 30e-6
    others = (held.step_overhead_s, held.hop_latency_s, held.moe_gemm)
    assert others == pytest.approx((1.5e-3, 8e-6, 0.7), rel=1e-6)
    assert np.abs(system.errors(held)).max() < 1e-9
    none = solve(system, 0.0)
    assert none.seq_overhead_s == 0.0 and none.step_overhead_s > 1.5e-3
    assert np.abs(system.errors(none)).max() > 0.01
    assert solve(system) == fit_overheads(rows, models, load_hardware("h100-sxm"))


def test_fit_recovers_the_fraction_other_vendors_parts_reach_jointly_with_the_step_overhead():
    """The same single-GPU rows on an H100 and on an MI300X, generated with 1 ms per step on both and
    the MI300X's kernels at 0.6 of the curves' efficiencies, fit back to both numbers, each row on
    its own device; the H100 rows alone say nothing of the vendor fraction, which stays at 1."""
    single = STATIC[STATIC["tp"] == "1"]
    amd = single.assign(gpu="MI300X", row_id=single["row_id"] + "-amd")
    rows = pd.concat([single, amd], ignore_index=True)
    devices = {"H100": load_hardware("h100-sxm"), "MI300X": load_hardware("mi300x")}
    truth = Overheads(1e-3, other_vendors=0.6)
    rows, models = synthetic(rows, lambda r: with_overheads(devices[r.gpu], truth))
    knobs = fit_overheads(rows, models, [devices[g] for g in rows["gpu"]])
    assert knobs.step_overhead_s == pytest.approx(1e-3, rel=1e-6)
    assert knobs.other_vendors == pytest.approx(0.6, rel=1e-6)
    nvidia = rows["gpu"] == "H100"
    h100_models = [m for m, n in zip(models, nvidia, strict=True) if n]
    alone = fit_overheads(rows[nvidia], h100_models, devices["H100"])
    assert alone.other_vendors == 1.0


def test_the_vendor_fraction_slows_other_vendors_kernels_only():
    """At 0.5 an MI300X's compute and memory legs (scalars and every kernel curve) are at half their
    efficiencies; an H100 is untouched. The MI300X preset has no per-call overhead, no curves and, at
    TP 1, no link: each operator's time is its slower leg over a rate now halved, so a decode step
    takes exactly twice as long."""
    mi300x, h100 = load_hardware("mi300x"), load_hardware("h100-sxm")
    slow = with_overheads(mi300x, Overheads(other_vendors=0.5))
    assert slow.efficiency.compute == pytest.approx(0.5 * mi300x.efficiency.compute)
    assert slow.efficiency.memory == pytest.approx(0.5 * mi300x.efficiency.memory)
    assert slow.efficiency.link == mi300x.efficiency.link
    assert with_overheads(h100, Overheads(other_vendors=0.5)) == with_overheads(h100, Overheads())
    model, par = val.resolve_model("LLaMA 7B", "FP16", DATA / "models"), Parallelism(1)
    ctx = np.full(32, 1000, np.int64)
    before = RooflineCost(model, mi300x, par).step(np.ones(32, np.int64), ctx, 32).total_s
    after = RooflineCost(model, slow, par).step(np.ones(32, np.int64), ctx, 32).total_s
    assert mi300x.efficiency.op_overhead_s == 0 and mi300x.efficiency.curves.gemm is None
    assert after == pytest.approx(2.0 * before, rel=1e-12)


def test_fit_recovers_the_achieved_all_reduce_bandwidth_jointly_with_the_other_knobs():
    """Rows generated with the stack's all-reduces at 0.4 of the link's measured bandwidth (with
    1 ms per step, 10 us per hop, grouped GEMMs at 0.8) fit back to all four numbers: large prefills
    at TP 2, 4 and 8 separate bandwidth time, which grows with the tokens, from hop latency, which
    does not."""
    prefills = pd.DataFrame(
        [
            measurement(
                row_id=f"p{tp}-{isl}-{b}",
                model="LLaMA 70B",
                gpu="H100",
                tp=str(tp),
                num_gpus=str(tp),
                metric="ttft",
                input_len=str(isl),
                batch_size=str(b),
            )
            for tp in (2, 4, 8)
            for isl, b in ((512, 1), (512, 16), (8192, 1))
        ]
    ).assign(source_id="STACK-A", precision="FP16")
    truth = with_overheads(load_hardware("h100-sxm"), Overheads(1e-3, 10e-6, 0.8, 0.4))
    rows, models = synthetic(pd.concat([STATIC, prefills], ignore_index=True), lambda r: truth)
    knobs = fit_overheads(rows, models, load_hardware("h100-sxm"))
    assert (knobs.step_overhead_s, knobs.hop_latency_s, knobs.moe_gemm, knobs.collective) == pytest.approx(
        (1e-3, 10e-6, 0.8, 0.4), rel=1e-6
    )


def test_a_lower_all_reduce_fraction_never_makes_a_step_faster():
    """Every step, prefill or decode, at every TP, takes at least as long with the stack's all-reduces
    at a lower fraction of the link's bandwidth, and the TP 1 steps (no all-reduce) exactly as long."""
    model = val.resolve_model("LLaMA 70B", "FP16", DATA / "models")
    base = load_hardware("h100-sxm")
    for tp in (1, 2, 4, 8):
        times = []
        for fraction in (1.0, 0.7, 0.3, 0.05):
            cost = RooflineCost(model, with_overheads(base, Overheads(collective=fraction)), Parallelism(tp))
            prefill = cost.step(np.full(8, 2048), np.zeros(8, np.int64), 8).total_s
            decode = cost.step(np.ones(64, np.int64), np.full(64, 4096), 64).total_s
            times.append((prefill, decode))
        for (p0, d0), (p1, d1) in itertools.pairwise(times):
            if tp == 1:
                assert (p1, d1) == (p0, d0)
            else:
                assert p1 > p0 and d1 > d0
        assert (
            times[0][0]
            >= RooflineCost(model, roofline_device(base), Parallelism(tp))
            .step(np.full(8, 2048), np.zeros(8, np.int64), 8)
            .total_s
        )


def test_offline_rows_fit_through_the_engine():
    """Offline throughput is the engine's makespan: still linear in the knobs, so the fit is exact."""
    offline = pd.DataFrame(
        [
            measurement(
                row_id=str(i),
                model=m,
                gpu="H100",
                tp=tp,
                num_gpus=tp,
                precision="FP8",
                metric="output_token_throughput",
                input_len=isl,
                output_len=osl,
                unit="tokens/s",
            )
            for i, (m, tp, isl, osl) in enumerate(
                (
                    ("LLaMA v3.1 8B", "1", "2048", "128"),
                    ("LLaMA v3.1 8B", "2", "2048", "128"),
                    ("LLaMA v3.1 8B", "4", "128", "2048"),
                    ("Mixtral 8x7B", "2", "2048", "128"),
                )
            )
        ]
    )
    truth = with_overheads(load_hardware("h100-sxm"), Overheads(2e-3, 5e-6, 0.8, 0.6))
    rows, models = synthetic(offline, lambda r: truth, engine=True)
    knobs = fit_overheads(rows, models, load_hardware("h100-sxm"), engine=True)
    assert (knobs.step_overhead_s, knobs.hop_latency_s, knobs.moe_gemm, knobs.collective) == pytest.approx(
        (2e-3, 5e-6, 0.8, 0.6), rel=1e-6
    )


def test_knobs_only_add_time():
    """Rows faster than the kernel roofline can explain fit to no overhead at all, not negative ones."""
    fast = STATIC.assign(value=lambda d: "1e-9")
    models = [val.resolve_model(r.model, r.precision, DATA / "models") for r in fast.itertuples(index=False)]
    fast.loc[fast["metric"] == "output_throughput_per_gpu", "value"] = "1e12"
    assert fit_overheads(fast, models, load_hardware("h100-sxm")) == Overheads(0.0, 0.0, 1.0, 1.0)


def test_stacks_are_not_fitted_on_rows_faster_than_the_physical_roofline():
    """A row measured faster than datasheet peaks allow (a broken measurement) is left out of its
    stack's fit and named; the knobs come from the other rows alone."""
    truth = with_overheads(load_hardware("h100-sxm"), Overheads(1e-3, 4e-6, 0.9, 0.5))
    rows, _ = synthetic(STATIC, lambda r: truth)
    rows.loc[rows["row_id"] == "d", "value"] = "1e-6"
    fit = fit_stacks(rows, DATA / "models", engine=False)[("STACK-A", "h100-sxm")]
    assert fit.faster_than_roofline == ("d",) and fit.rows == len(STATIC) - 1
    assert (fit.knobs.step_overhead_s, fit.knobs.moe_gemm) == pytest.approx((1e-3, 0.9), rel=1e-6)


def test_a_hop_latency_no_row_depends_on_keeps_the_link():
    rows = STATIC[STATIC["tp"] == "1"]
    truth = with_overheads(load_hardware("h100-sxm"), Overheads(1e-3))
    rows, models = synthetic(rows, lambda r: truth)
    knobs = fit_overheads(rows, models, load_hardware("h100-sxm"))
    assert knobs.hop_latency_s is None
    assert with_overheads(load_hardware("h100-sxm"), knobs).scale_up == load_hardware("h100-sxm").scale_up


def test_each_stack_is_fitted_on_its_own_rows_and_scored_with_its_own_knobs():
    truths = {"STACK-A": Overheads(1e-3, 4e-6, 0.9, 0.5), "STACK-B": Overheads(3e-3, 20e-6, 0.6, 1.0)}
    both = pd.concat(
        [STATIC, STATIC.assign(source_id="STACK-B", row_id=STATIC["row_id"] + "2")], ignore_index=True
    )
    rows, _ = synthetic(both, lambda r: with_overheads(load_hardware("h100-sxm"), truths[r.source_id]))
    knobs = fit_stacks(rows, DATA / "models", engine=False)
    assert set(knobs) == {("STACK-A", "h100-sxm"), ("STACK-B", "h100-sxm")}
    for (source, _), fit in knobs.items():
        assert fit.rows == len(STATIC) and fit.faster_than_roofline == ()
        assert astuple(fit.knobs) == pytest.approx(astuple(truths[source]), rel=1e-6)
    shuffled = rows.sample(frac=1.0, random_state=0)
    scored = validate_stacks(shuffled, knobs, DATA / "models", engine=False)
    assert list(scored["row_id"]) == list(shuffled["row_id"])
    assert scored["error_pct"].abs().max() < 1e-6


def _shape(rows: pd.DataFrame) -> pd.Series:
    out_len = rows["output_len"].where(rows["metric"] != "ttft", "")
    return (
        rows["source_id"]
        + "|"
        + rows["gpu"]
        + "|"
        + rows["metric"]
        + "|"
        + rows["input_len"]
        + "/"
        + out_len
        + "/"
        + rows["batch_size"]
    )


def test_split_holds_out_whole_workload_shapes_and_leaves_every_group_both_sides():
    grid = [
        measurement(
            row_id=f"{src}{gpu}{metric}{model}{isl}-{osl}-{b}",
            source_id=src,
            gpu=gpu,
            metric=metric,
            model=model,
            input_len=str(isl),
            output_len=str(osl),
            batch_size=str(b),
        )
        for src in ("S1", "S2")
        for gpu in ("H100", "A100")
        for metric in ("ttft", "tpot", "output_token_throughput")
        for model in ("LLaMA 7B", "Mixtral 8x7B")
        for isl, osl, b in ((128, 128, 1), (128, 2048, 1), (512, 128, 8), (2048, 2048, 1), (5000, 500, 1))
    ]
    rows = pd.DataFrame(grid)
    fit, held = split_by_workload(rows)
    assert not set(fit["row_id"]) & set(held["row_id"])
    assert set(fit["row_id"]) | set(held["row_id"]) == set(rows["row_id"])
    assert not set(_shape(fit)) & set(_shape(held))  # no shape measured on both sides, on any model
    for key in ("source_id", "gpu", "metric"):
        for value in rows[key].unique():
            assert (fit[key] == value).any() and (held[key] == value).any(), (key, value)
    # a prefill is the same at every output length: TTFT 128/128 and 128/2048 stay together
    ttft = rows[(rows["metric"] == "ttft") & (rows["input_len"] == "128")]["row_id"]
    assert ttft.isin(fit["row_id"]).all() or ttft.isin(held["row_id"]).all()
    again, _ = split_by_workload(rows.sample(frac=1.0, random_state=1))
    assert set(again["row_id"]) == set(fit["row_id"])
