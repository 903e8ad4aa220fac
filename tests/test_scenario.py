import json

import pytest
import yaml

from sim.runnable import load_scenario, scenario_from_dict
from sim.scenario import SCHEMA_PATH, Scenario, ScenarioError, json_schema
from tests.conftest import TINY_HW, TINY_MODEL


def base(**extra):
    return {
        "hardware": "h100-sxm",
        "model": "llama-3.1-8b",
        "workload": {
            "arrivals": {"kind": "poisson", "rate_per_s": 2},
            "prompt_tokens": {"kind": "fixed", "tokens": 100},
            "output_tokens": {"kind": "fixed", "tokens": 10},
        },
        "stop": {"requests": 10},
        **extra,
    }


def test_committed_schema_is_current():
    assert SCHEMA_PATH.read_text() == json_schema(), "run: python scripts/export_schema.py"


def test_round_trip_through_yaml():
    sc = scenario_from_dict(base(seed=3), ["scheduler.max_num_seqs=32"])
    again = Scenario.model_validate(yaml.safe_load(yaml.safe_dump(sc.model_dump(mode="json"))))
    assert again == sc
    assert hash(again) == hash(sc)


def test_preset_overrides_by_tier_name():
    sc = scenario_from_dict(
        base(), ["hardware.memory.hbm.bandwidth_bytes_per_s=4.8 TB/s", "model.kv_dtype=fp8"]
    )
    assert sc.hardware.main_tier.bandwidth_bytes_per_s == 4.8e12
    assert sc.model.kv_bytes_per_token == 65_536


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["scheduler.max_num_seq=4"], "scheduler.max_num_seq: Extra inputs are not permitted"),
        (["scheduler.max_num_seqs=many"], "scheduler.max_num_seqs"),
        (["workload.arrivals.rate_per_s=-1"], "rate_per_s: Input should be greater than 0"),
        (
            ["workload={arrivals: {kind: burst}, classes: []}"],
            "workload.classes: Tuple should have at least 1 item",
        ),
        (["parallelism.tp=16", "cluster.devices=8"], "exceeds cluster.devices (8)"),
        (["parallelism.tp=3"], "tp (3) must divide num_heads (32)"),
        (["model=llama-3-70b"], "Did you mean"),
        (["stop.duration_s=10"], "give exactly one of requests or duration_s"),
        (["hardware.memory.hbm.capacity_bytes=-80 GB"], "capacity_bytes"),
        (["hardware=groq-lpu"], "leave no KV space"),
    ],
)
def test_bad_scenarios_name_the_field(overrides, message):
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(base(), overrides)
    assert message in str(info.value)


def test_swap_needs_a_lower_tier():
    hw = {**TINY_HW, "memory": TINY_HW["memory"][:1]}
    with pytest.raises(ScenarioError, match="swap needs a memory tier below hbm"):
        scenario_from_dict(
            {
                **base(),
                "hardware": hw,
                "model": TINY_MODEL,
                "scheduler": {"preemption": "swap", "max_num_batched_tokens": 256},
            }
        )


def test_load_from_file_and_bad_yaml(tmp_path):
    good = tmp_path / "s.yaml"
    good.write_text(yaml.safe_dump(base()))
    assert load_scenario(good).stop.requests == 10
    bad = tmp_path / "bad.yaml"
    bad.write_text("hardware: [unclosed")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(bad)


def test_schema_is_valid_json_and_names_top_level_fields():
    schema = json.loads(json_schema())
    assert {"hardware", "model", "workload", "stop", "scheduler"} <= set(schema["properties"])


def test_relative_paths_resolve_from_the_scenario_folder(tmp_path, monkeypatch):
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "lengths.csv").write_text("tokens\n100\n200\n")
    data = base()
    data["workload"]["prompt_tokens"] = {"kind": "empirical", "path": "lengths.csv", "column": "tokens"}
    (folder / "s.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.chdir(tmp_path)
    sc = load_scenario(folder / "s.yaml")
    assert sc.workload.classes[0].prompt_tokens.path == folder / "lengths.csv"
