"""Task-mix presets: named request classes for the ways people use long context.

A scenario mixes them by weight and gives each its own SLO:

    classes:
      - {preset: chat, weight: 0.7}
      - {preset: document-analysis, weight: 0.3, slo: {ttft_s: 30s}}

Any field of a preset can be replaced in the scenario (nested mappings such as `session` are merged).

Where the numbers come from. The prompt (context) ranges are the ones the workloads issue gives for
each task: chat and short writing 4K-16K tokens, role-play and long conversations 16K-200K,
single-document analysis 128K-400K, code-base understanding 200K and up (capped here at 1M, the
largest context code models offer), multi-document and media synthesis 1M-10M; K = 1,000 and
M = 1,000,000. Each range [low, high] becomes a lognormal clipped to it, with its median at the
geometric middle sqrt(low * high) and sigma = ln(high / low) / 4, so the range spans ±2 sigma (about
95% of draws before clipping). Output lengths, turn counts and gaps are assumptions of this module,
not measurements: a few hundred tokens for chat answers (ShareGPT's mean answer is 439 tokens, see
the Vidur/Sarathi processed traces), longer answers for analysis, code and synthesis tasks.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

K, M = 1_000, 1_000_000


def span(low: int, high: int) -> dict:
    """A lognormal length distribution covering [low, high] tokens (see the module docstring)."""
    return {"kind": "lognormal", "median": round(math.sqrt(low * high)),
            "sigma": round(math.log(high / low) / 4, 4), "min": low, "max": high}


@dataclass(frozen=True)
class Preset:
    description: str
    fields: dict


PRESETS: dict[str, Preset] = {
    "chat": Preset(
        "Chat and short writing: 4K-16K-token prompts, answers of 64-2K tokens.",
        {"prompt_tokens": span(4 * K, 16 * K), "output_tokens": span(64, 2 * K)}),
    "role-play": Preset(
        "Role-play and long conversations: 2-40 turns over an opening context of 16K-128K tokens; "
        "contexts grow turn by turn up to 200K. prompt_tokens is each user message, output_tokens "
        "each answer.",
        {"prompt_tokens": span(32, 1 * K), "output_tokens": span(128, 1 * K),
         "session": {"turns": {"kind": "uniform", "low": 2, "high": 40}, "turn_gap_s": 60.0,
                     "history_tokens": span(16 * K, 128 * K), "max_context_tokens": 200 * K}}),
    "document-analysis": Preset(
        "Single-document analysis: a 128K-400K-token document and question, answers of 256-4K tokens.",
        {"prompt_tokens": span(128 * K, 400 * K), "output_tokens": span(256, 4 * K)}),
    "codebase": Preset(
        "Code-base understanding: 200K-1M-token repositories, answers (explanations, patches) of "
        "256-8K tokens.",
        {"prompt_tokens": span(200 * K, 1 * M), "output_tokens": span(256, 8 * K)}),
    "multi-document": Preset(
        "Multi-document and media synthesis: 1M-10M-token inputs, reports of 512-8K tokens.",
        {"prompt_tokens": span(1 * M, 10 * M), "output_tokens": span(512, 8 * K)}),
}


class UnknownPreset(ValueError):
    """A preset name that is not in the catalog; the message suggests close matches."""


def preset_names() -> list[str]:
    return sorted(PRESETS)


def preset(name: str) -> Preset:
    """The preset called `name`, or UnknownPreset naming the closest ones."""
    if name in PRESETS:
        return PRESETS[name]
    close = difflib.get_close_matches(name, PRESETS, n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise UnknownPreset(f"unknown preset {name!r}; {hint}presets are {', '.join(preset_names())}")


def with_preset(fields: dict) -> dict:
    """Class fields with the named preset's fields filled in; `fields` wins, mappings merge."""
    base = preset(fields["preset"]).fields
    return {"name": fields["preset"], **_merge(base, fields)}


def _merge(base: dict, patch: dict) -> dict:
    merged = dict(base)
    for key, value in patch.items():
        old = base.get(key)
        mergeable = isinstance(old, dict) and isinstance(value, dict) and \
            old.get("kind") == value.get("kind", old.get("kind"))
        merged[key] = _merge(old, value) if mergeable else value
    return merged
