"""A model's context limit: its trained context, extended by RoPE scaling, enforced by `run` and
`estimate`, with truncation only when the scenario asks for it."""

import numpy as np
import pytest

from hardware import load_hardware
from sim.api import run
from sim.cost.estimate import estimate
from sim.cost.parallelism import Parallelism
from sim.scenario import ScenarioError, scenario_from_dict
from workloads import Requests, RopeScaling, load_model


def test_limit_is_trained_context_times_rope_factor():
    m = load_model("llama-3.1-70b")
    assert m.context_limit_tokens == 131_072
    assert m.model_copy(update={"rope_scaling": RopeScaling(factor=4)}).context_limit_tokens == 524_288
    # Qwen's documented YaRN: factor 4 over the native 32,768 (the shipped config says 40,960)
    qwen = load_model("qwen3-8b").model_copy(
        update={"rope_scaling": RopeScaling(kind="yarn", factor=4, original_context_tokens=32_768)}
    )
    assert qwen.context_limit_tokens == 131_072
    # an extension below the shipped context does not shrink it
    short = load_model("qwen3-8b").model_copy(
        update={"rope_scaling": RopeScaling(factor=1.1, original_context_tokens=8192)}
    )
    assert short.context_limit_tokens == 40_960


def _long_context(rope: dict | None) -> dict:
    model = {"preset": "llama-3.1-70b", **({"rope_scaling": rope} if rope else {})}
    return {
        "hardware": "h200",
        "model": model,
        "parallelism": {"tp": 8},
        "workload": {
            "arrivals": {"kind": "poisson", "rate_per_s": 0.01},
            "prompt_tokens": {"kind": "empirical", "values": [100_000, 500_000]},
            "output_tokens": {"kind": "fixed", "tokens": 100},
        },
        "stop": {"requests": 6},
    }


def test_500k_prompt_on_a_131k_model_is_rejected_as_context_limit():
    result = run(scenario_from_dict(_long_context(None)))
    df = result.requests
    long = df["prompt_tokens"] == 500_000
    assert long.any() and (~long).any()
    assert (df.loc[long, "rejected_reason"] == "context_limit").all()
    assert df.loc[~long, "finish_s"].notna().all()


def test_500k_prompt_accepted_with_rope_scaling_factor_4():
    result = run(scenario_from_dict(_long_context({"kind": "yarn", "factor": 4})))
    assert result.requests["rejected_reason"].isna().all()
    assert result.requests["finish_s"].notna().all()


def test_truncation_only_when_the_scenario_says_so():
    data = _long_context(None)
    data["scheduler"] = {"context_overflow": "truncate"}
    df = run(scenario_from_dict(data)).requests
    assert df["rejected_reason"].isna().all()
    assert df["prompt_tokens"].max() == 131_072 - 100


def test_scenario_whose_every_request_is_too_long_is_refused_unless_truncated():
    data = _long_context(None)
    data["workload"]["prompt_tokens"] = {"kind": "fixed", "tokens": 500_000}
    with pytest.raises(ScenarioError, match="max context of 131,072"):
        scenario_from_dict(data)
    data["scheduler"] = {"context_overflow": "truncate"}
    scenario_from_dict(data)


def test_truncated_to_keeps_first_tokens_and_their_prefix_blocks():
    hashes = (np.arange(4), np.arange(10, 13))
    reqs = Requests(np.array([0.0, 1.0]), np.array([1000, 500]), np.array([100, 100]), np.zeros(2, np.int32),
                    block_hashes=hashes, block_tokens=256)
    cut = reqs.truncated_to(700)
    assert cut.prompt_tokens.tolist() == [600, 500]
    assert cut.block_hashes[0].tolist() == [0, 1, 2]  # ceil(600 / 256) blocks of the first 1000 tokens
    assert cut.block_hashes[1].tolist() == [10, 11, 12]
    assert cut.meta["truncated_tokens"] == 400
    # an output that alone reaches the limit leaves the prompt for the engine to reject
    assert reqs.truncated_to(100).prompt_tokens.tolist() == [1000, 500]


def test_estimate_refuses_beyond_the_limit_and_accepts_with_rope_scaling():
    m, hw, par = load_model("llama-3.1-70b"), load_hardware("h200"), Parallelism(8)
    e = estimate(m, hw, par, 500_000, 100)
    assert not e.fits and e.reason.startswith("context_limit")
    assert e.model_max_context_tokens == 131_072
    scaled = m.model_copy(update={"rope_scaling": RopeScaling(factor=4)})
    e = estimate(scaled, hw, par, 500_000, 100)
    assert e.fits, e.reason
    assert e.model_max_context_tokens == 524_288
