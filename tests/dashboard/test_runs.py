import base64

import pytest

from dashboard.runs import (
    CDF_POINTS,
    apply_form,
    compact,
    compare_table,
    form_values,
    latency_frame,
    parse_upload,
)
from sim.api import run
from sim.runnable import scenario_from_dict
from sim.scenario import ScenarioError

GOOD = """\
name: up
hardware: h100-sxm
model: llama-3.1-8b
workload:
  arrivals: {kind: poisson, rate_per_s: 5}
  prompt_tokens: {kind: uniform, low: 100, high: 2000}
  output_tokens: {kind: uniform, low: 10, high: 200}
stop: {requests: 50}
"""


def upload(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return "data:application/x-yaml;base64," + base64.b64encode(raw).decode()


def test_a_good_upload_is_the_mapping_the_cli_would_read():
    data = parse_upload(upload(GOOD), "up.yaml", 10_000)
    assert data["hardware"] == "h100-sxm" and scenario_from_dict(data).stop.requests == 50


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace("rate_per_s: 5", "rate_per_s: -5"), r"up.yaml: workload.arrivals.poisson.rate_per_s"),
        (
            GOOD.replace("stop: {requests: 50}", "stop: {requests: 50}\nbogus: 1"),
            r"up.yaml: bogus: Extra inputs",
        ),
        ("name: [unclosed", r"up.yaml: not valid YAML"),
        ("- a\n- b\n", r"expected a mapping"),
        (
            GOOD.replace("hardware: h100-sxm", "hardware: /etc/hosts.yaml"),
            r"hardware: '/etc/hosts.yaml' is not a preset",
        ),
        (
            GOOD.replace("model: llama-3.1-8b", "model: {preset: ../secret}"),
            r"model: '../secret' is not a preset",
        ),
        (
            GOOD.replace(
                "  prompt_tokens: {kind: uniform, low: 100, high: 2000}",
                "  prompt_tokens: {kind: empirical, path: /etc/passwd}",
            ),
            r"workload.prompt_tokens.path: an uploaded scenario cannot refer to files on the server",
        ),
        ("!!python/object/apply:os.system ['true']", r"not valid YAML"),
    ],
)
def test_bad_uploads_name_the_field(text, message):
    with pytest.raises(ScenarioError, match=message):
        parse_upload(upload(text), "up.yaml", 10_000)


def test_uploads_are_capped_in_size():
    with pytest.raises(ScenarioError, match=r"over the 100-byte limit"):
        parse_upload(upload(GOOD), "up.yaml", 100)
    with pytest.raises(ScenarioError, match=r"not a readable upload"):
        parse_upload("no comma here", "up.yaml", 100)


def test_form_edits_are_overrides_on_the_raw_mapping():
    data = parse_upload(upload(GOOD), "up.yaml", 10_000)
    values = form_values(scenario_from_dict(data))
    assert apply_form(data, values) == (data, [])
    values[5], values[7] = 3, 20  # replicas, requests
    edited, edits = apply_form(data, values)
    assert edits == ["cluster.replicas=3", "stop.requests=20"]
    sc = scenario_from_dict(edited)
    assert sc.replicas == 3 and sc.stop.requests == 20
    values[4] = 3  # tp 3 does not divide 32 heads
    with pytest.raises(ScenarioError, match=r"parallelism: tp \(3\) must divide num_heads"):
        scenario_from_dict(apply_form(data, values)[0])


def test_a_kept_run_is_small_and_keeps_the_summary():
    data = parse_upload(upload(GOOD.replace("requests: 50", "requests: 1500")), "up.yaml", 10_000)
    result = run(scenario_from_dict(data))
    kept = compact(result, "a", data)
    assert kept["summary"] == result.summary.to_dict()
    assert all(len(v) <= CDF_POINTS for v in kept["latency"].values())
    frame = latency_frame(kept)
    assert frame["ttft_s"].max() == result.requests["ttft_s"].max()
    assert frame["ttft_s"].min() == result.requests["ttft_s"].min()
    table = compare_table([kept, {**kept, "label": "b"}])
    assert (
        list(table.columns) == ["a", "b"] and table.loc["TTFT p99 (s)", "a"] == result.summary.ttft_p99_s
    )
