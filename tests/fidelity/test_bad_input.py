"""Bad measurement and kernel files: one message naming the column, line or row, a non-zero exit, and
no output file."""

from pathlib import Path

from typer.testing import CliRunner

from sim.cli import app

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "validation" / "sample_measurements.csv"
runner = CliRunner()


def said(result):
    """The command's output with line wrapping undone."""
    return " ".join(result.output.split())


def _sample_lines():
    return SAMPLE.read_text().splitlines()


def test_unknown_column_is_named(tmp_path):
    lines = _sample_lines()
    bad = tmp_path / "m.csv"
    bad.write_text("\n".join([lines[0] + ",colour", *(line + "," for line in lines[1:])]) + "\n")
    r = runner.invoke(app, ["validate", str(bad), "--no-engine"])
    assert r.exit_code != 0
    assert "unknown column 'colour'" in said(r)


def test_malformed_value_names_the_row(tmp_path):
    lines = _sample_lines()
    header = lines[0].split(",")
    row = next(line for line in lines[1:] if line.startswith("99,"))
    cells = row.split(",")
    cells[header.index("input_len")] = "lots"
    bad = tmp_path / "m.csv"
    bad.write_text("\n".join([lines[0], ",".join(cells)]) + "\n")
    r = runner.invoke(app, ["validate", str(bad), "--no-engine"])
    assert r.exit_code != 0
    assert "line 2 (row_id 99): input_len must be a positive number" in said(r)


def test_malformed_cp_names_the_row(tmp_path):
    lines = _sample_lines()
    row = next(line for line in lines[1:] if line.startswith("99,"))
    bad = tmp_path / "m.csv"
    bad.write_text("\n".join([lines[0] + ",cp", row + ",two"]) + "\n")
    r = runner.invoke(app, ["validate", str(bad), "--no-engine"])
    assert r.exit_code != 0
    assert "line 2 (row_id 99): cp must be a positive number" in said(r)


def test_row_with_too_many_fields_names_the_line(tmp_path):
    bad = tmp_path / "m.csv"
    bad.write_text("row_id,model,gpu,metric,value\n1,x,y,ttft,1\n2,x,y,ttft,1,extra\n")
    r = runner.invoke(app, ["validate", str(bad)])
    assert r.exit_code != 0
    assert "line 3" in said(r)


def test_calibrate_bad_kernel_file_writes_nothing(tmp_path):
    bad = tmp_path / "k.csv"
    bad.write_text("op,m,n,k,time_s\ngemm,1,2,3,-1\n")
    out = tmp_path / "out.yaml"
    r = runner.invoke(app, ["calibrate", str(bad), "--hardware", "h100-sxm", "-o", str(out)])
    assert r.exit_code != 0
    assert "line 2: column 'time_s' must be positive" in said(r)
    assert not out.exists()
