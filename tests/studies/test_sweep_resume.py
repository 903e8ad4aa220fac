"""A sweep killed with SIGKILL resumes where it stopped: every point stored exactly once."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from sim.cli import app
from sim.studies import store as sweep_store
from sim.studies.sweep import load_sweep
from tests.studies.sweepfiles import write_sweep

ROOT = Path(__file__).resolve().parents[2]
POINTS = 12
runner = CliRunner()


def _sweep_cmd(sweep_file, out):
    return [sys.executable, "-c", "from sim.cli import app; app(prog_name='ctxsim')",
            "sweep", str(sweep_file), "--out", str(out), "--workers", "2", "-q"]


def test_sigkill_then_resume_stores_every_point_once(tmp_path):
    sweep_file = write_sweep(tmp_path, set={"stop.requests": 300}, grid={"seed": list(range(POINTS))})
    out = tmp_path / "out"
    proc = subprocess.Popen(_sweep_cmd(sweep_file, out), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if len(list((out / "points").glob("*.parquet"))) >= 3:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {p.stem: pd.read_parquet(p) for p in (out / "points").glob("*.parquet")}
    assert 3 <= len(before) < POINTS, "the sweep finished before the kill; make its points slower"
    assert not (out / "results.parquet").exists()

    resumed = subprocess.run(_sweep_cmd(sweep_file, out), cwd=ROOT, capture_output=True, text=True,
                             timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming: {len(before)} of {POINTS} points already stored" in resumed.stderr

    expected = [p.point_id for p in load_sweep(sweep_file).points]
    results = pd.read_parquet(out / "results.parquet")
    assert results["point_id"].tolist() == expected  # each once, in sweep order
    assert results["seed"].tolist() == list(range(POINTS))
    assert results["error"].isna().all()
    assert sorted(p.stem for p in (out / "points").glob("*.parquet")) == sorted(expected)
    assert not list(out.rglob("*.tmp"))
    for pid, row in before.items():  # stored before the kill, not run again
        after = results[results["point_id"] == pid].reset_index(drop=True)
        assert after["point_wall_s"][0] == row["point_wall_s"][0]


def test_failing_point_is_recorded_and_the_sweep_goes_on(tmp_path):
    # validates, but cannot draw arrivals: a burst has no time axis to stop by duration
    sweep_file = write_sweep(tmp_path, grid={"workload.arrivals": [{"kind": "poisson", "rate_per_s": 30},
                                                                    {"kind": "burst"}],
                                             "stop": [{"duration_s": 2}]})
    out = tmp_path / "out"
    r = runner.invoke(app, ["sweep", str(sweep_file), "--out", str(out), "--workers", "1", "-q"])
    assert r.exit_code == 1
    message = " ".join(r.output.split())
    assert "1 of 2 points failed" in message and "not burst" in message
    results = pd.read_parquet(out / "results.parquet")
    assert results["error"].isna().tolist() == [True, False]
    assert results["throughput_rps"][0] > 0
    assert "not burst" in results["error"][1]
    # a rerun keeps the recorded failure instead of running it again
    again = runner.invoke(app, ["sweep", str(sweep_file), "--out", str(out), "--workers", "1", "-q"])
    assert again.exit_code == 1 and "resuming: 2 of 2" in " ".join(again.output.split())


def test_report_rebuilds_from_stored_points(tmp_path):
    sweep_file = write_sweep(tmp_path, grid={"cluster.replicas": [1, 2],
                                             "workload.arrivals.rate_per_s": [20, 60]})
    out = tmp_path / "out"
    r = runner.invoke(app, ["sweep", str(sweep_file), "--out", str(out), "--workers", "2", "-q"])
    assert r.exit_code == 0, r.output
    (out / "report.html").unlink()
    (out / "results.parquet").unlink()
    r = runner.invoke(app, ["report", str(out)])
    assert r.exit_code == 0, r.output
    html = (out / "report.html").read_text()
    for title in ("Cost against tail latency", "workload.arrivals.rate_per_s against cluster.replicas",
                  "Metrics against cluster.replicas"):
        assert title in html
    assert 'src="http' not in html and len(html) > 1_000_000  # plotly.js inlined: works offline
    results = pd.read_parquet(out / "results.parquet")
    assert len(results) == 4 and set(results["cluster.replicas"]) == {1, 2}
    assert sweep_store.read_manifest(out)["params"] == ["cluster.replicas", "workload.arrivals.rate_per_s"]


def test_report_on_a_folder_that_is_not_a_sweep(tmp_path):
    r = runner.invoke(app, ["report", str(tmp_path)])
    assert r.exit_code == 2 and "not a sweep folder" in " ".join(r.output.split())
