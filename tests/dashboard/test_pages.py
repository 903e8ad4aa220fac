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

from dashboard.question import scenario_question
from dashboard.runs import COMPARED, form_values, parse_upload, read_example
from dashboard.whatif import sram_memory
from hardware import apply_stack, load_hardware, load_stack
from sim.api import run
from sim.cost.estimate import estimate, smallest_fit
from sim.format import number, seconds_significant
from sim.report import labels
from sim.scenario import scenario_from_dict
from sim.studies.costcurve import cost_curve
from workloads import load_model

H100_KNOBS = [80, 3.35, 989, 50, 450]  # GB, TB/s, TFLOP/s, MB, GB/s
TYPICAL_CLOUD = ["typical", "cloud", None]  # the designer's stack, cost basis and own price by default


def _answer(
    pages,
    *knobs,
    devices="auto",
    prompt=65536,
    hardware="h100-sxm",
    model="llama-3.1-8b",
    stack="typical",
    basis="cloud",
    price=None,
):
    """The designer's answer as {(metric, column): text} (the change column's colour as column
    "colour"), and (alerts, parallelism note, cost basis, note, roofline, link, error)."""
    out = pages["designer"].update_answer(
        hardware, model, "fp8", devices, prompt, 256, 4, stack, basis, price, *knobs
    )
    metrics = [key for key, _ in pages["designer"].METRICS]
    cells = {
        (key, col): out[3 * i + j]
        for i, key in enumerate(metrics)
        for j, col in enumerate(("preset", "modified", "change"))
    }
    cells |= {(key, "colour"): out[3 * len(metrics) + i] for i, key in enumerate(metrics)}
    return cells, out[4 * len(metrics) :]


def test_designer_numbers_are_the_estimate(pages):
    """The modified device's numbers are the estimate's as the typical stack serves it, each latency
    with the stack's 80% interval, priced on the cloud basis."""
    cells, (alerts, par_note, basis, _note, roofline, link, error) = _answer(pages, 80, 6.7, 989, 50, 450)
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
    api = estimate(model, hw, par, 65536, 256, 4, memory, load_stack("typical"))
    assert error is None
    sig = seconds_significant
    assert cells["ttft", "modified"] == f"{sig(api.ttft_s)} [{sig(api.ttft_lo_s)}–{sig(api.ttft_hi_s)}]"
    assert cells["tpot", "modified"] == f"{sig(api.tpot_s)} [{sig(api.tpot_lo_s)}–{sig(api.tpot_hi_s)}]"
    assert basis.startswith("$ on cloud on-demand") and "stack typical" in basis
    held = f"{api.max_context_tokens:,}"
    assert cells["max_context", "modified"] == f"131,072 (model's limit; KV {held})"
    assert cells["tpot", "change"].startswith("-")  # twice the bandwidth, faster decode
    assert "text-success" in cells["tpot", "colour"]  # faster is good: green
    assert alerts == [] and par_note is None  # it fits, on the preset's split
    assert "bw_tbs=6.7" in link and "kv=fp8" in link and "stack=typical" in link and "basis=cloud" in link
    assert {t.name for t in roofline.data} >= {"prefill", "decode"}


def test_untouched_knobs_show_no_change(pages):
    cells, _ = _answer(pages, *H100_KNOBS)
    assert cells["ttft", "preset"] == cells["ttft", "modified"] and cells["ttft", "change"] == "+0.0%"


def test_a_tp_the_model_cannot_use_is_an_error_in_the_page(pages):
    _, (*_, error) = _answer(pages, *H100_KNOBS, devices="8", prompt=1000)
    assert error is None  # 32 heads / 8
    inf2 = [32, 0.82, 190, None, None]  # no scale-up link: tp=2 cannot run
    out = pages["designer"].update_answer(
        "inferentia2", "llama-3.1-8b", "model", "2", 1000, 10, 1, *TYPICAL_CLOUD, *inf2
    )
    assert "needs hardware.scale_up" in str(out[-1].children)


def test_cost_curve_has_both_devices_and_their_cliffs(pages):
    designer = pages["designer"]
    preset = designer.preset_curve("h100-sxm", "llama-3.1-8b", "model", 256, 1, *TYPICAL_CLOUD)
    fig = designer.update_cost_curve(
        preset, "h100-sxm", "llama-3.1-8b", "model", 256, 1, 50_000, 160, 3.35, 989, 50, 450
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
    hw, model = apply_stack(load_hardware("h100-sxm"), load_stack("typical")), load_model("llama-3.1-8b")
    shared, found = cost_curve(model, [hw], 256, 1000, 10_000_000, max_batch=1)
    assert list(fig.data[2].x) == list(shared["context_tokens"])  # `ctxsim cost-curve`'s, typical stack
    np.testing.assert_array_equal(fig.data[2].y, shared["cost_per_request_usd"].astype(float))
    assert shared.loc[~shared["fits"], "context_tokens"].min() + 256 > 131_072  # past the context limit
    assert preset_first_cliff == found[0].context_tokens - 1
    marks = {a.name: a.text for a in fig.layout.annotations}  # the prompt asked about, the model's limit
    assert marks == {"prompt": "prompt: 50,000", "limit": "context limit: 131,072"}
    assert [s.x0 for s in fig.layout.shapes] == [50_000, 131_072]
    moved = designer.mark_prompt(200_000, fig.to_plotly_json())
    assert moved.to_plotly_json()["operations"][0]["params"]["value"]["x0"] == 200_000


def test_a_new_preset_resets_every_knob(pages):
    from dashboard.designer_view import move_knob

    out = move_knob("memory_capacity_bytes", "groq-lpu", 80, 80, 20, 320, False, "designer-hardware")
    lo, hi, _step, _marks, disabled, slider, box, box_disabled, label = out
    lpu = load_hardware("groq-lpu")
    assert slider == box == pytest.approx(lpu.main_tier.capacity_bytes / 1e9) and lo < slider < hi
    assert not disabled and not box_disabled and label == "SRAM capacity"
    sram = move_knob("sram_bytes", "groq-lpu", 50, 50, 12.5, 200, False, "designer-hardware")
    assert sram[4] is True and sram[6] is None  # no cache tier above the LPU's SRAM: off, box empty
    assert "already its main tier" in pages["designer"].explain_sram("groq-lpu")[0]


def test_a_scenario_run_from_the_page_is_ctxsim_run(pages, settings, tmp_path, session, finish):
    from sim.cli import app as cli

    runs = pages["runs"]
    data = read_example(settings.examples_dir, "chat-h100")
    values = form_values(scenario_from_dict(data))
    values[7] = 300  # requests
    job, error, percent, text = runs.start_run(1, session, {"label": "chat-h100", "data": data}, [], *values)
    assert error is None and job["label"] == "#1 chat-h100 (2x1 h100-sxm)"
    assert (percent, text) == (0, "#1: queued")  # the bar starts again for each run
    assert finish(job["key"]).state == "done"
    cleared, kept, percent, text, error = runs.poll_run(1, job, [])
    assert cleared is None and error is None and percent == 100 and text.startswith("#1: 300 requests in")
    assert kept == [{"key": job["key"], "label": job["label"], "n": 1}]
    assert runs.poll_run(2, job, kept)[1] == kept  # a second poll of the same job keeps it once
    path = tmp_path / "chat.yaml"
    path.write_text((settings.examples_dir / "chat-h100.yaml").read_text())
    out = CliRunner().invoke(cli, ["run", str(path), "--set", "stop.requests=300", "--json"])
    cli_summary = json.loads(out.stdout)
    page = runs.show_runs(kept)[0]
    rows = page[0].children[1].children
    cells = {row.children[0].children: row.children[1].children for row in rows}
    for key, label in COMPARED:  # in ms, %, $ and req/s, an interval after the value where it has one
        assert cells[label].startswith(labels.text(key, cli_summary[key])), label
    lo, hi = cli_summary["throughput_ci_lo_rps"], cli_summary["throughput_ci_hi_rps"]
    assert cells["throughput"].endswith(f" req/s [{number(lo)}–{number(hi)}]")
    assert cells["TTFT p99"] == labels.text("ttft_p99_s", cli_summary["ttft_p99_s"])  # no p99 interval yet
    assert cells["TTFT p99"].endswith(" ms") and cells["overloaded"] == "no"
    assert cells["SLO target"] == "TTFT ≤ 2.00 s, TPOT ≤ 50.0 ms at p99"
    ttft = labels.text("ttft_p99_s", cli_summary["ttft_p99_s"])
    assert cells["TTFT vs SLO"] == f"PASS {ttft} ≤ 2.00 s (p99)"
    assert cells["end to end vs SLO"] == "no target" and cells["SLO verdict"] == "PASS"
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
    job, *_ = runs.start_run(1, session, {"label": "chat-h100", "data": data}, [], *values)
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
    job, error, *_ = runs.start_run(1, session, {"label": "chat-h100", "data": data}, [], *values)
    assert "parallelism" in str(error.children) and job is dash.no_update


def test_sizing_plans_and_draws_the_chosen_cluster(pages, settings, session, finish):
    sizing = pages["sizing"]
    data = read_example(settings.examples_dir, "chat-h100")
    source = {"label": "chat-h100", "data": data}
    values = sizing._flat(scenario_question(data))
    form = dict(zip(sizing.FORM, values, strict=True))
    form |= {"sizing-qps": 8.0, "sizing-requests": 300, "sizing-tps": [1, 2], "sizing-max-devices": 16}
    job, error = sizing.start_plan(1, session, source, *form.values())
    assert error is None
    assert finish(job["key"]).state == "done"
    cleared, shown, text, error = sizing.poll_plan(1, job, None)
    assert cleared is None and error is None and shown == {"key": job["key"]}
    assert text.endswith(" s") and "simulations in" in text
    answer, each, rows, columns, styles, latency = sizing.show_plan(shown)
    best = sizing.job_store().result(job["key"])["plan"]["best"]
    assert best["hardware"] == "h100-sxm" and best["tp"] == 1
    body = answer.children.children
    assert body[0].children[0].children.startswith("best for llama-3.1-8b · 8 req/s")  # what it answers
    assert body[0].children[1].children.startswith("prompts median 1,500 tokens")
    assert body[1].children.endswith(f"{best['devices']} devices")
    assert rows[0]["hardware"] == "h100-sxm" and rows[0]["verdict"] == best["verdict"]
    assert rows[0]["judged on (requests)"] == best["requests"] and "best overall" in rows[0]["note"]
    assert {"TTFT p99 (s)", "TTFT p99 headroom", "note"} <= {c["id"] for c in columns}
    assert any(s["if"].get("filter_query") == '{verdict} = "borderline"' for s in styles)
    verdict = body[3]
    assert verdict.id == "sizing-verdict" and verdict.children[0].children == best["verdict"]
    assert answer.color == {"meets": "success", "borderline": "warning"}[best["verdict"]]
    slo_cells = [[td.children for td in tr.children] for tr in body[4].children[1].children]
    assert [r[0] for r in slo_cells] == ["TTFT p99", "TPOT p99"] and slo_cells[0][1] == "2.00 s"
    assert "h100-sxm" in str(each) and sum(1 for t in latency.data if t.name) == 3
    problem = dict(form, **{"sizing-ttft": None, "sizing-tpot": None})
    _job, refused = sizing.start_plan(1, session, source, *problem.values())
    assert "at least one p99 target" in refused.children


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
    assert [o["value"] for o in options[3]] == ["cluster.replicas", "hardware"] and len(rows) == 6
    assert [o["label"] for o in options[3]] == ["replicas", "hardware"]
    pareto, note = sweeps.show_pareto("unit-sweep", values[0], values[1], [], None, ["labels"])
    assert [t.name for t in pareto.data] == ["sweep points", "Pareto front"] and note is None
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


def test_designer_takes_cluster_splits(pages):
    """The designer's parallelism offers expert parallelism with data-parallel attention, context
    and pipeline parallelism; a split the model cannot take is an error naming the degree."""
    designer = pages["designer"]
    knobs = [None] * len(designer.KNOBS)
    out = designer.update_answer(
        "gb200", "qwen3-30b-a3b", "model", "dp8-ep8", 4000, 100, 64, *TYPICAL_CLOUD, *knobs
    )
    assert out[-1] is None and out[0].startswith("8 (1 x 1 x attention_dp 8 x ep 8)")
    out = designer.update_answer(
        "h100-sxm", "llama-3.1-8b", "model", "dp8-ep8", 4000, 100, 1, *TYPICAL_CLOUD, *knobs
    )
    assert "ep (8) needs experts" in str(out[-1].children)
    out = designer.update_answer(
        "h100-sxm", "llama-3.1-70b", "model", "tp8-cp4", 100_000, 10, 1, *TYPICAL_CLOUD, *knobs
    )
    assert out[-1] is None and out[0].startswith("32 (8 x 1 x cp 4)")


def test_the_designer_shows_no_numbers_where_it_does_not_fit(pages):
    """DeepSeek-V3 on 8 x H100, and a prompt past the model's context: "does not fit: why" and no
    latency, capacity or cost, for the preset and the modified device alike."""
    knobs = [None] * len(pages["designer"].KNOBS)
    cells, (alerts, par_note, _basis, note, roofline, _link, error) = _answer(
        pages, *knobs, devices="8", prompt=128_000, model="deepseek-v3"
    )
    assert error is None and note == "" and par_note is None
    assert [a.children for a in alerts] == [
        "does not fit: weights (83.9 GB per device) and activation reserve (0.545 GB, 8,192 tokens) "
        "exceed the usable 72 GB of hbm on 8 x h100-sxm; it fits on 10 devices (tp 2 x pp 5)"
    ]
    for key in ("ttft", "tpot", "max_context", "max_batch", "cost_1m", "cost_request"):
        assert cells[key, "preset"] == cells[key, "modified"] == "—" and cells[key, "change"] == ""
    assert cells["fits", "modified"] == "no" and "does not fit" in roofline.layout.annotations[0].text
    cells, (alerts, *_) = _answer(pages, *knobs, prompt=1_000_000, model="llama-3.1-70b")
    assert alerts[0].children == (
        "does not fit: 1,000,000 prompt + 256 output tokens exceed llama-3.1-70b's context limit of "
        "131,072 tokens"
    )
    assert cells["ttft", "modified"] == "—" and cells["cost_request", "modified"] == "—"


def test_a_change_of_split_forced_by_a_knob_is_called_out_apart_from_the_hardware(pages):
    """Llama-3.1-70B (fp8 KV) needs 3 x H100 (a pipeline of 3); with 160 GB of HBM two hold it. The
    change column mixes the two; the note gives the hardware's effect alone, on the preset's 1 x 3."""
    from dashboard.designer_view import change_text, knobs_from
    from dashboard.whatif import answer, apply_knobs

    knobs = [160, 3.35, 989, 50, 450]
    cells, (_alerts, note, *_) = _answer(pages, *knobs, model="llama-3.1-70b", prompt=8000)
    assert (cells["devices", "preset"], cells["devices", "modified"]) == ("3 (1 x 3)", "2 (2 x 1)")
    assert "text-success" in cells["devices", "colour"]  # fewer devices: green
    text = "".join(c if isinstance(c, str) else c.children for c in note.children)
    assert text.startswith("parallelism changed: the modified device runs on 2 (2 x 1) where the preset")
    h100, model = load_hardware("h100-sxm"), load_model("llama-3.1-70b").with_dtypes(None, "fp8")
    preset = answer(model, h100, 8000, 256, 4)
    alone = answer(model, apply_knobs(h100, knobs_from(h100, knobs)), 8000, 256, 4, preset.par)
    ttft = change_text(alone.estimate.ttft_s, preset.estimate.ttft_s)
    assert f"The hardware alone, on the preset's 1 x 3: TTFT {ttft}, TPOT " in text


def test_a_typed_knob_value_moves_its_slider_within_range(pages):
    from dashboard.designer_view import move_knob

    knob = "memory_bandwidth_bytes_per_s"
    moved = move_knob(knob, "h100-sxm", 6.7, 3.35, 0.84, 13.4, False, "designer-bw_tbs-box")
    assert moved[5:7] == [6.7, dash.no_update]  # the slider takes the typed value; the box keeps it
    clamped = move_knob(knob, "h100-sxm", 99, 3.35, 0.84, 13.4, False, "designer-bw_tbs-box")
    assert clamped[5:7] == [13.4, 13.4]  # past the range: the slider's end, shown in the box too
    emptied = move_knob(knob, "h100-sxm", None, 3.35, 0.84, 13.4, False, "designer-bw_tbs-box")
    assert emptied[5:7] == [dash.no_update, 3.35]
    dragged = move_knob(knob, "h100-sxm", 3.35, 5.0, 0.84, 13.4, False, "designer-bw_tbs")
    assert dragged[5:7] == [dash.no_update, 5.0]


def test_an_upload_fills_the_sizing_form_and_its_link_opens_it_again(pages, settings):
    """A 70B chat scenario whose own tp 1 cannot hold the weights (the CLI's `plan` takes it, and
    picks tp itself): the upload fills the form, the link carries it, and the link opens on it."""
    import base64
    from urllib.parse import parse_qs, urlsplit

    import yaml

    sizing = pages["sizing"]
    data = {**read_example(settings.examples_dir, "chat-h100"), "model": "llama-3.1-70b"}
    upload = "data:application/x-yaml;base64," + base64.b64encode(yaml.safe_dump(data).encode()).decode()
    source = {"label": "chat-70b.yaml", "data": parse_upload(upload, "chat-70b.yaml", 10_000, False)}
    source["uploaded"] = True  # as the page's upload box stores it (`register_source_choice`)
    filled = dict(zip(["options", *sizing.FILLED], sizing.fill_form(source), strict=True))
    assert filled["sizing-model"] == "llama-3.1-70b" and filled["sizing-qps"] == 12.0
    assert filled["sizing-hardware"] == ["h100-sxm"] and filled["sizing-workload"] == "lengths"
    values = sizing._flat(scenario_question(source["data"]))
    asked, link, note = sizing.show_question(source, *values)
    assert note == "this link carries chat-70b.yaml too" and "Sizing" in str(asked)
    query = {k: v if len(v) > 1 else v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    assert query["upload"] == "chat-70b.yaml" and query["model"] == "llama-3.1-70b"
    page = sizing.layout(**query)
    store = next(c for c in page.children[0].children if getattr(c, "id", None) == "sizing-source")
    assert store.data == {"label": "chat-70b.yaml", "data": data, "uploaded": True}
    refused = sizing.layout(scenario="garbage", model="llama-3.1-70b")
    assert "does not read" in str(refused.children[1].children[0])
