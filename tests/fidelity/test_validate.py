"""`sim.fidelity.validate` on a shipped sample of published measurements: predictions checked against the cost
model by hand, skipped rows explained, and nothing predicted faster than the datasheet roofline."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hardware import load_hardware
from hardware.spec import Efficiency
from sim.cli import app
from sim.cost.parallelism import Parallelism
from sim.cost.roofline import RooflineCost, new_acc
from sim.fidelity.validate import read_measurements, summarize, validate
from workloads import load_model

DATA = Path(__file__).resolve().parents[1] / "data" / "validation"
SAMPLE = DATA / "sample_measurements.csv"
MODELS = DATA / "models"
CALIBRATED = Path(__file__).resolve().parents[2] / "benchmarks" / "data"


@pytest.fixture(scope="module")
def results():
    return validate(read_measurements(SAMPLE), MODELS).set_index("row_id")


def test_rows_that_cannot_be_modelled_say_why(results):
    assert results.loc["895", "skipped_reason"] == "unknown GPU 'GH200 480GB' (nearest preset: h100-sxm)"
    assert results.loc["1725", "skipped_reason"] == "unsupported metric 'time'"
    assert (results.drop(index=["895", "1725"])["skipped_reason"] == "").all()


def test_batch1_ttft_is_one_prefill_step(results):
    model = load_model(MODELS / "llama-2-7b.yaml").with_dtypes("fp8", "fp8")
    hw = load_hardware("h100-sxm")
    step = RooflineCost(model, hw).step([128], [0], 1)
    assert results.loc["99", "predicted"] == pytest.approx(step.total_s * 1e3)  # the row is in ms
    # by hand: 128 tokens of a 6.7B FP8 model are weight-streaming bound on H100
    weights_s = model.weight_bytes() / (hw.main_tier.bandwidth_bytes_per_s * hw.efficiency.memory)
    assert step.bound == "memory"
    assert weights_s <= step.total_s <= 1.15 * weights_s
    assert results.loc["99", "regime"] == "prefill"


def test_static_batch_throughput_is_prefill_plus_decode_span(results):
    model = load_model(MODELS / "gpt-j-6b.yaml").with_dtypes("fp8", "fp8")
    cost = RooflineCost(model, load_hardware("h100-sxm"))
    batch, isl, osl = 1024, 128, 128
    prefill = cost.step(np.full(batch, isl), np.zeros(batch, np.int64), batch).total_s
    _, decode = cost.decode_span(np.full(batch, isl, np.int64), 0.0, np.inf, osl - 1, new_acc())
    assert results.loc["21", "predicted"] == pytest.approx(batch * osl / (prefill + decode))
    assert results.loc["21", "error_pct"] == pytest.approx((results.loc["21", "predicted"] / 25860 - 1) * 100)


def test_tpot_is_the_mean_decode_step_with_tensor_parallelism(results):
    model = load_model(MODELS / "llama-2-70b.json")
    cost = RooflineCost(model, load_hardware("a100-80g-sxm"), Parallelism(tp=2))
    _, decode = cost.decode_span(np.array([512]), 0.0, np.inf, 127, new_acc())
    assert results.loc["sw59-tpot", "predicted"] == pytest.approx(decode / 127 * 1e3)
    assert results.loc["sw59-tpot", "regime"] == "decode"


def test_offline_rows_run_the_engine_or_say_they_need_it(results):
    got = results.loc["894"]
    assert got["skipped_reason"] == "" and got["group"] == "throughput"
    assert 0 < got["predicted"] < math.inf
    without = validate(read_measurements(SAMPLE), MODELS, engine=False).set_index("row_id")
    assert without.loc["894", "skipped_reason"] == "needs engine"


def test_summary_has_median_and_p90_per_group(results):
    summary = summarize(results.reset_index())
    groups = set(summary["group"])
    assert groups == {"throughput", "ttft", "tpot"}
    row = summary[(summary["group"] == "ttft") & (summary["regime"] == "all")].iloc[0]
    scored = results[(results["group"] == "ttft") & (results["skipped_reason"] == "")]
    assert row["count"] == len(scored)
    assert row["median_abs_error_pct"] == pytest.approx(scored["error_pct"].abs().median())


def _peak(hw):
    """The datasheet roofline: every efficiency 1, no overhead, no curves."""
    return hw.model_copy(update={"efficiency": Efficiency()})


@pytest.mark.parametrize("files", [(), tuple(sorted(CALIBRATED.glob("*-calibrated.yaml")))])
def test_no_prediction_is_faster_than_the_physical_roofline(files, results):
    calibrated = {hw.name: hw for hw in map(load_hardware, files)}
    names = {"h100-sxm", "a100-80g-sxm", "h200"}
    peak = {n: _peak(load_hardware(n)) for n in names}
    df = read_measurements(SAMPLE)
    got = validate(df, MODELS, calibrated, engine=False).set_index("row_id")
    roof = validate(df, MODELS, peak, engine=False).set_index("row_id")
    scored = got[got["skipped_reason"] == ""].index
    for row_id in scored:
        faster_is_larger = got.loc[row_id, "group"] == "throughput"
        if faster_is_larger:
            assert got.loc[row_id, "predicted"] <= roof.loc[row_id, "predicted"] * (1 + 1e-9), row_id
        else:
            assert got.loc[row_id, "predicted"] >= roof.loc[row_id, "predicted"] * (1 - 1e-9), row_id


def test_progress_is_told_of_every_row_once_it_is_done():
    """A long validation (a searched serving run takes up to a minute) reports each row as it ends,
    skipped or predicted, so the total is the table's length."""
    done: list[int] = []
    table = read_measurements(SAMPLE)
    validate(table, MODELS, engine=False, progress=done.append)
    assert done == [1] * len(table)


def test_cli_json_lines_end_with_a_summary():
    r = CliRunner().invoke(app, ["validate", str(SAMPLE), "--json", "--models", str(MODELS), "--no-engine"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    rows, summary = lines[:-1], lines[-1]
    assert len(rows) == 9
    assert {"row_id", "metric", "measured", "predicted", "error_pct", "skipped_reason"} <= set(rows[0])
    assert {s["group"] for s in summary["summary"]} == {"ttft", "tpot", "throughput"}
    skipped = {r["row_id"]: r["skipped_reason"] for r in rows if r["skipped_reason"]}
    assert skipped == {
        "1725": "unsupported metric 'time'",
        "894": "needs engine",
        "895": "unknown GPU 'GH200 480GB' (nearest preset: h100-sxm)",
    }


def test_cli_table_prints_every_row():
    r = CliRunner().invoke(app, ["validate", str(SAMPLE), "--models", str(MODELS), "--no-engine"])
    assert r.exit_code == 0, r.output
    assert "predicted 6 of 9 rows (67%)" in r.stdout
    assert "unsupported metric 'time'" in r.stdout
