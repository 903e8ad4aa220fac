"""Model-uncertainty intervals: the serving stack's held-out bands carried into `estimate`, the run
summary and `plan --margin`, by hand-calculated cases."""

import dataclasses
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from hardware import load_hardware
from hardware.stacks import Band, StackProfile, apply_stack, load_stack
from sim.api import model_intervals, run
from sim.cli import app
from sim.cost.estimate import estimate
from sim.cost.parallelism import Parallelism
from sim.scenario import scenario_from_dict
from sim.studies.verdict import Verdict, parse_slo
from workloads import load_model

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
WORKLOAD = {
    "arrivals": {"kind": "poisson", "rate_per_s": 4},
    "prompt_tokens": {"kind": "fixed", "tokens": 256},
    "output_tokens": {"kind": "fixed", "tokens": 32},
}


def profile(*bands: Band) -> StackProfile:
    return StackProfile(
        name="hand", description="", scale_up_latency_s=0.0, scale_up_algorithm="ring", uncertainty=bands
    )


def band(metric, regime, lo, hi):
    return Band(metric=metric, regime=regime, lo=lo, hi=hi, rows=10, median_abs_error_pct=1.0)


HAND = profile(
    band("ttft", "prefill", 0.9, 1.4),
    band("tpot", "decode", 0.8, 1.5),
    band("throughput", "all", 0.6, 1.1),
    band("ttft", "serving", 0.5, 2.0),
)


def test_estimate_intervals_are_each_phase_times_its_band():
    """TTFT x [0.9, 1.4], TPOT x [0.8, 1.5]; end to end = prefill x its edge + (output - 1) decode
    steps x theirs; throughput x [0.6, 1.1]."""
    model, hw, par = load_model("llama-3.1-8b"), load_hardware("h100-sxm"), Parallelism(1)
    e = estimate(model, hw, par, 1000, 101, 4, stack=HAND)
    assert (e.ttft_lo_s, e.ttft_hi_s) == pytest.approx((0.9 * e.ttft_s, 1.4 * e.ttft_s))
    assert (e.tpot_lo_s, e.tpot_hi_s) == pytest.approx((0.8 * e.tpot_s, 1.5 * e.tpot_s))
    decode_s = e.tpot_s * 100
    assert e.e2e_lo_s == pytest.approx(0.9 * e.ttft_s + 0.8 * decode_s)
    assert e.e2e_hi_s == pytest.approx(1.4 * e.ttft_s + 1.5 * decode_s)
    assert (e.output_tokens_lo_per_s, e.output_tokens_hi_per_s) == pytest.approx(
        (0.6 * e.output_tokens_per_s, 1.1 * e.output_tokens_per_s)
    )
    assert e.stack == "hand"
    assert estimate(model, apply_stack(hw, HAND), par, 1000, 101, 4).ttft_s == e.ttft_s
    assert estimate(model, hw, par, 1000, 101, 4).ttft_lo_s is None


def test_estimate_json_carries_the_stack_and_its_interval():
    result = runner.invoke(
        app,
        [
            "estimate",
            "--model",
            "llama-3.1-8b",
            "--hardware",
            "h100-sxm",
            "--input",
            "512",
            "--output",
            "64",
            "--stack",
            "roofline",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["stack"] == "roofline" and out["ttft_lo_s"] is None  # the bound has no band
    typical = json.loads(
        runner.invoke(
            app,
            [
                "estimate",
                "--model",
                "llama-3.1-8b",
                "--hardware",
                "h100-sxm",
                "--input",
                "512",
                "--output",
                "64",
                "--json",
            ],
        ).stdout
    )
    assert typical["stack"] == "typical"
    assert typical["ttft_lo_s"] <= typical["ttft_s"] * load_stack("typical").band("ttft", "prefill").hi
    assert typical["ttft_s"] >= out["ttft_s"]


def test_run_intervals_are_each_field_times_the_serving_band():
    """A TTFT p99 of 2 s under the serving band [0.5, 2.0] reads [1 s, 4 s]; throughput of an
    overloaded run (its capacity) takes the band over all regimes; a metric without a band gets no
    interval."""
    fields = {
        "ttft_p99_s": 2.0,
        "tpot_p50_s": 0.01,
        "throughput_rps": 10.0,
        "output_tokens_per_s": None,
        "overloaded": True,
    }
    out = model_intervals(fields, HAND)
    assert out == pytest.approx(
        {"ttft_p99_lo_s": 1.0, "ttft_p99_hi_s": 4.0, "throughput_lo_rps": 6.0, "throughput_hi_rps": 11.0}
    )
    assert model_intervals(fields, None) == {}


def test_a_part_of_another_vendor_reads_the_bands_of_extrapolated_rows_first():
    """A non-NVIDIA band (ttft 0.3-3.0 under load) applies on an AMD device, in `run` summaries and
    in `estimate`; an NVIDIA device, and a metric with no such band, keep the bands of all rows."""
    other = Band(metric="ttft", regime="serving", parts="non-nvidia", lo=0.3, hi=3.0, rows=9,
                 median_abs_error_pct=40.0)
    both = profile(*HAND.uncertainty, other, other.model_copy(update={"regime": "prefill"}))
    fields = {"ttft_p99_s": 2.0, "throughput_rps": 10.0, "overloaded": True}
    assert model_intervals(fields, both, "AMD") == pytest.approx(
        {"ttft_p99_lo_s": 0.6, "ttft_p99_hi_s": 6.0, "throughput_lo_rps": 6.0, "throughput_hi_rps": 11.0}
    )
    assert model_intervals(fields, both, "NVIDIA") == model_intervals(fields, HAND)
    model, par = load_model("llama-3.1-8b"), Parallelism(1)
    amd = estimate(model, load_hardware("mi300x"), par, 1000, 101, 4, stack=both)
    assert (amd.ttft_lo_s, amd.ttft_hi_s) == pytest.approx((0.3 * amd.ttft_s, 3.0 * amd.ttft_s))
    assert (amd.tpot_lo_s, amd.tpot_hi_s) == pytest.approx((0.8 * amd.tpot_s, 1.5 * amd.tpot_s))


def test_a_run_below_capacity_gets_no_rate_band():
    """Below capacity the throughput is the offered load, whatever the stack: no band on it."""
    fields = {"ttft_p99_s": 2.0, "throughput_rps": 10.0, "output_tokens_per_s": 900.0, "overloaded": False}
    assert set(model_intervals(fields, HAND)) == {"ttft_p99_lo_s", "ttft_p99_hi_s"}


def test_a_run_summary_has_both_kinds_of_interval():
    sc = scenario_from_dict(
        {
            "hardware": "h100-sxm",
            "model": "llama-3.1-8b",
            "workload": WORKLOAD,
            "stop": {"requests": 300},
        }
    )
    s = run(sc).summary
    b = load_stack("typical").band("tpot", "serving")
    assert s.tpot_p50_lo_s == pytest.approx(s.tpot_p50_s * b.lo)
    assert s.tpot_p50_hi_s == pytest.approx(s.tpot_p50_s * b.hi)
    assert s.throughput_ci_lo_rps is not None  # the statistical interval stays beside it
    none = run(
        scenario_from_dict({**sc.model_dump(mode="json"), "stack": "none", "hardware": "h100-sxm"})
    ).summary
    assert none.tpot_p50_lo_s is None


def test_margin_judges_at_the_pessimistic_edge_of_the_band():
    """TTFT p99 1.0 s [0.9-1.1] against 1.2 s meets; with a model band edge of 1.5 s (x1.5) the
    interval becomes [1.35-1.65] s, wholly over the limit: misses."""
    sc = scenario_from_dict(
        {
            "hardware": "h100-sxm",
            "model": "llama-3.1-8b",
            "workload": WORKLOAD,
            "stop": {"requests": 50},
        }
    )
    s = dataclasses.replace(
        run(sc).summary, ttft_p99_s=1.0, ttft_p99_ci_lo_s=0.9, ttft_p99_ci_hi_s=1.1, ttft_p99_hi_s=1.5
    )
    assert parse_slo("ttft_p99=1.2s").verdict(s) == Verdict.meets
    strict = parse_slo("ttft_p99=1.2s", margin=True)
    assert strict.verdict(s) == Verdict.misses
    assert strict.headroom(s) == pytest.approx(1 - 1.5 / 1.2)
    assert parse_slo("ttft_p99=2s", margin=True).verdict(s) == Verdict.meets


@pytest.mark.parametrize("stack", ["typical", "vllm", "sglang", "trtllm"])
def test_every_shipped_gpu_stack_gives_every_estimate_an_interval(stack):
    """Each latency and the throughput of an estimate on a GPU carries its stack's 80% interval, the
    SGLang profile's too, whose own held-out rows are too few for any band and whose bands are read
    from every stack's (`Band.rows_of`): the readout says so under the table."""
    model, hw, par = load_model("llama-3.1-8b"), load_hardware("h100-sxm"), Parallelism(1)
    e = estimate(model, hw, par, 1000, 101, 4, stack=load_stack(stack))
    for lo, value, hi in (
        (e.ttft_lo_s, e.ttft_s, e.ttft_hi_s),
        (e.tpot_lo_s, e.tpot_s, e.tpot_hi_s),
        (e.e2e_lo_s, e.e2e_s, e.e2e_hi_s),
        (e.output_tokens_lo_per_s, e.output_tokens_per_s, e.output_tokens_hi_per_s),
    ):
        assert lo is not None and hi is not None and lo <= hi and lo < value * 10 and hi > value / 10
    args = ["estimate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--input", "1000"]
    shown = runner.invoke(app, [*args, "--output", "101", "--stack", stack], env={"COLUMNS": "200"})
    borrowed = any(b.rows_of == "every stack" for b in load_stack(stack).uncertainty)
    assert ("every stack's (too few of its own)" in shown.stdout) == borrowed
    assert borrowed == (stack == "sglang")


@pytest.mark.parametrize("stack", ["sglang", "vllm"])
def test_a_run_readout_says_when_its_stacks_bands_are_read_from_every_stack(tmp_path, stack):
    data = yaml.safe_load((EXAMPLES / "chat-h100.yaml").read_text())
    data.update(stack=stack, stop={"requests": 300})
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    shown = runner.invoke(app, ["run", str(path), "-q"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "stack's 80% band" in shown.stdout
    assert ("every stack's (too few of its own)" in shown.stdout) == (stack == "sglang")
