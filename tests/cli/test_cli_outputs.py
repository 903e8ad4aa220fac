"""Outputs never replace what a user wrote: refused before simulating, written whole or not at all,
and `--overwrite` replaces only a folder that ctxsim itself wrote."""

import os
import stat
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sim.cli import app
from sim.files import MARKER
from tests.conftest import TINY_BASE

runner = CliRunner()


@pytest.fixture
def scenario_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY_BASE, "stop": {"requests": 30}}))
    return path


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _run(scenario_file, *args):
    return runner.invoke(app, ["run", str(scenario_file), "-q", *args])


def test_existing_user_folder_is_left_untouched(scenario_file, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "plan.txt").write_text("my notes")
    before = _tree(tmp_path)
    r = _run(scenario_file, "--out", str(notes))
    assert r.exit_code == 2
    assert "--out" in r.output and "not empty" in r.output and "Traceback" not in r.output
    assert _tree(tmp_path) == before and not list(tmp_path.glob(".notes*"))


def test_overwrite_never_replaces_a_folder_ctxsim_did_not_write(scenario_file, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "plan.txt").write_text("my notes")
    r = _run(scenario_file, "--out", str(notes), "--overwrite")
    assert r.exit_code == 2 and "not written by ctxsim" in r.output
    assert (notes / "plan.txt").read_text() == "my notes"


def test_out_dot_is_refused_and_the_working_folder_survives(scenario_file, tmp_path, monkeypatch):
    work = tmp_path / "work"
    (work / ".git").mkdir(parents=True)
    (work / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (work / "notes.md").write_text("keep me")
    monkeypatch.chdir(work)
    before = _tree(work)
    for target in (".", "..", str(work)):
        for extra in ([], ["--overwrite"]):
            r = _run(scenario_file, "--out", target, *extra)
            assert r.exit_code == 2, (target, r.output)
            assert "current folder" in r.output
    assert _tree(work) == before


def test_overwrite_replaces_an_earlier_ctxsim_output(scenario_file, tmp_path):
    out = tmp_path / "out"
    assert _run(scenario_file, "--out", str(out)).exit_code == 0
    assert (out / MARKER).is_file()
    (out / "summary.json").write_text("stale")
    assert _run(scenario_file, "--out", str(out)).exit_code == 2
    assert (out / "summary.json").read_text() == "stale"
    r = _run(scenario_file, "--out", str(out), "--overwrite")
    assert r.exit_code == 0, r.output
    assert (out / "summary.json").read_text() != "stale"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "tiny.yaml"]


def test_an_empty_existing_folder_is_used(scenario_file, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert _run(scenario_file, "--out", str(out)).exit_code == 0
    assert (out / "summary.json").is_file()


def test_output_folder_follows_the_umask(scenario_file, tmp_path):
    out = tmp_path / "out"
    old = os.umask(0o022)
    try:
        assert _run(scenario_file, "--out", str(out)).exit_code == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755


def test_bad_target_fails_before_simulating(scenario_file, tmp_path, monkeypatch):
    import sim.api

    def never(*a, **k):
        raise AssertionError("simulated although --out could not be written")

    monkeypatch.setattr(sim.api, "run", never)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    r = _run(scenario_file, "--out", str(a_file))
    assert r.exit_code == 2 and "not a folder" in r.output
    assert a_file.read_text() == "x"
    r = _run(scenario_file, "--out", str(a_file / "sub"))
    assert r.exit_code == 2 and "a-file" in r.output
    r = _run(scenario_file, "--out", "/proc/ctxsim-cannot-be-here")
    assert r.exit_code == 2 and "cannot write" in r.output


def test_a_failed_write_leaves_nothing(scenario_file, tmp_path, monkeypatch):
    import sim.report.run

    def broken(result):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sim.report.run, "run_report", broken)
    out = tmp_path / "out"
    r = _run(scenario_file, "--out", str(out))
    assert r.exit_code == 2 and "nothing written" in r.output and "Traceback" not in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]


def test_sweep_refuses_a_folder_that_is_not_a_sweeps(tmp_path):
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"base": TINY_BASE, "grid": {"stop.requests": [10]}}))
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "plan.txt").write_text("my notes")
    r = runner.invoke(app, ["sweep", str(sweep), "--out", str(notes), "--workers", "1", "-q"])
    assert r.exit_code == 2 and "not a sweep" in r.output
    assert _tree(notes) == {"plan.txt": b"my notes"}


def test_single_file_outputs_need_overwrite(tmp_path):
    page = tmp_path / "curve.html"
    page.write_text("mine")
    args = ["cost-curve", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", "--max-context", "4000",
            "--out", str(page)]
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "file exists" in r.output
    assert page.read_text() == "mine"
    r = runner.invoke(app, [*args, "--overwrite"])
    assert r.exit_code == 0, r.output
    assert "<html>" in page.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curve.html"]
