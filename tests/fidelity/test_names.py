"""Vendor spellings of models and GPUs: every alias has a spelling that reaches it, parts that are not
the preset stay unresolved with the nearest preset named, precisions split into weight and KV dtypes,
and ctxsim predicts at least 90% of the published rows about a catalog model on a catalog GPU."""

from pathlib import Path

import pytest

from sim.fidelity import names
from sim.fidelity.validate import (
    coverage,
    dtypes,
    load_device,
    read_measurements,
    resolve_model,
    skip_reasons,
    validate,
)
from tests.conftest import SHARED

MODELS = Path(__file__).resolve().parents[1] / "data" / "validation" / "models"

# (spelling as published, preset); every key of names.MODEL_ALIASES is reached by one of these
MODELS_SPELLED = [
    ("LLaMA 7B", "llama-2-7b"),
    ("Llama-2-7B-chat", "llama-2-7b"),
    ("LLaMA 70B", "llama-2-70b"),
    ("Llama-2-70b-chat-hf", "llama-2-70b"),
    ("Llama-2-70B-Chat", "llama-2-70b"),
    ("llama2-70b", "llama-2-70b"),
    ("LLaMA v3.1 8B", "llama-3.1-8b"),
    ("Meta-Llama-3.1-8B-Instruct", "llama-3.1-8b"),
    ("llama3.1-8b", "llama-3.1-8b"),
    ("LLaMA 3.1 70B", "llama-3.1-70b"),
    ("LLaMA v3.1 70B", "llama-3.1-70b"),
    ("Llama-3.1-70B-Instruct", "llama-3.1-70b"),
    ("LLaMA 3.1 405B", "llama-3.1-405b"),
    ("LLaMA v3.1 405B", "llama-3.1-405b"),
    ("llama3.1-405b", "llama-3.1-405b"),
    ("Llama-3-405B", "llama-3.1-405b"),
    ("Llama-3-8B-Instruct-Gradient-1048k", "llama-3.1-8b"),
    ("Mixtral 8x7B", "mixtral-8x7b"),
    ("Mixtral-8x7B-Instruct-v0.1", "mixtral-8x7b"),
    ("Mixtral 8x22B", "mixtral-8x22b"),
    ("Mixtral-8x22B-Instruct-v0.1", "mixtral-8x22b"),
    ("Mistral 7B", "mistral-7b"),
    ("GPT-J 6B", "gpt-j-6b"),
    ("Falcon 180B", "falcon-180b"),
    ("gpt-oss-20b", "gpt-oss-20b"),
    ("GPT-OSS-120B", "gpt-oss-120b"),
    ("DeepSeek-R1", "deepseek-v3"),
    ("DeepSeek-R1-NVFP4", "deepseek-v3"),
    ("DeepSeek-V3", "deepseek-v3"),
    ("Qwen3-30B-A3B", "qwen3-30b-a3b"),
    ("Qwen3-30B-A3B-Instruct-2507", "qwen3-30b-a3b"),
    ("Qwen3-235B-A22B", "qwen3-235b-a22b"),
    ("Qwen3-235B-A22B-FP8", "qwen3-235b-a22b"),
    ("DeepSeek-V3.1", "deepseek-v3"),
]
GPUS_SPELLED = [
    ("H100", "h100-sxm"),
    ("H100-80GB", "h100-sxm"),
    ("H100 80GB HBM3", "h100-sxm"),
    ("H100 80GB SXM5", "h100-sxm"),
    ("H100-SXM", "h100-sxm"),
    ("H100-SXM-80GB", "h100-sxm"),
    ("H100-SXM5-80GB", "h100-sxm"),
    ("H100-NVL", "h100-nvl"),
    ("H100 NVL 94GB", "h100-nvl"),
    ("H100 PCIe", "h100-pcie"),
    ("H100 (Grand Teton Training, 96GB HBM2e, 500W)", "h100-gtt"),
    ("H20", "h20"),
    ("H20 96GB", "h20"),
    ("H100-PCIe-80GB", "h100-pcie"),
    ("H200", "h200"),
    ("H200 141GB HBM3", "h200"),
    ("H200-SXM", "h200"),
    ("H200-SXM-141GB", "h200"),
    ("H200-NVL", "h200-nvl"),
    ("H200 NVL 141GB", "h200-nvl"),
    ("A100", "a100-80g-sxm"),
    ("A100-80GB", "a100-80g-sxm"),
    ("A100-SXM4-80GB", "a100-80g-sxm"),
    ("A100 SXM 80GB", "a100-80g-sxm"),
    ("L40S", "l40s"),
    ("B200", "b200"),
    ("B200-SXM-180GB", "b200"),
    ("GB200", "gb200"),
    ("GB300", "gb300"),
    ("B300", "b300"),
    ("A100 PCIe", "a100-80g-pcie"),
    ("A100 80GB PCIe", "a100-80g-pcie"),
    ("MI300X", "mi300x"),
    ("MI325X", "mi325x"),
    ("TPU v5e", "tpu-v5e"),
    ("TPU v5e-1", "tpu-v5e"),
    ("TPU v5e-8", "tpu-v5e"),
    ("TPU v6e", "tpu-v6e"),
    ("TPU v6e-1", "tpu-v6e"),
]


@pytest.mark.parametrize(("spelled", "preset"), MODELS_SPELLED)
def test_model_spelling_resolves(spelled, preset):
    assert names.model_preset(spelled) == preset


@pytest.mark.parametrize(("spelled", "preset"), GPUS_SPELLED)
def test_gpu_spelling_resolves(spelled, preset):
    assert names.gpu_preset(spelled) == preset


def test_every_alias_has_a_spelling_under_test():
    assert {names.model_key(s) for s, _ in MODELS_SPELLED} == set(names.MODEL_ALIASES)
    assert {names.gpu_key(s) for s, _ in GPUS_SPELLED} == set(names.GPU_ALIASES)


@pytest.mark.parametrize(
    ("spelled", "nearest"),
    [
        ("H100 80GB SXM5 (700W, clock fixed 1830 MHz)", "h100-sxm"),  # clock-locked: not the preset
        ("A800-SXM4-80GB", "a100-80g-sxm"),  # an A100 with a slower NVLink
        ("GH200 480GB", "h100-sxm"),
        ("A100 40GB PCIe", "a100-80g-pcie"),  # half the memory: not the preset
    ],
)
def test_other_parts_stay_unresolved_with_the_nearest_preset_named(spelled, nearest):
    assert names.gpu_preset(spelled) is None
    assert names.nearest_gpu(spelled) == nearest


def test_llama_3_8b_is_not_llama_3_1_8b():
    # same shapes, but an 8,192-token context against 131,072
    assert names.model_preset("Llama-3-8B") is None
    assert names.nearest_model("Llama-3-8B") == "llama-3.1-8b"


def test_a_stretched_context_checkpoint_keeps_its_own_context():
    assert resolve_model("Llama-3-8B-Instruct-Gradient-1048k", "bf16", None).max_context_tokens == 1_048_576
    assert resolve_model("Llama-3.1-8B", "bf16", None).max_context_tokens == 131_072
    # the Context Parallelism paper's name for the model it ran to 1,000,000-token prefills
    assert resolve_model("Llama-3-405B", "fp8", None).max_context_tokens == 1_000_000
    assert resolve_model("Llama-3.1-405B", "fp8", None).max_context_tokens == 131_072
    # SGLang's pipeline-parallelism blog overwrote the FP8 checkpoint's context to 1M for its runs
    assert resolve_model("Qwen3-235B-A22B-FP8", "fp8", None).max_context_tokens == 1_048_576
    assert resolve_model("Qwen3-235B-A22B", "fp8", None).max_context_tokens == 40_960


def test_a_part_outside_the_catalog_loads_from_the_validation_devices():
    gtt, sxm = load_device("h100-gtt"), load_device("h100-sxm")
    assert gtt.name == "h100-gtt" and sxm.name == "h100-sxm"
    # the paper's 500 W part: BF16 peak 800 TF/s and 96 GB at 2.4 TB/s, against the SXM's 989 and 80 at 3.35
    assert gtt.peak_flops.bf16 == pytest.approx(800e12) and sxm.peak_flops.bf16 == pytest.approx(989e12)
    hbm = gtt.main_tier
    assert (hbm.capacity_bytes, hbm.bandwidth_bytes_per_s) == pytest.approx((96e9, 2.4e12))
    assert gtt.scale_up.domain_devices == 8


def test_the_h20_is_a_validation_part_with_a_sixth_of_the_h100s_compute_and_more_bandwidth():
    h20, sxm = load_device("h20"), load_device("h100-sxm")
    assert h20.name == "h20"
    assert h20.peak_flops.bf16 == pytest.approx(148e12) and h20.peak_flops.fp8 == pytest.approx(296e12)
    assert h20.peak_flops.bf16 < sxm.peak_flops.bf16 / 6
    hbm = h20.main_tier
    assert (hbm.capacity_bytes, hbm.bandwidth_bytes_per_s) == pytest.approx((96e9, 4.0e12))
    assert hbm.bandwidth_bytes_per_s > sxm.main_tier.bandwidth_bytes_per_s
    assert names.gpu_preset("H20 (141GB)") is None


@pytest.mark.parametrize(
    ("precision", "weight_kv"),
    [
        ("FP8", ("fp8", "fp8")),
        ("FP16", ("bf16", "bf16")),
        ("BF16 (default dtype; not stated)", ("bf16", "bf16")),
        ("FP4 weights, FP8 KV", ("fp4", "fp8")),
        ("NVFP4 weights, FP8 attention / FP8 KV cache", ("fp4", "fp8")),
        ("FP4 (calibration.md: FP4 where the accelerator supports it)", ("fp4", "fp8")),
        ("int8 weights+KV", ("int8", "int8")),
        ("KV cache FP8 (weights default)", ("bf16", "fp8")),
        ("KV cache BF16 (weights default)", ("bf16", "bf16")),
        ("see calibration.md (harness --dtype float16)", ("bf16", "bf16")),
    ],
)
def test_precision_splits_into_weight_and_kv_dtypes(precision, weight_kv):
    assert dtypes(precision) == weight_kv


PUBLISHED = SHARED / "validation" / "published_measurements.csv"


@pytest.mark.skipif(not PUBLISHED.exists(), reason="needs shared/validation")
def test_most_published_rows_about_a_catalog_model_on_a_catalog_gpu_are_predicted():
    rows = read_measurements(PUBLISHED)
    mine = rows[[names.in_catalog(m, g) for m, g in zip(rows["model"], rows["gpu"], strict=True)]]
    results = validate(mine, MODELS)
    predicted, given = coverage(results)
    assert given > 250
    assert predicted / given >= 0.9, skip_reasons(results).to_string()
