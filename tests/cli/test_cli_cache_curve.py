"""`ctxsim cache-curve`: the table, JSON and HTML outputs, and the errors that write nothing."""

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sim.cli.cache import register

DATA = Path(__file__).resolve().parents[1] / "data"
SAMPLE = DATA / "mooncake_conversation_sample.jsonl"
runner = CliRunner()


@pytest.fixture(scope="module")
def app():
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # with two commands typer keeps `cache-curve` as a subcommand
    return app


def test_table_shows_policies_side_by_side_and_unbounded_rate_next_to_reuse(app):
    result = runner.invoke(app, ["cache-curve", str(SAMPLE), "--capacities", "100,1000,7814"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for header in ("lru blk", "lru tok", "lfu blk", "lfu tok", "cost blk", "cost tok", "7,814", "100.0%"):
        assert header in result.output
    assert "unbounded cache: prefix hit rate 0.0796 of blocks; trace block reuse 0.0796" in result.output


def test_json_and_html(app, tmp_path):
    html = tmp_path / "curve.html"
    result = runner.invoke(app, ["cache-curve", str(SAMPLE), "--format", "mooncake", "--policies", "cost,lru",
                                 "--json", "--html", str(html)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["requests"] == 300 and data["blocks"] == 8490 and data["distinct_blocks"] == 7814
    assert data["unbounded_hit_rate_blocks"] == pytest.approx(data["block_reuse"], abs=1e-12)
    assert [r["policy"] for r in data["curve"]][::9] == ["cost", "lru"]
    assert data["curve"][-1]["capacity_blocks"] == 7814
    assert html.read_text().count("scatter") >= 4


@pytest.mark.parametrize(("args", "message"), [
    ([str(DATA / "azure_code_sample.csv")], "no prefix-block hashes"),
    ([str(SAMPLE), "--capacities", "0,10"], "each at least 1"),
    ([str(SAMPLE), "--capacities", "1e3"], "give 'auto' or whole block counts"),
    ([str(SAMPLE), "--policies", "lru,fifo"], "choose from lru, lfu, cost"),
])
def test_bad_input_fails_and_writes_nothing(app, tmp_path, args, message):
    html = tmp_path / "curve.html"
    result = runner.invoke(app, ["cache-curve", *args, "--html", str(html)], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not html.exists()


def test_registered_on_the_ctxsim_app():
    from sim.cli import app

    result = runner.invoke(app, ["cache-curve", "--help"])
    assert result.exit_code == 0 and "--capacities" in result.output
