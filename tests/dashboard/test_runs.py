import base64

import pytest

from dashboard.runs import (
    CDF_POINTS,
    FORM_FIELDS,
    apply_form,
    change,
    change_tones,
    compact,
    compare_table,
    form_values,
    latency_frame,
    parse_upload,
)
from sim.api import run
from sim.engine.summary import FIELDS, Summary
from sim.report import labels
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
        (GOOD.replace("rate_per_s: 5", "rate_per_s: -5"), r"up.yaml: workload.arrivals.rate_per_s: Input"),
        (
            GOOD.replace("stop: {requests: 50}", "stop: {requests: 50}\nbogus: 1"),
            r"up.yaml: bogus: not a field here; the fields here are schema_version, name, seed, hardware",
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


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "rate_per_s: 5",
            "rate_per_sec: 5",
            "up.yaml: workload.arrivals.rate_per_sec: not a field here; did you mean 'rate_per_s'?",
        ),
        ("hardware:", "harware:", "up.yaml: harware: not a field here; did you mean 'hardware'?"),
        (
            "low: 100",
            "lo: 100",
            "up.yaml: workload.prompt_tokens.lo: not a field here; did you mean 'low'?",
        ),
        ("requests: 50", "reqests: 50", "up.yaml: stop.reqests: not a field here; did you mean 'requests'?"),
        (
            "kind: poisson",
            "kind: poison",
            "up.yaml: workload.arrivals.kind: 'poison' is not one of poisson, gamma, diurnal, closed_loop, "
            "burst; did you mean 'poisson'?",
        ),
        (
            "model: llama-3.1-8b",
            "model: llama-3.1-8",
            "up.yaml: model: 'llama-3.1-8' is not a preset; did you mean 'llama-3.1-8b'?",
        ),
    ],
)
def test_a_misspelt_upload_names_one_field_and_what_it_meant(old, new, message):
    """A misspelt key used to read as two or three errors (the key unknown, the field it meant
    missing, a list left empty), under the union tags pydantic adds (arrivals.poisson.rate_per_s)."""
    with pytest.raises(ScenarioError) as caught:
        parse_upload(upload(GOOD.replace(old, new)), "up.yaml", 10_000)
    assert str(caught.value).startswith(message) and ";" not in str(caught.value).removeprefix(message)


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


def test_a_picked_stack_and_price_override_the_scenario_only_when_changed():
    """The form shows the scenario's stack and basis; picking roofline and typing a price sets
    `stack:` and `cost:` as `--set` would, and the run's dollars scale with the price."""
    data = parse_upload(upload(GOOD), "up.yaml", 10_000)
    values = form_values(scenario_from_dict(data))
    stack, basis, price = (
        FORM_FIELDS.index(f)
        for f in FORM_FIELDS
        if f[0] in ("stack", "cost.basis", "cost.per_device_hour_usd")
    )
    assert (values[stack], values[basis], values[price]) == ("typical", "cloud", None)
    values[stack], values[price] = "roofline", "2"
    edited, edits = apply_form(data, values)
    assert edits == ["stack=roofline", "cost.per_device_hour_usd=2.0"]
    sc = scenario_from_dict(edited)
    assert sc.stack == "roofline" and sc.cost.per_device_hour_usd == 2.0
    values[price] = 4
    cheap, dear = run(sc), run(scenario_from_dict(apply_form(data, values)[0]))
    assert dear.summary.cost_per_hour_usd == pytest.approx(2 * cheap.summary.cost_per_hour_usd)
    assert "user-set: $2/device-hour" in compare_table([compact(cheap, "a", edited)]).loc["$ on", "a"]


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
    assert list(table.columns) == ["a", "b", "change b vs a"]
    assert table.loc["TTFT p99", "a"] == labels.text("ttft_p99_s", result.summary.ttft_p99_s)
    assert table.loc["TTFT p99", "change b vs a"] == "no change"


SLO_RUN = GOOD.replace("stop:", "slo: {ttft_s: 500ms, tpot_s: 20ms, percentile: 99}\nstop:")


def _kept(label: str, **summary) -> dict:
    data = parse_upload(upload(SLO_RUN), "up.yaml", 10_000)
    base = Summary(**{f: None for f in FIELDS}).to_dict() | {"requests_rejected": 0, "overloaded": False}
    return {"label": label, "scenario": data, "summary": base | summary, "classes": []}


def test_the_compare_table_reads_in_ms_and_percent_with_slo_verdicts_and_the_change():
    """Runs compared used to read in raw seconds (0.009532), with no target, no pass/fail, no delta."""
    first = _kept(
        "#1 up (1x1 h100-sxm)", ttft_p99_s=0.2981, tpot_p99_s=0.009532, slo_attainment=0.87,
        cost_per_1m_output_tokens_usd=0.1362, throughput_rps=11.93,
    )
    last = _kept(
        "#3 up (2x1 h100-sxm)", ttft_p99_s=0.75, tpot_p99_s=0.0072, slo_attainment=0.9,
        cost_per_1m_output_tokens_usd=0.2041, throughput_rps=11.94, requests_rejected=2,
    )
    table = compare_table([first, _kept("#2 up (1x1 h100-sxm)"), last])
    a, c, delta = table["#1 up (1x1 h100-sxm)"], table["#3 up (2x1 h100-sxm)"], table["change #3 vs #1"]
    assert (a["TTFT p99"], a["TPOT p99"], a["SLO attainment"]) == ("298 ms", "9.53 ms", "87.0%")
    assert a["cost per 1M output tokens"] == "$0.136"
    assert a["SLO target"] == "TTFT ≤ 500 ms, TPOT ≤ 20.0 ms at p99"
    assert a["TTFT vs SLO"] == "PASS 298 ms ≤ 500 ms (p99)" and a["SLO verdict"] == "PASS"
    assert c["TTFT vs SLO"] == "MISS 750 ms > 500 ms (p99)"
    assert c["SLO verdict"] == "MISS (TTFT, 2 rejected)" and c["end to end vs SLO"] == "no target"
    assert table["#2 up (1x1 h100-sxm)"]["TTFT vs SLO"] == "not measured (p99 ≤ 500 ms)"
    assert (delta["TTFT p99"], delta["TPOT p99"], delta["SLO attainment"]) == ("+152%", "-24%", "+3.0 pp")
    assert delta["cost per 1M output tokens"] == "+50%" and delta["SLO verdict"] == ""
    tones = change_tones([first, last])
    assert tones["TTFT p99"] == ("+152%", "worse") and tones["TPOT p99"] == ("-24%", "better")
    assert tones["SLO attainment"][1] == "better" and tones["throughput"] == ("+0.1%", "better")


def test_change_reads_shares_in_points_and_the_rest_relative():
    assert change("kv_peak_fraction", 0.5, 0.6) == ("+10.0 pp", None)
    assert change("throughput_rps", 10.0, 9.0) == ("-10%", "worse")
    assert change("devices", 0, 0) == ("no change", None) and change("devices", None, 2) == ("—", None)
