"""`ctxsim run --stream`: a run written a chunk at a time, refused up front when it cannot be."""

import json
from pathlib import Path

import pandas as pd
import yaml
from typer.testing import CliRunner

from sim.cli import app
from tests.conftest import TINY_BASE

runner = CliRunner()


def write(tmp_path, data) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_stream_writes_the_tables_and_summary(tmp_path):
    out = tmp_path / "out"
    r = runner.invoke(app, ["run", write(tmp_path, TINY_BASE), "--stream", "--out", str(out)])
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    requests = pd.read_parquet(out / "requests.parquet")
    assert summary["requests_total"] == len(requests) == 100
    assert summary["requests_finished"] == requests["finish_s"].notna().sum()
    assert (out / "timeseries.parquet").exists() and (out / "classes.csv").exists()
    assert "no report.html" in r.output


def test_stream_needs_an_output_folder(tmp_path):
    r = runner.invoke(app, ["run", write(tmp_path, TINY_BASE), "--stream"])
    assert r.exit_code == 2 and "--stream needs --out" in r.output


def test_what_cannot_be_streamed_is_refused_before_writing(tmp_path):
    data = TINY_BASE | {
        "workload": TINY_BASE["workload"]
        | {"arrivals": {"kind": "closed_loop", "users": 2, "think_time_s": 0}}
    }
    out = tmp_path / "out"
    r = runner.invoke(app, ["run", write(tmp_path, data), "--stream", "--out", str(out)])
    assert r.exit_code == 2 and "workload.arrivals: closed-loop users cannot be streamed" in r.output
    assert not out.exists()


def test_the_day_example_streams(tmp_path):
    day = str(Path(__file__).resolve().parents[2] / "examples" / "streamed" / "day-of-chat.yaml")
    out = tmp_path / "day"
    r = runner.invoke(
        app, ["run", day, "--stream", "--out", str(out), "--set", "stop.requests=3000", "--json"]
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["requests_total"] == 3000
