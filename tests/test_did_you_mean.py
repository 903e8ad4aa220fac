"""`sim.errors`: a schema's refusal reduced to one field, as the user wrote it, with what they meant."""

import pytest
from pydantic import ValidationError

from sim.errors import did_you_mean, fields_at, one_field_error, user_path
from sim.scenario import Scenario

BASE = {
    "hardware": "h100-sxm",
    "model": "llama-3.1-8b",
    "workload": {
        "arrivals": {"kind": "poisson", "rate_per_s": 5},
        "prompt_tokens": {"kind": "uniform", "low": 100, "high": 2000},
        "output_tokens": {"kind": "fixed", "tokens": 100},
    },
    "stop": {"requests": 50},
}


def test_did_you_mean():
    assert did_you_mean("rate_per_sec", ["rate_per_s", "kind"]) == "; did you mean 'rate_per_s'?"
    assert (
        did_you_mean("h100", ["h100-sxm", "h100-nvl", "h200"]) == "; did you mean 'h100-sxm' or 'h100-nvl'?"
    )
    assert did_you_mean("zzz", ["rate_per_s", "kind"]) == ""
    assert did_you_mean("", ["a"]) == ""


def _refusal(data: dict) -> str:
    with pytest.raises(ValidationError) as caught:
        Scenario.model_validate(data)
    return one_field_error(caught.value, data, Scenario)


def test_a_misspelt_key_is_the_one_error_shown():
    data = {**BASE, "workload": {**BASE["workload"], "arrivals": {"kind": "poisson", "rate_per_sec": 5}}}
    assert _refusal(data) == "workload.arrivals.rate_per_sec: not a field here; did you mean 'rate_per_s'?"
    data = {**BASE, "scheduler": {"max_num_seq": 4}}
    assert _refusal(data) == "scheduler.max_num_seq: not a field here; did you mean 'max_num_seqs'?"


def test_values_outside_a_set_get_the_closest():
    data = {**BASE, "kv_cache": {"eviction": "lfru"}}
    assert _refusal(data) == "kv_cache.eviction: 'lfru' is not one of lru, lfu, cost; did you mean 'lru'?"


def test_other_errors_name_their_field():
    data = {**BASE, "parallelism": {"tp": 0}}
    assert _refusal(data) == "parallelism.tp: Input should be greater than or equal to 1"


def test_paths_and_fields_follow_what_the_user_wrote():
    data = {"workload": {"prompt_tokens": {"kind": "uniform", "lo": 1}}}
    loc = ("workload", "classes", 0, "prompt_tokens", "uniform", "lo")
    assert user_path(loc, data) == ["workload", "prompt_tokens", "lo"]
    assert fields_at(Scenario, loc[:-1]) == ["kind", "low", "high"]
