"""Model presets (`workloads/catalog/*.yaml`), user YAML files, and Hugging Face `config.json` files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hardware.catalog import load_preset, preset_names
from workloads.model import ModelArch

CATALOG_DIR = Path(__file__).parent / "catalog"


def model_names() -> list[str]:
    return preset_names(CATALOG_DIR)


def load_model(name_or_path: str | Path) -> ModelArch:
    """A preset by name (`llama-3.1-8b`), a YAML file with the `ModelArch` schema, or a Hugging Face
    `config.json` (any file ending in .json)."""
    path = Path(name_or_path)
    if path.suffix == ".json":
        try:
            config = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: cannot read as JSON: {exc}") from exc
        return from_hf_config(config, name=path.stem.removesuffix(".config"))
    return load_preset(name_or_path, ModelArch, "model", CATALOG_DIR)


def _first(config: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        if config.get(key) is not None:
            return config[key]
    return default


def from_hf_config(config: dict[str, Any], name: str = "custom") -> ModelArch:
    """Build a `ModelArch` from a Hugging Face `config.json` (Llama, Mistral/Mixtral, Qwen2/3(-MoE),
    Gemma 2/3, DeepSeek-V2/V3, Llama 4 text configs) or DeepSeek's own inference config."""
    if "text_config" in config:
        config = {**config["text_config"], **{k: v for k, v in config.items() if k != "text_config"}}
    hidden = _first(config, "hidden_size", "dim", "d_model")
    heads = _first(config, "num_attention_heads", "n_heads")
    layers = _first(config, "num_hidden_layers", "n_layers", "n_layer")
    missing = [
        key for key, value in (("hidden_size", hidden), ("num_hidden_layers", layers)) if value is None
    ]
    if missing:
        raise ValueError(f"{name}: config has no {' or '.join(missing)}; not a decoder config")
    arch: dict[str, Any] = {
        "name": _first(config, "_name_or_path", default=name) or name,
        "num_layers": layers,
        "hidden_size": hidden,
        "num_heads": heads or 0,
        "num_kv_heads": _first(config, "num_key_value_heads", "n_kv_heads", default=heads) or 0,
        "head_dim": _first(config, "head_dim", default=(hidden // heads) if heads else 0),
        "intermediate_size": _first(
            config, "intermediate_size_mlp", "intermediate_size", "inter_dim", default=0
        ),
        "vocab_size": config["vocab_size"],
        "tie_embeddings": bool(config.get("tie_word_embeddings", False)),
        "source": f"Hugging Face config ({config.get('model_type', 'unknown type')})",
    }
    max_pos = _first(config, "max_position_embeddings")
    if max_pos:
        arch["max_context_tokens"] = max_pos

    kv_lora = config.get("kv_lora_rank")
    if kv_lora:
        arch["mla"] = {
            "kv_lora_rank": kv_lora,
            "qk_rope_head_dim": config["qk_rope_head_dim"],
            "qk_nope_head_dim": config["qk_nope_head_dim"],
            "v_head_dim": config["v_head_dim"],
            "q_lora_rank": config.get("q_lora_rank"),
        }
        arch["num_kv_heads"] = arch["num_heads"]
        arch["head_dim"] = config["v_head_dim"]

    experts = _first(config, "n_routed_experts", "num_local_experts", "num_experts")
    if experts:
        first_dense = _first(config, "first_k_dense_replace", "n_dense_layers", default=0)
        period = _first(
            config, "interleave_moe_layer_step", "moe_layer_freq", "expert_layer_period", default=1
        )
        offset = config.get("expert_layer_offset", period - 1 if "interleave_moe_layer_step" in config else 0)
        arch["moe"] = {
            "experts": experts,
            "active": _first(config, "num_experts_per_tok", "n_activated_experts"),
            "expert_ffn": _first(config, "moe_intermediate_size", "moe_inter_dim", "intermediate_size"),
            "shared_experts": _first(config, "n_shared_experts", default=0)
            or (1 if config.get("model_type") == "llama4_text" else 0),
            "first_dense": first_dense,
            "period": period,
            "offset": offset,
        }
        if first_dense == 0 and period == 1:
            arch["intermediate_size"] = 0

    window = _first(config, "sliding_window", "attention_chunk_size")
    if window and (not max_pos or window < max_pos):
        pattern = _first(config, "sliding_window_pattern", "no_rope_layer_interval")
        if pattern is None and config.get("model_type") == "gemma2":
            pattern = 2
        if pattern:
            arch["window"] = {
                "size": window,
                "kind": "chunked" if "attention_chunk_size" in config else "sliding",
                "global_every": pattern,
                "global_offset": pattern - 1,
            }
    try:
        return ModelArch.model_validate(arch)
    except ValidationError as exc:
        raise ValueError(f"{name}: {exc}") from exc
