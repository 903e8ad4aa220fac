"""Page callbacks called as plain functions: parse, call the API, format."""

import json
import os
import signal
import time

import dash
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dashboard.runs import COMPARED, form_values, read_example
from dashboard.whatif import sram_memory
from hardware import load_hardware
from sim.api import run
from sim.cost.estimate import estimate, smallest_fit
from sim.format import number, seconds_significant
from sim.scenario import scenario_from_dict
from sim.studies.costcurve import cost_curve
from workloads import load_model

H100_KNOBS = [80, 3.35, 989, 50, 450]  # GB, TB/s, TFLOP/s, MB, GB/s


def _answer(pages, *knobs, devices="auto", prompt=65536):
    out = pages["designer"].update_answer("h100-sxm", "llama-3.1-8b", "fp8", devices, prompt, 256, 4, *knobs)
    metrics = [key for key, _ in pages["designer"].METRICS]
    cells = {
        (key, col): out[3 * i + j]
        for i, key in enumerate(metrics)
        for j, col in enumerate(("preset", "modified", "change"))
    }
    return cells, out[3 * len(metrics) :]


def test_designer_numbers_are_the_estimate(pages):
    cells, (_note, roofline, link, error) = _answer(pages, 80, 6.7, 989, 50, 450)
    hw = load_hardware("h100-sxm")
    hw = type(hw).model_validate(
        {
            **hw.model_dump(),
            "memory": [
                t.model_copy(update={"bandwidth_bytes_per_s": 6.7e12}) if t.name == "hbm" else t
                for t in hw.memory
            ],
        }
    )
    model = load_model("llama-3.1-8b").with_dtypes(None, "fp8")
    memory = sram_memory(hw)  # the designer's placement: weights first in the on-chip tier
    par = smallest_fit(model, hw, 65536 + 256, 4, memory, 4 * 65536)
    api = estimate(model, hw, par, 65536, 256, 4, memory)
    assert error is None
    assert cells["ttft", "modified"] == seconds_significant(api.ttft_s)
    assert cells["tpot", "modified"] == seconds_significant(api.tpot_s)
    assert cells["max_context", "modified"] == f"{api.max_context_tokens:,}"
    assert cells["tpot", "change"].startswith("-")  # twice the bandwidth, faster decode
    assert "bw_tbs=6.7" in link and "kv=fp8" in link
    assert {t.name for t in roofline.data} >= {"prefill", "decode"}


def test_untouched_knobs_show_no_change(pages):
    cells, _ = _answer(pages, *H100_KNOBS)
    assert cells["ttft", "preset"] == cells["ttft", "modified"] and cells["ttft", "change"] == "+0.0%"


def test_a_tp_the_model_cannot_use_is_an_error_in_the_page(pages):
    _, (_note, _fig, _link, error) = _answer(pages, *H100_KNOBS, devices="8", prompt=1000)
    assert error is None  # 32 heads / 8
    inf2 = [32, 0.82, 190, None, None]  # no scale-up link: tp=2 cannot run
    out = pages["designer"].update_answer("inferentia2", "llama-3.1-8b", "model", "2", 1000, 10, 1, *inf2)
    assert "needs hardware.scale_up" in str(out[-1].children)


def test_cost_curve_has_both_devices_and_their_cliffs(pages):
    designer = pages["designer"]
    preset = designer.preset_curve("h100-sxm", "llama-3.1-8b", "model", 256, 1)
    fig = designer.update_cost_curve(
        preset, "h100-sxm", "llama-3.1-8b", "model", 256, 1, 160, 3.35, 989, 50, 450
    )
    names = [t.name for t in fig.data]
    assert names == [
        "h100-sxm (modified)",
        "price cliffs: h100-sxm (modified)",
        "h100-sxm",
        "price cliffs: h100-sxm",
    ]
    doubled_hbm_first_cliff = min(x for x in fig.data[1].x if x == x)
    preset_first_cliff = min(x for x in fig.data[3].x if x == x)
    assert doubled_hbm_first_cliff > 2 * preset_first_cliff
    hw, model = load_hardware("h100-sxm"), load_model("llama-3.1-8b")
    shared, found = cost_curve(model, [hw], 256, 1000, 10_000_000, max_batch=1)
    assert list(fig.data[2].x) == list(shared["context_tokens"])  # the curve `ctxsim cost-curve` computes
    np.testing.assert_array_equal(fig.data[2].y, shared["cost_per_request_usd"].astype(float))
    assert shared.loc[~shared["fits"], "context_tokens"].min() + 256 > 131_072  # past the context limit
    assert preset_first_cliff == found[0].context_tokens - 1


def test_a_new_preset_resets_every_knob(pages):
    out = pages["designer"].reset_knobs("groq-lpu")
    values = out[3:30:6]  # the value of each of the five sliders
    lpu = load_hardware("groq-lpu")
    assert values[0] == pytest.approx(lpu.main_tier.capacity_bytes / 1e9)
    assert out[3 * 6 + 5] is True  # the SRAM knob: no cache tier above the LPU's SRAM


def test_a_scenario_run_from_the_page_is_ctxsim_run(pages, settings, tmp_path, session, finish):
    from sim.cli import app as cli

    runs = pages["runs"]
    data = read_example(settings.examples_dir, "chat-h100")
    values = form_values(scenario_from_dict(data))
    values[7] = 300  # requests
    job, error = runs.start_run(1, session, {"label": "chat-h100", "data": data}, [], *values)
    assert error is None and job["label"] == "#1 chat-h100 (2x1 h100-sxm)"
    assert finish(job["key"]).state == "done"
    cleared, kept, percent, text, error = runs.poll_run(1, job, [])
    assert cleared is None and error is None and percent == 100 and text.startswith("300 requests in")
    assert kept == [{"key": job["key"], "label": job["label"], "n": 1}]
    assert runs.poll_run(2, job, kept)[1] == kept  # a second poll of the same job keeps it once
    path = tmp_path / "chat.yaml"
    path.write_text((settings.examples_dir / "chat-h100.yaml").read_text())
    out = CliRunner().invoke(cli, ["run", str(path), "--set", "stop.requests=300", "--json"])
    cli_summary = json.loads(out.stdout)
    page = runs.show_runs(kept)[0]
    rows = page[0].children[1].children
    cells = {row.children[0].children: row.children[1].children for row in rows}
    assert {label: cells[label] for _, label in COMPARED} == {
        label: number(cli_summary[key]) for key, label in COMPARED
    }
    lo, hi = cli_summary["throughput_ci_lo_rps"], cli_summary["throughput_ci_hi_rps"]
    assert cells["throughput interval (req/s)"] == f"[{number(lo)}–{number(hi)}]"
    assert cells["TTFT p99 interval (s)"] == "—" and cells["overloaded"] == "no"
    dropped = cli_summary["warmup_requests_dropped"], cli_summary["drain_requests_dropped"]
    assert f"(dropped {dropped[0]} warm-up, {dropped[1]} drain)" in cells["measured requests"]
    notes = [alert.children for alert in page[1:]]
    assert f"{job['label']}: p99 intervals need ≥ 20,000 measured requests" in notes
    answer = pages["runs"].job_store().result(job["key"])
    assert answer["summary"] == {
        **run(scenario_from_dict({**data, "stop": {"requests": 300}})).summary.to_dict(),
        "sim_wall_s": answer["summary"]["sim_wall_s"],
    }
    classes, _occupancy = runs.show_run(job["key"], kept)
    assert classes[0].children == "per class"
    assert runs.show_run(job["key"], [])[0] is None  # only a run the window kept is shown


def test_a_run_whose_process_is_killed_is_reported_on_the_page(pages, settings, session, finish):
    runs = pages["runs"]
    data = read_example(settings.examples_dir, "chat-h100")
    values = form_values(scenario_from_dict(data))
    values[7] = 200_000  # requests: long enough to be killed half way
    job, _ = runs.start_run(1, session, {"label": "chat-h100", "data": data}, [], *values)
    deadline = time.monotonic() + 60
    while "/ 200,000 requests" not in (text := runs.poll_run(1, job, [])[3]):
        assert time.monotonic() < deadline, text
        time.sleep(0.1)
    folder = runs.job_store().folder(job["key"])
    os.kill(json.loads((folder / "running.json").read_text())["pid"], signal.SIGKILL)
    assert finish(job["key"], timeout_s=10).state == "died"
    cleared, kept, percent, text, error = runs.poll_run(2, job, [])
    assert cleared is None and kept is dash.no_update and (percent, text) == (0, "")
    assert error.color == "danger" and error.children.endswith("was killed by SIGKILL before answering")


def test_form_errors_name_the_field(pages, settings, session):
    runs = pages["runs"]
    data = read_example(settings.examples_dir, "chat-h100")
    values = form_values(scenario_from_dict(data))
    values[4] = 3
    message, link = runs.check_form({"label": "chat-h100", "data": data}, *values)
    assert "parallelism: tp (3) must divide num_heads (32)" in str(message.children) and link == ""
    job, error = runs.start_run(1, session, {"label": "chat-h100", "data": data}, [], *values)
    assert "parallelism" in str(error.children) and job is dash.no_update


def test_sizing_plans_and_draws_the_chosen_cluster(pages, settings, session, finish):
    sizing = pages["sizing"]
    source = {"label": "chat-h100", "data": read_example(settings.examples_dir, "chat-h100")}
    job, error = sizing.start_plan(1, session, source, 8.0, 300, 2.0, 0.05, None, None, [1, 2], 16)
    assert error is None
    assert finish(job["key"]).state == "done"
    cleared, shown, text, error = sizing.poll_plan(1, job, None)
    assert cleared is None and error is None and shown == {"key": job["key"]}
    assert text.endswith(" s") and "simulations in" in text
    answer, table, latency = sizing.show_plan(shown)
    best = sizing.job_store().result(job["key"])["plan"]["best"]
    assert best["hardware"] == "h100-sxm" and best["tp"] == 1
    assert f"{best['devices']} devices" in answer.children.children[0].children
    columns = list(table.data[0].header.values)
    cells = dict(zip(columns, table.data[0].cells.values, strict=True))
    assert cells["hardware"][0] == "h100-sxm" and cells["verdict"][0] == best["verdict"]
    assert cells["judged on (requests)"][0] == best["requests"]
    verdict = answer.children.children[2]
    assert verdict.id == "sizing-verdict" and verdict.children[0].children == best["verdict"]
    assert answer.color == {"meets": "success", "borderline": "warning"}[best["verdict"]]
    assert sum(1 for t in latency.data if t.name) == 3


def test_sweep_explorer_opens_a_folder_below_the_root(pages, settings):
    folder = settings.data_root / "unit-sweep"
    folder.mkdir(exist_ok=True)
    pd.DataFrame(
        [
            {
                "point": i,
                "label": "",
                "cluster.replicas": r,
                "hardware": h,
                "error": None,
                "ttft_p99_s": 1 / r,
                "cost_per_1m_output_tokens_usd": float(r),
            }
            for i, (h, r) in enumerate((h, r) for h in "ab" for r in (1, 2, 4))
        ]
    ).to_parquet(folder / "results.parquet")
    sweeps = pages["sweeps"]
    out = sweeps.open_folder("unit-sweep", None, None, None, None, None, None)
    options, values, rows = out[:6], out[6:12], out[12]
    assert values == [
        "cost_per_1m_output_tokens_usd",
        "ttft_p99_s",
        None,
        "cluster.replicas",
        "hardware",
        "cost_per_1m_output_tokens_usd",
    ]
    assert options[3] == ["cluster.replicas", "hardware"] and len(rows) == 6
    pareto = sweeps.show_pareto("unit-sweep", values[0], values[1], [], None)
    assert [t.name for t in pareto.data] == ["points", "Pareto front"]
    heat = sweeps.show_heatmap("unit-sweep", "cluster.replicas", "hardware", "ttft_p99_s")
    assert heat.data[0].type == "heatmap"
    refused = sweeps.open_folder("../..", None, None, None, None, None, None)
    assert "outside the folder" in str(refused[-1].children)


def test_csv_button_serves_the_figure_data(dashboard_app):
    from dashboard.components import download_figure_csv
    from dashboard.figures import empty

    out = download_figure_csv(1, empty("x").to_plotly_json(), {"type": "csv", "name": "designer-roofline"})
    assert out["filename"] == "designer-roofline.csv"


def test_cli_serves_on_localhost_by_default():
    from sim.cli import app as cli

    out = CliRunner().invoke(cli, ["dashboard", "--help"], env={"COLUMNS": "200"})
    assert out.exit_code == 0 and "127.0.0.1" in out.output


def test_an_overloaded_run_and_a_borderline_plan_are_flagged(pages):
    """Imported inside: the components register callbacks, which needs the app the fixture builds."""
    from dashboard.components import run_notes, verdict_card_body
    from dashboard.figures import table
    from dashboard.sizing import borderline_rows
    from sim.engine.summary import FIELDS, Summary

    summary = Summary(
        **{
            **dict.fromkeys(FIELDS),
            "overloaded": True,
            "offered_rps": 40.0,
            "sustainable_rps": 23.0,
            "steady_state": False,
            "ci_level": 0.95,
        }
    )
    alerts = run_notes("#1", summary)
    assert (alerts[0].color, alerts[0].children) == (
        "danger",
        "#1: OVERLOADED, offered 40.00 req/s, sustainable 23.00 req/s",
    )
    assert alerts[1].color == "warning" and "still drifting" in alerts[1].children
    badge, alert = verdict_card_body({"verdict": "borderline", "requests": 64_000})
    assert "64,000 simulated requests" in badge.children[1] and alert.color == "warning"
    frame = pd.DataFrame({"verdict": ["meets", "borderline", None]})
    fill = table(frame, "t", borderline_rows(frame)).data[0].cells.fill.color[0]
    assert list(fill) == ["white", "#fff3cd", "white"]
    assert not borderline_rows(pd.DataFrame({"status": ["skipped"]})).any()


def test_designer_takes_cluster_splits(pages):
    """The designer's parallelism offers expert parallelism with data-parallel attention, context
    and pipeline parallelism; a split the model cannot take is an error naming the degree."""
    designer = pages["designer"]
    knobs = [None] * len(designer.KNOBS)
    out = designer.update_answer("gb200", "qwen3-30b-a3b", "model", "dp8-ep8", 4000, 100, 64, *knobs)
    assert out[-1] is None and out[0].startswith("8 (1 x 1 x attention_dp 8 x ep 8)")
    out = designer.update_answer("h100-sxm", "llama-3.1-8b", "model", "dp8-ep8", 4000, 100, 1, *knobs)
    assert "ep (8) needs experts" in str(out[-1].children)
    out = designer.update_answer("h100-sxm", "llama-3.1-70b", "model", "tp8-cp4", 100_000, 10, 1, *knobs)
    assert out[-1] is None and out[0].startswith("32 (8 x 1 x cp 4)")
