"""Cost per request against context: where a request outgrows a device and the price steps up."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from hardware import load_hardware
from sim.cli import app
from sim.cost.estimate import estimate, smallest_fit
from sim.cost.memory import memory_plan
from sim.cost.parallelism import Parallelism
from sim.studies.costcurve import contexts, cost_curve, jumps, shapes, smallest_groups
from workloads import RopeScaling, load_model

runner = CliRunner()
OUTPUT = 1000


@pytest.fixture(scope="module")
def llama8b():
    """Llama-3.1-8B with YaRN x 8 over its 128K, so that 1M-token prompts are within its context."""
    return load_model("llama-3.1-8b").model_copy(update={"rope_scaling": RopeScaling(factor=8)})


@pytest.fixture(scope="module")
def curve(llama8b):
    # an L40S without its PCIe link: a device that cannot split a model over several of its kind
    linkless = load_hardware("l40s").model_copy(update={"scale_up": None, "scale_out": None})
    return cost_curve(llama8b, [load_hardware("h100-sxm"), linkless], OUTPUT, 1000, 1_000_000)


def test_jumps_sit_exactly_where_the_smallest_group_grows(llama8b, curve):
    _, found = curve
    h100 = [j for j in found if j.hardware == "h100-sxm"]
    assert [(j.devices_before, j.devices_after) for j in h100] == [(1, 2), (2, 3)]
    hw = load_hardware("h100-sxm")
    for j in h100:
        assert smallest_fit(llama8b, hw, j.context_tokens - 1 + OUTPUT).devices == j.devices_before
        assert smallest_fit(llama8b, hw, j.context_tokens + OUTPUT).devices == j.devices_after
    # no scale-up link on an L40S: past one device's memory a request fits nowhere
    (l40s,) = [j for j in found if j.hardware == "l40s"]
    assert l40s.devices_before == 1 and l40s.devices_after is None


def test_curve_rows(curve):
    df, found = curve
    for name, group in df.groupby("hardware"):
        fits = group[group["fits"]]
        assert np.all(np.diff(fits["min_devices"]) >= 0)  # never fewer devices for a longer prompt
        assert (fits["devices"] >= fits["min_devices"]).all() and (fits["batch"] >= 1).all()
        assert (fits["cost_per_1m_input_tokens_usd"] <= fits["smallest_group_cost_per_1m_input_tokens_usd"]
                * (1 + 1e-12)).all()
        per_request = fits["cost_per_request_usd"].to_numpy()
        assert per_request[-1] > 10 * per_request[0]  # a 1000x longer prompt costs far more
        assert set(j.context_tokens for j in found if j.hardware == name) <= set(group["context_tokens"])
    past = df[(df["hardware"] == "l40s") & ~df["fits"]]
    assert len(past) and past["cost_per_request_usd"].isna().all()


def test_each_row_is_the_estimate_of_its_group(llama8b, curve):
    """The curve builds each group's memory plan and cost model once; every row must still be what
    `estimate` gives on its own."""
    df, _ = curve
    hw = load_hardware("h100-sxm")
    for row in df[(df["hardware"] == "h100-sxm") & df["fits"]].itertuples():
        par = Parallelism(int(row.tp), int(row.pp))
        alone = estimate(llama8b, hw, par, row.context_tokens, OUTPUT, int(row.batch))
        assert alone.e2e_s == row.e2e_s


def test_the_price_steps_up_on_the_fewest_devices(curve):
    df, found = curve
    last = [j for j in found if j.hardware == "h100-sxm"][-1]  # 2 -> 3 devices (pp 3)
    rows = df[(df["hardware"] == "h100-sxm") & df["context_tokens"].isin([last.context_tokens - 1,
                                                                          last.context_tokens])]
    before, after = rows["smallest_group_cost_per_1m_input_tokens_usd"]
    assert after > 1.5 * before


def test_smallest_groups_are_what_smallest_fit_picks(llama8b):
    hw = load_hardware("h100-sxm")
    runs = smallest_groups(llama8b, hw, OUTPUT, 1000, 10_000_000)
    assert runs[0][0] == 1000 and len(runs) > 10
    ends = [start - 1 for start, _ in runs[1:]] + [10_000_000]
    for (start, par), end in zip(runs, ends, strict=True):
        assert smallest_fit(llama8b, hw, start + OUTPUT) == par == smallest_fit(llama8b, hw, end + OUTPUT)
        assert end == 10_000_000 or smallest_fit(llama8b, hw, end + 1 + OUTPUT) != par


@settings(max_examples=25, deadline=None)
@given(
    model=st.sampled_from(["llama-3.1-70b", "qwen3-32b", "deepseek-v3", "jamba-v0.1"]),
    hardware=st.sampled_from(["h100-sxm", "l40s", "mi300x", "groq-lpu"]),
    shorter=st.integers(1_000, 2_000_000),
    longer_by=st.integers(0, 8_000_000),
)
def test_a_search_resumed_at_a_shorter_contexts_group_finds_the_same_one(model, hardware, shorter, longer_by):
    """`resume_at` only skips groups that cannot hold the longer context: same answer as a full search."""
    m, hw = load_model(model), load_hardware(hardware)
    first = smallest_fit(m, hw, shorter, step_tokens=8192)
    longer = shorter + longer_by
    resumed = smallest_fit(m, hw, longer, step_tokens=8192, resume_at=first) if first else None
    assert resumed == smallest_fit(m, hw, longer, step_tokens=8192)


def test_a_jump_is_one_past_the_longest_prompt_the_smaller_group_holds(llama8b):
    hw = load_hardware("h100-sxm")
    first = jumps(llama8b, hw, 100, 1000, 2_000_000)[0]
    plan = memory_plan(llama8b, hw, Parallelism(1, 1))
    assert first.devices_before == 1
    assert plan.seq_bytes(first.context_tokens - 1 + 100) <= plan.kv_pool_bytes < plan.seq_bytes(
        first.context_tokens + 100
    )


def test_shapes_and_grid(llama8b):
    hw = load_hardware("h100-sxm")
    assert shapes(llama8b, hw, Parallelism(1, 3)) == [Parallelism(1, 3), Parallelism(4, 1), Parallelism(8, 1),
                                                     Parallelism(8, 2)]
    grid = contexts(1000, 16000)
    assert grid[0] == 1000 and grid[-1] == 16000 and len(grid) == 4 * 4 + 1


def test_jumps_none_within_one_device(llama8b):
    assert jumps(llama8b, load_hardware("mi300x"), OUTPUT, 1000, 100_000) == []


def test_cli_cost_curve_json_and_html(tmp_path):
    out = tmp_path / "curve.html"
    r = runner.invoke(app, ["cost-curve", "--model", "llama-3.1-8b", "--hardware", "h100-sxm,mi300x",
                            "--max-context", "1000000", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["model"] == "llama-3.1-8b" and data["jumps"][0]["context_tokens"] == 420157
    assert {"hardware", "context_tokens", "min_devices", "devices", "batch", "cost_per_request_usd",
            "cost_per_1m_input_tokens_usd"} <= set(data["curve"][0])
    assert "fewest devices" in out.read_text()
    r = runner.invoke(app, ["cost-curve", "--model", "llama-3.1-8b", "--hardware", "h100-sxm"],
                      env={"COLUMNS": "160"})
    assert r.exit_code == 0 and "h100-sxm" in r.stdout and "$/1M prompt tokens" in r.stdout


def test_cli_cost_curve_bad_input():
    r = runner.invoke(app, ["cost-curve", "--model", "llama-3.1-8b", "--hardware", "h100-sxx"])
    assert r.exit_code == 2 and "unknown hardware 'h100-sxx'" in r.output
    r = runner.invoke(app, ["cost-curve", "--model", "llama-3.1-8b", "--hardware", "h100-sxm",
                            "--min-context", "5000", "--max-context", "4000"])
    assert r.exit_code == 2 and "need 1 <= min < max" in " ".join(r.output.split())


def test_prompts_past_the_context_limit_are_not_served():
    """The curve reads the effective limit (trained context extended by rope_scaling): the preset's
    128K refuses longer prompts, the same model extended by YaRN x 8 serves them."""
    preset = load_model("llama-3.1-8b")
    df, _ = cost_curve(preset, [load_hardware("h200")], OUTPUT, 100_000, 400_000)
    past = df["context_tokens"] + OUTPUT > 131_072
    assert past.any() and not df.loc[past, "fits"].any() and df.loc[~past, "fits"].all()
    assert (df["context_limit_tokens"] == 131_072).all()
    extended = preset.model_copy(update={"rope_scaling": RopeScaling(factor=8)})
    df, _ = cost_curve(extended, [load_hardware("h200")], OUTPUT, 100_000, 400_000)
    assert df["fits"].all() and (df["context_limit_tokens"] == 8 * 131_072).all()
