import json

import pytest

import workloads
from tests.conftest import SHARED
from workloads import load_model, model_names

REQUIRED = [
    "llama-3.1-8b",
    "llama-3.1-70b",
    "llama-3.1-405b",
    "llama-4-scout",
    "qwen3-235b-a22b",
    "mixtral-8x7b",
    "deepseek-v3",
    "gemma-3-27b",
    "jamba-v0.1",
    "mamba2-2.7b",
]

# Hand-computed: 2 (K,V) x kv_heads x head_dim x 2 bytes x unbounded layers; MLA (512 + 64) x 2 x 61.
KV_BF16 = {
    "llama-3.1-8b": 2 * 8 * 128 * 2 * 32,  # 131,072
    "llama-3.1-70b": 2 * 8 * 128 * 2 * 80,  # 327,680
    "llama-3.1-405b": 2 * 8 * 128 * 2 * 126,
    "deepseek-v3": (512 + 64) * 2 * 61,  # 70,272
    "llama-4-scout": 2 * 8 * 128 * 2 * 12,  # 12 global NoPE layers; 36 chunked layers bounded
    "gemma-3-27b": 2 * 16 * 128 * 2 * 10,  # 10 global of 62; 52 local layers bounded by 1024
    "jamba-v0.1": 2 * 8 * 128 * 2 * 4,  # 4 attention layers; 28 Mamba layers hold a state
    "mamba2-2.7b": 0,
    "qwen3-235b-a22b": 2 * 4 * 128 * 2 * 94,
    "mixtral-8x7b": 2 * 8 * 128 * 2 * 32,
    "llama-3.3-70b": 2 * 8 * 128 * 2 * 80,  # 327,680
    "llama-2-70b": 2 * 8 * 128 * 2 * 80,
    "gpt-oss-120b": 2 * 8 * 64 * 2 * 18,  # 18 full layers; 18 sliding layers bounded by 128
    "gpt-oss-20b": 2 * 8 * 64 * 2 * 12,
    "qwen3-next-80b-a3b": 2 * 2 * 256 * 2 * 12,  # 12 full layers; 36 gated-DeltaNet layers hold a state
}


def test_required_presets_present():
    assert set(REQUIRED) <= set(model_names())


@pytest.mark.parametrize(("name", "expected"), KV_BF16.items())
def test_kv_bytes_per_token(name, expected):
    m = load_model(name)
    assert m.kv_bytes_per_token == expected
    assert m.with_dtypes(kv_dtype="fp8").kv_bytes_per_token == expected / 2


def test_headline_values():
    assert load_model("llama-3.1-8b").kv_bytes_per_token == 131_072
    assert load_model("llama-3.1-70b").kv_bytes_per_token == 327_680
    assert load_model("deepseek-v3").kv_bytes_per_token == 70_272


def test_windowed_layers_bounded_by_window():
    scout = load_model("llama-4-scout")
    # 12 x 4096 x T + 36 x 4096 x min(T, 8192) (models.csv kv_formula)
    for t in (100, 8192, 1_000_000):
        assert scout.kv_bytes(t) == 12 * 4096 * t + 36 * 4096 * min(t, 8192)
    gemma = load_model("gemma-3-27b")
    assert gemma.kv_bytes(10**6) - gemma.kv_bytes(10**6 - 1) == 10 * 8192


def test_ssm_state_constant_in_context():
    mamba = load_model("mamba2-2.7b")
    # 64 layers x (80 heads x 64 x 128 ssm + 5376 x 4 conv) x 2 B (models.csv, derived from the config)
    assert mamba.state_bytes_per_sequence == 86_638_592
    assert mamba.kv_bytes(10) == mamba.kv_bytes(10_000_000)
    jamba = load_model("jamba-v0.1")
    assert jamba.state_bytes_per_sequence == 28 * 8192 * (16 + 4) * 2  # 9,175,040


@pytest.mark.parametrize("name", model_names())
def test_parameter_count_matches_published(name):
    """Parameters derived from the architecture agree with the published size within 3%."""
    m = load_model(name)
    assert m.params() == pytest.approx(m.params_total, rel=0.03)


def test_layer_patterns():
    ds = load_model("deepseek-v3")
    assert {(g.ffn, g.count) for g in ds.layer_groups()} == {("dense", 3), ("moe", 58)}
    jamba = load_model("jamba-v0.1")
    assert sum(g.count for g in jamba.layer_groups() if g.mixer == "attention") == 4
    assert sum(g.count for g in jamba.layer_groups() if g.ffn == "moe") == 16


HF = SHARED / "reference/model-configs"


@pytest.mark.skipif(not HF.exists(), reason="reference configs not beside the project")
@pytest.mark.parametrize(
    ("file", "preset"),
    [
        ("hf-format-copies/meta-llama_Meta-Llama-3.1-8B-Instruct.config.json", "llama-3.1-8b"),
        ("hf-format-copies/meta-llama_Meta-Llama-3.1-70B-Instruct.config.json", "llama-3.1-70b"),
        ("hf-format-copies/mistralai_Mixtral-8x7B-Instruct-v0.1.config.json", "mixtral-8x7b"),
        ("deepseek-ai_DeepSeek-V3_inference_configs_config_671B.json", "deepseek-v3"),
    ],
)
def test_hf_config_matches_preset(file, preset):
    from_file, expected = load_model(HF / file), load_model(preset)
    assert from_file.kv_bytes_per_token == expected.kv_bytes_per_token
    assert from_file.params() == pytest.approx(expected.params(), rel=1e-9)


def test_hf_config_shipped_sample(tmp_path):
    config = {
        "model_type": "gemma3_text",
        "hidden_size": 5376,
        "num_hidden_layers": 62,
        "num_attention_heads": 32,
        "num_key_value_heads": 16,
        "head_dim": 128,
        "intermediate_size": 21504,
        "vocab_size": 262208,
        "sliding_window": 1024,
        "sliding_window_pattern": 6,
        "max_position_embeddings": 131072,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    assert load_model(path).kv_bytes_per_token == load_model("gemma-3-27b").kv_bytes_per_token


def test_heads_must_divide():
    with pytest.raises(ValueError, match="num_kv_heads"):
        workloads.ModelArch(
            name="x",
            num_layers=2,
            hidden_size=64,
            num_heads=6,
            num_kv_heads=4,
            head_dim=16,
            intermediate_size=64,
            vocab_size=10,
        )


def test_unknown_model_lists_close_matches():
    with pytest.raises(ValueError, match=r"Did you mean: .*llama-3.1-70b"):
        load_model("llama-3-70b")


def test_hf_config_names_the_missing_key(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"hidden_size": 64, "vocab_size": 10}))
    with pytest.raises(ValueError, match="config has no num_hidden_layers"):
        load_model(path)


def test_expert_dtype_weighs_routed_experts_apart():
    """gpt-oss style: routed experts in MXFP4 (4.25 bits), everything else bf16."""
    m = workloads.ModelArch(
        name="moe", num_layers=2, hidden_size=64, num_heads=4, num_kv_heads=4, head_dim=16,
        vocab_size=10, moe={"experts": 4, "active": 2, "expert_ffn": 32}, expert_dtype="mxfp4",
    )
    experts = 2 * 4 * 3 * 64 * 32  # layers x experts x 3 matrices x hidden x expert FFN
    assert m.routed_expert_params() == experts
    assert m.weight_bytes() == (m.params() - experts) * 2 + experts * 4.25 / 8
    assert m.with_dtypes(weight_dtype="fp8").weight_bytes() == (m.params() - experts) * 1 + experts * 4.25 / 8


def test_dsa_cache_holds_latent_and_index_key():
    """DeepSeek-V3.2-Exp: per layer the MLA latent (512 + 64) x 2 B and the index key, 128 fp8 bytes
    and one fp32 scale: 61 x (1152 + 132) = 78,324 B a token (bf16 latent); fp8 halves the latent only."""
    m = load_model("deepseek-v3.2-exp")
    assert m.kv_bytes_per_token == 61 * (576 * 2 + 132)
    assert m.with_dtypes(kv_dtype="fp8").kv_bytes_per_token == 61 * (576 + 132)


def test_linear_attention_state_is_constant():
    """Qwen3-Next: 36 gated-DeltaNet layers, each 32 value heads x 128 x 128 fp32 state and a
    3-token bf16 convolution over 2 x 16 x 128 + 32 x 128 channels."""
    m = load_model("qwen3-next-80b-a3b")
    assert m.state_bytes_per_sequence == 36 * (32 * 128 * 128 * 4 + (2 * 16 * 128 + 32 * 128) * 3 * 2)
    assert m.kv_bytes(10_000_000) - m.kv_bytes(10_000_000 - 1) == 12 * 2 * 2 * 256 * 2


def test_gpt_oss_context_is_yarn_over_4096():
    m = load_model("gpt-oss-120b")
    assert m.max_context_tokens == 4096 and m.context_limit_tokens == 131_072
    experts = 36 * 128 * 3 * 2880 * 2880
    assert m.weight_bytes() == pytest.approx((m.params() - experts) * 2 + experts * 4.25 / 8, rel=1e-12)


@pytest.mark.parametrize(
    ("name", "kv_bytes_per_token", "state_bytes"),
    [
        ("kimi-k2", 61 * (512 + 64) * 2, 0),  # MLA latent + rope key, 61 layers
        ("glm-4.5", 92 * 2 * 8 * 128 * 2, 0),  # 376,832
        # 10 softmax-attention layers; 70 lightning layers of 64 fp32 states of 128 x 128
        ("minimax-m1", 10 * 2 * 8 * 128 * 2, 70 * 64 * 128 * 128 * 4),
        ("qwen2.5-7b-1m", 28 * 2 * 4 * 128 * 2, 0),  # 57,344
    ],
)
def test_new_presets_cache_bytes_by_hand(name, kv_bytes_per_token, state_bytes):
    m = load_model(name)
    assert m.kv_bytes_per_token == kv_bytes_per_token
    assert m.state_bytes_per_sequence == state_bytes
    assert m.params() == pytest.approx(m.params_total, rel=0.03)


def test_new_presets_layer_patterns():
    minimax = load_model("minimax-m1")
    assert {(g.mixer, g.count) for g in minimax.layer_groups()} == {("attention", 10), ("linear", 70)}
    assert {(g.ffn, g.count) for g in load_model("glm-4.5").layer_groups()} == {("dense", 3), ("moe", 89)}
    assert {(g.ffn, g.count) for g in load_model("kimi-k2").layer_groups()} == {("dense", 1), ("moe", 60)}
    assert load_model("qwen2.5-7b-1m").context_limit_tokens == 1_010_000
