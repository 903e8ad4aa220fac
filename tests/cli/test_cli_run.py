import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from sim.api import run
from sim.cli import app
from sim.scenario import load_scenario
from tests.conftest import TINY_BASE

runner = CliRunner()
SUMMARY_KEYS = {
    "requests_total",
    "requests_finished",
    "requests_rejected",
    "duration_s",
    "throughput_rps",
    "input_tokens_per_s",
    "output_tokens_per_s",
    "ttft_p50_s",
    "ttft_p90_s",
    "ttft_p99_s",
    "tpot_p50_s",
    "tpot_p90_s",
    "tpot_p99_s",
    "e2e_p50_s",
    "e2e_p90_s",
    "e2e_p99_s",
    "mean_queue_s",
    "goodput_rps",
    "slo_attainment",
    "kv_peak_fraction",
    "preemptions",
    "compute_bound_time_fraction",
    "memory_bound_time_fraction",
    "cost_per_1m_input_tokens_usd",
    "cost_per_1m_output_tokens_usd",
    "energy_j_per_output_token",
    "sim_wall_s",
    "sim_events",
}
REQUEST_COLUMNS = {
    "request_id",
    "arrival_s",
    "scheduled_s",
    "first_token_s",
    "finish_s",
    "prompt_tokens",
    "cached_tokens",
    "output_tokens",
    "replica",
    "preemptions",
    "ttft_s",
    "tpot_s",
    "e2e_s",
    "rejected_reason",
}


@pytest.fixture
def scenario_file(tmp_path):
    data = {**TINY_BASE, "slo": {"ttft_s": "50ms"}, "stop": {"requests": 300}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_run_writes_every_output(scenario_file, tmp_path):
    out = tmp_path / "out"
    r = runner.invoke(app, ["run", str(scenario_file), "--out", str(out), "--csv"])
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS
    requests = pd.read_parquet(out / "requests.parquet")
    assert set(requests.columns) >= REQUEST_COLUMNS and len(requests) == 300
    assert len(pd.read_parquet(out / "timeseries.parquet")) > 0
    html = (out / "report.html").read_text()
    assert "plotly" in html.lower() and "Latency CDFs" in html
    assert "<td>measured</td>" in html and "confidence intervals</li>" in html
    assert (out / "requests.csv").exists()


def test_cli_matches_python_api(scenario_file):
    r = runner.invoke(app, ["run", str(scenario_file), "--json"])
    cli = json.loads(r.stdout)
    api = run(load_scenario(scenario_file)).summary.to_dict()
    for key in SUMMARY_KEYS - {"sim_wall_s"}:
        assert cli[key] == pytest.approx(api[key], nan_ok=True), key


def test_set_overrides(scenario_file):
    r = runner.invoke(app, ["run", str(scenario_file), "--json", "--set", "stop.requests=20"])
    assert json.loads(r.stdout)["requests_total"] == 20


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"workload": {"arrivals": {"kind": "poisson", "rate_per_s": -2}}}, "rate_per_s"),
        ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
        ({"scheduler": {"max_num_seqs": "lots"}}, "scheduler.max_num_seqs"),
        ({"parallelism": {"tp": 4}, "cluster": {"devices": 2}}, "exceeds cluster.devices (2)"),
    ],
)
def test_bad_scenario_fails_before_writing(scenario_file, tmp_path, edit, message):
    data = yaml.safe_load(scenario_file.read_text())
    for key, value in edit.items():
        data[key] = {**data[key], **value} if isinstance(data.get(key), dict) else value
    scenario_file.write_text(yaml.safe_dump(data))
    out = tmp_path / "never"
    r = runner.invoke(app, ["run", str(scenario_file), "--out", str(out)])
    assert r.exit_code == 2
    assert message in r.stderr.replace("\n", " ")
    assert not out.exists() and not list(tmp_path.glob(".never*"))
    assert "Traceback" not in r.output


def test_missing_file():
    r = runner.invoke(app, ["run", "nowhere.yaml"])
    assert r.exit_code == 2 and "cannot read" in r.stderr


def test_empty_workload_is_an_error(scenario_file):
    r = runner.invoke(app, ["run", str(scenario_file), "--set", "stop={duration_s: 0.001}"])
    assert r.exit_code == 2 and "no requests" in r.stderr


def _table(*args: str) -> str:
    """`ctxsim run ARGS` as a wide terminal prints it, with the run's summary alongside."""
    r = runner.invoke(app, ["run", *args], env={"COLUMNS": "160"})
    assert r.exit_code == 0, r.output
    return r.stdout


def test_table_shows_intervals_what_was_measured_and_the_p99_caveat(scenario_file):
    text = _table(str(scenario_file))
    s = json.loads(runner.invoke(app, ["run", str(scenario_file), "--json"]).stdout)
    dropped = s["warmup_requests_dropped"], s["drain_requests_dropped"]
    assert "│ measured " in text and f"(dropped {dropped[0]} warm-up, {dropped[1]} drain)" in text
    assert f"{s['throughput_rps']:.2f} req/s [{s['throughput_ci_lo_rps']:.2f}–" in text
    assert "TTFT p50 / p99" in text and "SLO attainment" in text
    assert "p99 intervals need ≥ 20,000 measured requests" in text
    assert "[lo–hi]: 95% confidence intervals" in text and "OVERLOADED" not in text


def test_an_overloaded_run_says_so_in_red_instead_of_latency():
    chat = str(Path(__file__).resolve().parents[2] / "examples" / "chat-h100.yaml")
    text = _table(chat, "--set", "workload.arrivals.rate_per_s=40", "--set", "stop.requests=1500")
    row = next(line for line in text.splitlines() if "OVERLOADED" in line)
    assert re.search(r"offered \d+\.\d\d req/s, sustainable \d+\.\d\d req/s", row)
    assert "TTFT p50 / p99" in text and "— / —" in text
    assert "the load was still drifting: simulate more requests" in text


def test_help_flows_each_command_description_to_the_width():
    """A command's description is one paragraph, wrapped to the terminal, not broken where its
    docstring's source lines end."""
    wide = runner.invoke(app, ["--help"], env={"COLUMNS": "250"})
    assert wide.exit_code == 0, wide.output
    lines = [t for t in wide.stdout.splitlines() if t.count("│") == 2 and t.strip("│ ")]
    rows = {t.split("│")[1].split()[0]: t for t in lines}
    assert "max batch, each latency and throughput" in rows["estimate"]
    assert "(optionally in prefill and decode pools)" in rows["plan"]
