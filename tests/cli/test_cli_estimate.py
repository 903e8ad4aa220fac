import json

import pytest
from typer.testing import CliRunner

from hardware.stacks import DEFAULT_STACK, apply_stack, load_stack
from sim.cli import app
from sim.cost.estimate import estimate
from sim.cost.parallelism import Parallelism
from sim.cost.roofline import RooflineCost

runner = CliRunner()
KEYS = {
    "model",
    "hardware",
    "tp",
    "fits",
    "reason",
    "weights_bytes_per_device",
    "kv_bytes_per_token",
    "kv_capacity_tokens",
    "max_context_tokens",
    "max_batch_at_context",
    "prefill_s",
    "prefill_bound",
    "decode_step_s",
    "decode_bound",
    "ttft_s",
    "tpot_s",
    "e2e_s",
}


def run(*argv):
    return runner.invoke(app, list(argv))


def test_estimate_json_keys_and_values(llama8b, h100):
    r = run(
        "estimate",
        "--model",
        "llama-3.1-8b",
        "--hardware",
        "h100-sxm",
        "--input",
        "8192",
        "--output",
        "256",
        "--batch",
        "4",
        "--json",
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert set(data) >= KEYS
    assert data["fits"] is True and data["kv_bytes_per_token"] == 131_072
    cost = RooflineCost(llama8b, apply_stack(h100, load_stack(DEFAULT_STACK)))  # the device as served
    assert data["prefill_s"] == pytest.approx(cost.step([8192] * 4, [0] * 4, 4).total_s)
    assert data["decode_step_s"] == pytest.approx(cost.step([1] * 4, [8192] * 4, 4).total_s)
    assert data["e2e_s"] == pytest.approx(data["ttft_s"] + 255 * data["tpot_s"])
    assert data["decode_step_s"] <= data["tpot_s"]  # later steps read more KV


def test_ten_million_token_scout_does_not_fit_one_h100():
    r = run(
        "estimate",
        "--model",
        "llama-4-scout",
        "--hardware",
        "h100-sxm",
        "--input",
        "10000000",
        "--output",
        "100",
        "--json",
    )
    data = json.loads(r.stdout)
    assert data["fits"] is False and "exceed" in data["reason"]
    assert data["devices_needed"] > 1
    par = Parallelism(data["suggested_tp"], data["suggested_pp"])
    assert par.devices == data["devices_needed"]


def test_suggestion_really_fits(h100):
    from workloads import load_model

    m = load_model("llama-3.1-70b")
    first = estimate(m, h100, Parallelism(), 128_000, 1000)
    assert not first.fits
    again = estimate(m, h100, Parallelism(first.suggested_tp, first.suggested_pp), 128_000, 1000)
    assert again.fits


def test_model_and_hardware_from_files(tmp_path):
    hw = tmp_path / "chip.yaml"
    hw.write_text(
        "name: chip\npeak_flops: {bf16: 1 PFLOPS}\nmemory:\n"
        "  - {name: hbm, capacity_bytes: 200 GB, bandwidth_bytes_per_s: 10 TB/s}\n"
    )
    r = run(
        "estimate",
        "--model",
        "llama-3.1-8b",
        "--hardware",
        str(hw),
        "--input",
        "1000",
        "--output",
        "10",
        "--json",
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["hardware"] == "chip"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "llama-70b"], "Did you mean"),
        (["--hardware", "h100"], "Did you mean"),
        (["--tp", "3"], "tp (3) must divide num_heads (32)"),
    ],
)
def test_bad_input_one_message_nonzero_exit(argv, message):
    base = {"--model": "llama-3.1-8b", "--hardware": "h100-sxm", "--input": "100", "--output": "10"}
    for flag, value in zip(argv[::2], argv[1::2], strict=True):
        base[flag] = value
    r = run("estimate", *[x for kv in base.items() for x in kv])
    assert r.exit_code == 2
    assert message in r.stderr.replace("\n", " ")
    assert "Traceback" not in r.output


def test_malformed_hardware_file_names_field(tmp_path):
    hw = tmp_path / "chip.yaml"
    hw.write_text(
        "name: chip\npeak_flops: {bf16: 1 PFLOPS}\nmemory:\n"
        "  - {name: hbm, capacity_bytes: -5 GB, bandwidth_bytes_per_s: 10 TB/s}\n"
    )
    r = run("estimate", "--model", "llama-3.1-8b", "--hardware", str(hw), "--input", "10", "--output", "1")
    assert r.exit_code == 2 and "capacity_bytes" in r.stderr


def test_table_output_and_catalog():
    r = run(
        "estimate",
        "--model",
        "deepseek-v3",
        "--hardware",
        "h200",
        "--tp",
        "8",
        "--input",
        "4096",
        "--output",
        "64",
    )
    assert r.exit_code == 0 and "KV per token" in r.stdout
    assert "h100-sxm" in run("catalog", "hardware").stdout
    models = json.loads(run("catalog", "models", "--json").stdout)
    assert {m["name"] for m in models} >= {"llama-3.1-8b", "deepseek-v3"}
    assert all(m["source"] for m in models)


def test_estimate_context_limit_and_rope_factor():
    args = ("estimate", "--model", "llama-3.1-70b", "--hardware", "h200", "--tp", "8",
            "--input", "500000", "--output", "100", "--json")
    data = json.loads(run(*args).stdout)
    assert data["fits"] is False and data["reason"].startswith("context_limit")
    data = json.loads(run(*args, "--rope-factor", "4").stdout)
    assert data["fits"] is True and data["model_max_context_tokens"] == 524_288
