import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sim.cli import app
from workloads.describe import rate_curve, summarize

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
KEYS = {"requests", "duration_s", "rate_per_s", "prompt_tokens_mean", "prompt_tokens_p50",
        "prompt_tokens_p99", "output_tokens_mean", "output_tokens_p50", "block_reuse_fraction"}
runner = CliRunner()


def describe(*args):
    return runner.invoke(app, ["workload", "describe", *map(str, args)])


def test_summary_of_small_columns():
    s = summarize(np.array([0.0, 1.0, 4.0]), np.array([10, 20, 30]), np.array([1, 2, 9]),
                  np.array([1, 2, 1, 3, 1, 2]), 16)
    assert s["requests"] == 3 and s["duration_s"] == 4.0 and s["rate_per_s"] == 0.75
    assert s["prompt_tokens_mean"] == 20 and s["prompt_tokens_p50"] == 20 and s["output_tokens_p99"] == 9
    assert s["block_reuse_fraction"] == pytest.approx(0.5)
    assert summarize(None, np.array([5]), np.array([5]))["rate_per_s"] is None


def test_rate_curve_recovers_a_step():
    t = np.concatenate([np.linspace(0, 100, 1001)[:-1], np.linspace(100, 200, 101)])
    start, rate = rate_curve(t, bins=4)
    assert list(start) == [0, 50, 100, 150] and rate == pytest.approx([10, 10, 1, 1], abs=0.05)


def test_describe_a_trace_as_json_and_html(tmp_path):
    html = tmp_path / "w.html"
    result = describe(DATA / "mooncake_conversation_sample.jsonl", "--json", "--html", html)
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout)
    assert set(s) >= KEYS and s["format"] == "mooncake" and s["requests"] == 300
    assert 0 < s["block_reuse_fraction"] < 1 and s["duration_s"] == 102.0
    text = html.read_text()
    assert "plotly" in text and "arrival rate" in text and "prompt tokens" in text
    azure = json.loads(describe(DATA / "azure_code_sample.csv", "--json").stdout)
    assert azure["block_reuse_fraction"] is None and azure["requests"] == 300
    table = describe(DATA / "sharegpt_sample.csv")
    assert table.exit_code == 0 and "prompt_tokens_p99" in table.stdout


def test_describe_reports_a_bad_row_by_line_or_skips_it(tmp_path):
    lines = (DATA / "azure_code_sample.csv").read_text().splitlines()
    lines[41] = "2023-11-16 18:17:30.0000000,many,3"
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines))
    result = describe(path)
    assert result.exit_code == 2
    assert "line 42" in result.stderr and "ContextTokens 'many'" in result.stderr
    assert "Traceback" not in result.output
    skipped = json.loads(describe(path, "--skip-bad-rows", "--json").stdout)
    assert skipped["skipped_rows"] == 1 and skipped["requests"] == 299
    wrong = describe(DATA / "azure_code_sample.csv", "--format", "mooncake")
    assert wrong.exit_code == 2 and "line 1" in wrong.stderr


def scenario(tmp_path, workload):
    path = tmp_path / "s.yaml"
    path.write_text(json.dumps({"seed": 3, "hardware": "h100-sxm", "model": "llama-3.1-8b",
                                "workload": workload, "stop": {"requests": 400}}))
    return path


def test_describe_a_scenario_workload(tmp_path):
    workload = {"arrivals": {"kind": "gamma", "rate_per_s": 2, "cv": 3},
                "classes": [{"preset": "chat", "weight": 3},
                            {"preset": "role-play", "slo": {"ttft_s": "10 s"}}]}
    result = describe(scenario(tmp_path, workload), "--json")
    assert result.exit_code == 0, result.output
    s = json.loads(result.stdout)
    assert s["requests"] == 400 and set(s["classes"]) == {"chat", "role-play"}
    assert s["block_tokens"] == 512 and s["block_reuse_fraction"] > 0.3
    again = json.loads(describe(scenario(tmp_path, workload), "--json").stdout)
    assert again == s


def test_describe_a_bad_scenario_names_the_field(tmp_path):
    result = describe(scenario(tmp_path, {"classes": [{"preset": "chatt"}]}))
    assert result.exit_code == 2 and "did you mean chat" in result.stderr
    bursty = {"kind": "gamma", "rate_per_s": 1, "cv": 0}
    negative = describe(scenario(tmp_path, {"preset": "chat", "arrivals": bursty}))
    assert negative.exit_code == 2 and "cv" in negative.stderr
    assert "Traceback" not in negative.output
    mixed = describe(scenario(tmp_path, {"preset": "chat"}), "--format", "azure")
    assert mixed.exit_code == 2 and "apply to trace files" in mixed.stderr


def test_presets_listing():
    result = runner.invoke(app, ["workload", "presets", "--json"])
    assert result.exit_code == 0
    names = {"chat", "role-play", "document-analysis", "codebase", "multi-document"}
    assert set(json.loads(result.stdout)) == names


EXAMPLES = sorted((ROOT / "examples" / "workloads").glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_workload_examples_describe(example, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = describe(example, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["requests"] > 100
