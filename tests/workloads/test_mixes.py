import numpy as np
import pytest
from pydantic import ValidationError

from workloads.mixes import PRESETS, UnknownPreset, preset, preset_names
from workloads.spec import RequestClass, Workload, generate

# The context ranges each preset must cover (tokens), from the task list it implements.
RANGES = {"chat": (4_000, 16_000), "role-play": (16_000, 200_000), "document-analysis": (128_000, 400_000),
          "codebase": (200_000, 1_000_000), "multi-document": (1_000_000, 10_000_000)}


def test_every_task_has_a_preset():
    assert preset_names() == sorted(RANGES)


@pytest.mark.parametrize("name", sorted(RANGES))
def test_preset_prompts_fall_in_the_task_range(name):
    low, high = RANGES[name]
    reqs = generate(Workload(preset=name), np.random.default_rng(0), requests=2000)
    assert reqs.class_names == (name,)
    assert reqs.prompt_tokens.min() >= low and reqs.prompt_tokens.max() <= high
    median = np.median(reqs.prompt_tokens)
    assert low < median < high
    assert reqs.output_tokens.min() >= 1


def test_presets_reweight_and_keep_their_own_slo():
    w = Workload.model_validate({
        "arrivals": {"kind": "poisson", "rate_per_s": 2},
        "classes": [{"preset": "chat", "weight": 0.7},
                    {"preset": "document-analysis", "weight": 0.3, "slo": {"ttft_s": "30 s"}},
                    {"preset": "chat", "name": "chat-short", "weight": 0.5,
                     "prompt_tokens": {"kind": "fixed", "tokens": 100}}]})
    assert [c.name for c in w.classes] == ["chat", "document-analysis", "chat-short"]
    assert w.classes[1].slo.ttft_s == 30.0 and w.classes[0].slo is None
    reqs = generate(w, np.random.default_rng(1), requests=15_000)
    share = np.bincount(reqs.cls) / len(reqs)
    assert share == pytest.approx([0.7 / 1.5, 0.3 / 1.5, 0.5 / 1.5], abs=0.02)
    assert np.all(reqs.prompt_tokens[reqs.cls == 2] == 100)
    assert np.all(reqs.prompt_tokens[reqs.cls == 1] >= 128_000)


def test_preset_fields_merge_nested_mappings():
    c = RequestClass(preset="role-play", session={"turn_gap_s": 5})
    assert c.session.turn_gap_s == 5.0
    assert c.session.max_context_tokens == PRESETS["role-play"].fields["session"]["max_context_tokens"]


def test_unknown_preset_suggests_close_matches():
    with pytest.raises(UnknownPreset, match="did you mean chat"):
        preset("chta")
    typo = "unknown preset 'document-analisys'; did you mean document-analysis"
    with pytest.raises(ValidationError, match=typo):
        Workload.model_validate({"classes": [{"preset": "document-analisys"}]})
    with pytest.raises(ValidationError, match="presets are chat, codebase"):
        Workload(preset="zzz")
