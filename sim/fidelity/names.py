"""Model and GPU names as vendors write them, resolved to ctxsim presets.

Measurement tables spell one part many ways: "H200 141GB HBM3", "H200-SXM-141GB", "H200"; "LLaMA v3.1
70B", "Llama-3.1-70B-Instruct", "llama3.1-70b". A name is reduced to a key (lower case, letters and
digits only; for models the words "meta", "instruct", "chat" and "hf" are dropped, since an
instruction-tuned or chat fine-tune has its base model's architecture) and looked up in an explicit
table. Nothing is matched loosely: a key maps to a preset only when it names the same part or the
same architecture, so a power-capped or clock-locked H100, an A800 (an A100 with a slower NVLink) or a
GH200 (an H100 die with 96-144 GB and a Grace CPU) stay unresolved, and the skip report names the
nearest preset (`nearest_gpu`, `nearest_model`) for a person to judge.

Decisions a reader should know:
- A bare "H100", "H100 80GB" or "H100 80GB HBM3" is the SXM part: 80 GB of HBM3 is the SXM5
  board (the PCIe card has HBM2e, the NVL 94 GB), and the benchmark tables these names come from
  (TensorRT-LLM's perf overview, the SGLang and vLLM H100 runs) are on SXM (HGX/DGX) machines. "H100
  PCIe" and "H100 NVL" are their own presets. Likewise a bare "A100" or "A100 80GB" is the SXM4 80 GB.
- "TPU v5e-8" is a slice of eight v5e chips: the chip is the preset, the count is the row's num_gpus.
- DeepSeek-R1 has DeepSeek-V3's architecture (it is trained from DeepSeek-V3-Base), so it resolves to
  the deepseek-v3 preset; an NVFP4 checkpoint is the same model at another precision (the row's
  precision column says which).
- Meta released its 405B model only as Llama 3.1, so "Llama3 405B" is llama-3.1-405b.
- Llama-3-8B itself is not resolved: its 8,192-token context differs from llama-3.1-8b's 131,072.
  Gradient's Llama-3-8B-Instruct-Gradient-1048k has the same shapes with its context stretched to
  the 1,048,576 tokens its name gives, and resolves to llama-3.1-8b with that context
  (`CONTEXT_OVERRIDES`); Qwen3-30B-A3B-Instruct-2507 is qwen3-30b-a3b with the 262,144-token native
  context of its model card (huggingface.co/Qwen/Qwen3-30B-A3B-Instruct-2507).
- "Llama3 405B" is the name the Context Parallelism paper (arXiv 2411.01783v3) gives the model it ran
  to 1,000,000-token prefills (Section 4.2.3; Appendix A takes T = 1M as 10^6), past the 128K window it
  says the model supports (Section 4.2.1): that name resolves with a 1,000,000-token context.
- The H100s of that paper's Grand Teton Training hosts are power-limited to 500 W with 96 GB of
  HBM2e at 2.4 TB/s (Section 4.1, Appendix A): not the SXM preset, but the `h100-gtt` part of
  `hardware/validation/`.
- DeepSeek-V3.1 keeps DeepSeek-V3's architecture (a post-trained checkpoint of it). Qwen3-235B-A22B-FP8
  is qwen3-235b-a22b with FP8 weights; SGLang's pipeline-parallelism blog (lmsys.org, 2026-01-15)
  overwrote its context to "1 million" tokens for its runs, so that name resolves with 1,048,576.
- A bare "H20" is the 96 GB HBM3 part, the `h20` part of `hardware/validation/` (NVIDIA sells it only
  in China and publishes no datasheet page); the 141 GB HBM3e H20 has no part yet and stays unresolved.
"""

from __future__ import annotations

import difflib
import re

from hardware.catalog import hardware_names
from workloads.catalog import model_names

MODEL_DROP_WORDS = frozenset({"meta", "instruct", "chat", "hf"})

# model key -> ctxsim model name (a catalog preset, or `<name>.yaml|.json` in a models folder).
# "LLaMA 7B/70B" in TensorRT-LLM v0.9 are Llama-2 per that document's methodology.
MODEL_ALIASES = {
    "llama7b": "llama-2-7b",
    "llama27b": "llama-2-7b",
    "llama70b": "llama-2-70b",
    "llama270b": "llama-2-70b",
    "llamav318b": "llama-3.1-8b",
    "llama318b": "llama-3.1-8b",
    "llama3170b": "llama-3.1-70b",
    "llamav3170b": "llama-3.1-70b",
    "llama31405b": "llama-3.1-405b",
    "llamav31405b": "llama-3.1-405b",
    "llama3405b": "llama-3.1-405b",
    "llama38bgradient1048k": "llama-3.1-8b",
    "mixtral8x7b": "mixtral-8x7b",
    "mixtral8x7bv01": "mixtral-8x7b",
    "mixtral8x22b": "mixtral-8x22b",
    "mixtral8x22bv01": "mixtral-8x22b",
    "mistral7b": "mistral-7b",
    "gptj6b": "gpt-j-6b",
    "falcon180b": "falcon-180b",
    "deepseekr1": "deepseek-v3",
    "deepseekr1nvfp4": "deepseek-v3",
    "deepseekv3": "deepseek-v3",
    "qwen330ba3b": "qwen3-30b-a3b",
    "qwen330ba3b2507": "qwen3-30b-a3b",
    "qwen3235ba22b": "qwen3-235b-a22b",
    "qwen3235ba22bfp8": "qwen3-235b-a22b",
    "deepseekv31": "deepseek-v3",
    "gptoss20b": "gpt-oss-20b",
    "gptoss120b": "gpt-oss-120b",
}
# model key -> the context (tokens) of that checkpoint where it differs from its preset's.
CONTEXT_OVERRIDES = {
    "llama38bgradient1048k": 1_048_576,
    "qwen330ba3b2507": 262_144,
    "llama3405b": 1_000_000,
    "qwen3235ba22bfp8": 1_048_576,
}
# GPU key -> hardware preset.
GPU_ALIASES = {
    "h100": "h100-sxm",
    "h10080gb": "h100-sxm",
    "h10080gbhbm3": "h100-sxm",
    "h10080gbsxm5": "h100-sxm",
    "h100sxm": "h100-sxm",
    "h100sxm80gb": "h100-sxm",
    "h100sxm580gb": "h100-sxm",
    "h100nvl": "h100-nvl",
    "h100nvl94gb": "h100-nvl",
    "h100pcie": "h100-pcie",
    "h100grandtetontraining96gbhbm2e500w": "h100-gtt",
    "h100pcie80gb": "h100-pcie",
    "h200": "h200",
    "h200141gbhbm3": "h200",
    "h200sxm": "h200",
    "h200sxm141gb": "h200",
    "h200nvl": "h200-nvl",
    "h200nvl141gb": "h200-nvl",
    "a100": "a100-80g-sxm",
    "a10080gb": "a100-80g-sxm",
    "a100sxm480gb": "a100-80g-sxm",
    "a100sxm80gb": "a100-80g-sxm",
    "l40s": "l40s",
    "b200": "b200",
    "b200sxm180gb": "b200",
    "gb200": "gb200",
    "gb300": "gb300",
    "b300": "b300",
    "a100pcie": "a100-80g-pcie",
    "a10080gbpcie": "a100-80g-pcie",
    "mi300x": "mi300x",
    "mi325x": "mi325x",
    "tpuv5e": "tpu-v5e",
    "tpuv5e1": "tpu-v5e",
    "tpuv5e8": "tpu-v5e",
    "tpuv6e": "tpu-v6e",
    "tpuv6e1": "tpu-v6e",
    "h20": "h20",
    "h2096gb": "h20",
}


def gpu_key(name: str) -> str:
    """`name` lower-cased with everything but letters and digits removed."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def model_key(name: str) -> str:
    """Like `gpu_key`, less the words that name a fine-tune or a publisher rather than an architecture."""
    words = re.split(r"[^a-z0-9]+", str(name).lower())
    return "".join(w for w in words if w not in MODEL_DROP_WORDS)


def gpu_preset(name: str) -> str | None:
    """The hardware preset a published GPU name stands for, or None if there is none."""
    return GPU_ALIASES.get(gpu_key(name))


def model_preset(name: str) -> str | None:
    """The ctxsim model name a published model name stands for, or None if there is none."""
    return MODEL_ALIASES.get(model_key(name))


def context_override(name: str) -> int | None:
    """The context (tokens) of the published checkpoint where it differs from its preset's."""
    return CONTEXT_OVERRIDES.get(model_key(name))


def _nearest(key: str, aliases: dict[str, str], presets: list[str]) -> str:
    """The preset whose own name or any alias key is most like `key` (difflib's ratio)."""
    candidates = {**{re.sub(r"[^a-z0-9]", "", p): p for p in presets}, **aliases}
    best = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.0)
    return candidates[best[0]] if best else ""


def nearest_gpu(name: str) -> str:
    """The hardware preset most like an unresolved GPU name, for a person to judge."""
    return _nearest(gpu_key(name), GPU_ALIASES, hardware_names())


def nearest_model(name: str) -> str:
    """The model preset (or aliased validation model) most like an unresolved model name."""
    return _nearest(model_key(name), MODEL_ALIASES, model_names())


def in_catalog(model: str, gpu: str) -> bool:
    """Whether a published model and GPU name resolve to presets of ctxsim's own catalogs (models
    read from a validation models folder do not count)."""
    return model_preset(model) in model_names() and gpu_preset(gpu) in hardware_names()
