import csv

import pytest
from pydantic import ValidationError

import hardware
from hardware import Accelerator, UnknownNameError, hardware_names, load_hardware
from tests.conftest import SHARED

REQUIRED = [
    "a100-80g-sxm",
    "h100-sxm",
    "h200",
    "b200",
    "mi300x",
    "mi325x",
    "tpu-v5e",
    "tpu-v5p",
    "tpu-v6e",
    "groq-lpu",
    "gaudi3",
    "trainium2",
]


def test_required_presets_present():
    assert set(REQUIRED) <= set(hardware_names())


@pytest.mark.parametrize("name", hardware_names())
def test_every_preset_loads_and_cites_sources(name):
    a = load_hardware(name)
    assert a.peak_flops.source and a.main_tier.source and a.efficiency.source
    assert a.main_tier.capacity_bytes > 0 and a.main_tier.bandwidth_bytes_per_s > 0


SPLIT_PORTS = ("gaudi3", "groq-lpu")
"""Devices whose chip-to-chip ports serve both networks: the table gives all ports, the preset splits
them between the peers of the scale-up domain and the scale-out network."""


@pytest.mark.skipif(
    not (SHARED / "reference/hardware.csv").exists(), reason="reference table not beside the project"
)
def test_presets_match_reference_table():
    rows = {r["device_id"]: r for r in csv.DictReader((SHARED / "reference/hardware.csv").open())}
    pairs = {
        "h100-sxm": "nvidia_h100_sxm",
        "b200": "nvidia_b200",
        "mi300x": "amd_mi300x",
        "tpu-v5e": "google_tpu_v5e",
        "groq-lpu": "groq_lpu_v1",
        "gaudi3": "intel_gaudi3",
    }
    for name, did in pairs.items():
        a, r = load_hardware(name), rows[did]
        assert a.peak_flops.bf16 == pytest.approx(float(r["bf16_fp16_dense_tflops"]) * 1e12)
        assert a.main_tier.bandwidth_bytes_per_s == pytest.approx(float(r["mem_bw_tbps"]) * 1e12)
        if r["scaleup_gbps_per_direction"]:
            links = a.scale_up.bandwidth_bytes_per_s
            if name in SPLIT_PORTS:
                links += a.scale_out.bandwidth_bytes_per_s
            assert links == pytest.approx(float(r["scaleup_gbps_per_direction"]) * 1e9)


def test_lpu_holds_weights_in_sram():
    lpu = load_hardware("groq-lpu")
    assert lpu.kind == "lpu" and lpu.main_tier.name == "sram"
    assert lpu.main_tier.capacity_bytes == pytest.approx(0.23e9)


def test_unknown_name_lists_close_matches():
    with pytest.raises(UnknownNameError, match=r"Did you mean: .*h100-sxm"):
        load_hardware("h100-sxn")


def _spec(**memory):
    tier = {"name": "hbm", "capacity_bytes": "80 GB", "bandwidth_bytes_per_s": "3 TB/s", **memory}
    return {"name": "x", "peak_flops": {"bf16": "100 TFLOPS"}, "memory": [tier]}


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("capacity_bytes", "-80 GB", "capacity_bytes"),
        ("capacity_bytes", 0, "capacity_bytes"),
        ("bandwidth_bytes_per_s", "0 TB/s", "bandwidth_bytes_per_s"),
        ("bandwidth_bytes_per_s", "3 TB per s", "bandwidth_bytes_per_s"),
    ],
)
def test_bad_memory_fields_name_the_field(field, value, match):
    with pytest.raises(ValidationError, match=match):
        Accelerator.model_validate(_spec(**{field: value}))


def test_user_file_with_same_schema(tmp_path):
    path = tmp_path / "mychip.yaml"
    path.write_text(
        "name: mychip\npeak_flops: {bf16: 2 PFLOPS}\nmemory:\n"
        "  - {name: hbm, capacity_bytes: 1 TB, bandwidth_bytes_per_s: 20 TB/s}\n"
    )
    chip = load_hardware(path)
    assert chip.peak_flops.bf16 == 2e15 and chip.main_tier.capacity_bytes == 1e12


def test_unknown_key_rejected(tmp_path):
    bad = _spec()
    bad["hbm_size"] = 3
    with pytest.raises(ValidationError, match="hbm_size"):
        Accelerator.model_validate(bad)


def test_exported_names():
    assert sorted(hardware.__all__) == sorted(
        n
        for n in dir(hardware)
        if not n.startswith("_") and n not in {"base", "catalog", "spec", "stacks", "units", "yamltext"}
    )


def test_blackwell_ultra_and_a100_pcie_presets():
    """Per-GPU figures of the added presets, as their sources give them."""
    gb300, b300, a100 = (load_hardware(n) for n in ("gb300", "b300", "a100-80g-pcie"))
    assert (gb300.peak_flops.fp4, gb300.main_tier.capacity_bytes, gb300.main_tier.bandwidth_bytes_per_s) == (
        15e15, 279e9, 8e12)
    assert [t.name for t in gb300.offload_tiers] == ["lpddr"]
    assert (b300.peak_flops.bf16, b300.main_tier.capacity_bytes) == (2.25e15, 270e9)
    assert b300.peak_flops.int8 is None  # its sources disagree 30x
    sxm = load_hardware("a100-80g-sxm").peak_flops
    assert (a100.peak_flops.bf16, a100.peak_flops.int8) == (sxm.bf16, sxm.int8)
    assert (a100.main_tier.bandwidth_bytes_per_s, a100.power.tdp_w) == (1.935e12, 300.0)
