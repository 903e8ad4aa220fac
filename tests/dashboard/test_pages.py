"""Page callbacks called as plain functions: parse, call the API, format."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from dashboard.runs import COMPARED, form_values, read_example
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
    api = estimate(model, hw, smallest_fit(model, hw, 65536 + 256, 4), 65536, 256, 4)
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
    assert list(fig.data[2].y) == list(shared["cost_per_request_usd"])
    assert preset_first_cliff == found[0].context_tokens - 1


def test_a_new_preset_resets_every_knob(pages):
    out = pages["designer"].reset_knobs("groq-lpu")
    values = out[3:30:6]  # the value of each of the five sliders
    lpu = load_hardware("groq-lpu")
    assert values[0] == pytest.approx(lpu.main_tier.capacity_bytes / 1e9)
    assert out[3 * 6 + 5] is True  # the SRAM knob: no cache tier above the LPU's SRAM


def test_a_scenario_run_from_the_page_is_ctxsim_run(pages, settings, tmp_path):
    from sim.cli import app as cli

    runs = pages["runs"]
    data = read_example(settings.examples_dir, "chat-h100")
    values = form_values(scenario_from_dict(data))
    values[7] = 300  # requests
    seen = []
    kept, error = runs.run_scenario(seen.append, 1, {"label": "chat-h100", "data": data}, [], *values)
    assert error is None and seen[-1][0] == 100
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
    assert f"{kept[0]['label']}: p99 intervals need ≥ 20,000 measured requests" in notes
    assert kept[0]["summary"] == {
        **run(scenario_from_dict({**data, "stop": {"requests": 300}})).summary.to_dict(),
        "sim_wall_s": kept[0]["summary"]["sim_wall_s"],
    }


def test_form_errors_name_the_field(pages, settings):
    runs = pages["runs"]
    data = read_example(settings.examples_dir, "chat-h100")
    values = form_values(scenario_from_dict(data))
    values[4] = 3
    message, link = runs.check_form({"label": "chat-h100", "data": data}, *values)
    assert "parallelism: tp (3) must divide num_heads (32)" in str(message.children) and link == ""
    _kept, error = runs.run_scenario(lambda _: None, 1, {"label": "chat-h100", "data": data}, [], *values)
    assert "parallelism" in str(error.children)


def test_sizing_plans_and_draws_the_chosen_cluster(pages, settings):
    sizing = pages["sizing"]
    source = {"label": "chat-h100", "data": read_example(settings.examples_dir, "chat-h100")}
    messages = []
    result, error = sizing.run_plan(messages.append, 1, source, 8.0, 300, 2.0, 0.05, None, None, [1, 2], 16)
    assert error is None and messages
    best = result["plan"]["best"]
    assert best["hardware"] == "h100-sxm" and best["tp"] == 1
    answer, table, latency = sizing.show_plan(result)
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
