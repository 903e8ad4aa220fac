"""The sizing page's question and the reading of its answer, as plain functions: a scenario fills the
question, the question becomes the scenario `ctxsim plan` is given, a link carries it (and an upload),
and the page and `ctxsim plan` give the same best configuration for the same question."""

import base64
import json
import random
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dashboard.question import (
    LINK_CHARS,
    Lengths,
    Question,
    describe,
    form_values,
    link_scenario,
    planned_scenario,
    question_from_form,
    question_from_mapping,
    question_from_query,
    question_mapping,
    scenario_question,
    unlink_scenario,
)
from dashboard.runs import parse_upload
from dashboard.sizing import (
    candidates_table,
    equal_cost,
    per_hardware,
    plan_job,
    slo_rows,
    thin_headroom,
    tie_notes,
)
from hardware import hardware_names
from sim.scenario import ScenarioError, scenario_from_dict

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CHAT = yaml.safe_load((EXAMPLES / "chat-h100.yaml").read_text())
MIX = yaml.safe_load((EXAMPLES / "workloads" / "task-mix-scout.yaml").read_text())
CHAT_70B = {**CHAT, "name": "chat-70b", "model": "llama-3.1-70b"}  # tp 1 on an H100: does not fit


def _upload(data: dict) -> str:
    return "data:application/x-yaml;base64," + base64.b64encode(yaml.safe_dump(data).encode()).decode()


def test_a_scenario_fills_the_question():
    q = scenario_question(CHAT)
    assert (q.model, q.workload, q.qps, q.hardware) == ("llama-3.1-8b", "lengths", 12.0, ("h100-sxm",))
    assert (q.prompt, q.output) == (Lengths(1500, 0.9, 16_000), Lengths(250, 0.7, 2000))
    assert (q.ttft_p99_s, q.tpot_p99_s, q.e2e_p99_s) == (2.0, 0.05, None)
    mixed = scenario_question(MIX)
    assert mixed.workload == "scenario" and mixed.model == "llama-4-scout"  # three classes: kept whole
    bare = {**CHAT, "workload": {"arrivals": {"kind": "poisson", "rate_per_s": 3}, "preset": "chat"}}
    assert (scenario_question(bare).workload, scenario_question(bare).mix) == ("mix", "chat")
    inline = {**CHAT, "model": {"preset": "llama-3.1-8b", "max_context_tokens": 8192}}
    assert scenario_question(inline).model is None  # not a plain preset: the scenario's own


def test_the_question_as_its_own_scenario_is_the_file_itself():
    """What `ctxsim plan chat-h100.yaml` is given, unless the question changes something."""
    root = ROOT
    assert planned_scenario(CHAT, scenario_question(CHAT), root) == CHAT
    bigger = replace(scenario_question(CHAT), model="llama-3.3-70b")
    assert planned_scenario(CHAT, bigger, root) == {**CHAT, "model": "llama-3.3-70b"}
    longer = replace(bigger, prompt=Lengths(8000, 0.5, None))
    workload = planned_scenario(CHAT, longer, root)["workload"]
    assert workload["arrivals"] == CHAT["workload"]["arrivals"]
    assert workload["prompt_tokens"] == {"kind": "lognormal", "median": 8000, "sigma": 0.5}
    mix = planned_scenario(CHAT, replace(longer, workload="mix", mix="document-analysis"), root)
    assert mix["workload"] == {"arrivals": CHAT["workload"]["arrivals"], "preset": "document-analysis"}
    trace = replace(longer, workload="trace", trace="tests/data/sharegpt_sample.csv")
    replayed = planned_scenario(CHAT, trace, root)["workload"]["trace"]
    assert replayed == {"path": str(root / "tests/data/sharegpt_sample.csv"), "replay_timestamps": False}
    scenario_from_dict(planned_scenario(CHAT, trace, root))  # a scenario the planner can read
    for where, why in (("../../etc/passwd", "outside the folder"), ("nothing.csv", "no file")):
        with pytest.raises(ScenarioError, match=why):
            planned_scenario(CHAT, replace(trace, trace=where), root)
    kept = planned_scenario(MIX, scenario_question(MIX), root)
    assert kept == MIX


def test_the_page_says_what_it_sizes():
    q = replace(scenario_question(CHAT), model="llama-3.3-70b", qps=40.0)
    asked = describe(planned_scenario(CHAT, q, ROOT), "chat-h100", q)
    assert asked["model"] == "llama-3.3-70b"
    assert asked["workload"].startswith("prompts median 1,500 tokens (σ 0.9, at most 16,000), outputs")
    assert asked["load"] == "40 req/s (poisson arrivals); p99 TTFT ≤ 2.00 s, TPOT ≤ 50.0 ms"
    assert asked["search"].startswith("h100-sxm; tp 1, 2, 4, 8; at most 64 devices; 2,000 simulated")
    mixed = describe(MIX, "task-mix-scout", scenario_question(MIX))
    classes = "chat 70%, role-play 10%, document-analysis 20%"
    assert mixed["workload"] == f"3 classes ({classes}) as in task-mix-scout"


def test_a_link_carries_the_whole_question():
    q = Question(
        model="llama-3.3-70b",
        workload="lengths",
        prompt=Lengths(3000, 0.6, 32_000),
        output=Lengths(400, 0.5, None),
        qps=40.0,
        requests=500,
        ttft_p99_s=1.5,
        tpot_p99_s=None,
        e2e_p99_s=30.0,
        hardware=("h200", "mi300x"),
        tps=(4, 8),
        max_devices=32,
        stack="vllm",
        basis="tco",
        price=3.2,
    )
    query = q.query()
    assert query["qps"] == 40 and query["hardware"] == ["h200", "mi300x"] and query["tp"] == [4, 8]
    as_text = {k: [str(x) for x in v] if isinstance(v, list) else v for k, v in query.items()}
    as_text = {k: v for k, v in as_text.items() if v is not None}
    assert as_text["tpot_p99"] == 0  # no target, where the scenario it starts from has one
    assert question_from_query(as_text, scenario_question(CHAT), hardware_names()) == q
    assert question_from_mapping(question_mapping(q)) == q
    form = question_from_form(
        ["llama-3.3-70b", "lengths", 3000, 0.6, 32000, 400, 0.5, None, None, None, 40, 500,
         1.5, None, 30, ["h200", "mi300x"], [8, 4], 32, "vllm", "tco", "3.2"]
    )  # fmt: skip
    assert form == q and question_from_form(form_values(q)) == q


def test_the_stack_and_price_reach_the_planned_scenario():
    """A stack and an own price picked on the page are the planned scenario's `stack:` and `cost:`;
    the scenario's own stack and basis leave it as it is."""
    q = replace(scenario_question(CHAT), stack="roofline", basis="tco", price=4.0)
    planned = planned_scenario(CHAT, q, ROOT)
    assert planned["stack"] == "roofline"
    assert planned["cost"] == {**(CHAT.get("cost") or {}), "basis": "tco", "per_device_hour_usd": 4.0}
    sc = scenario_from_dict(planned)
    assert (sc.stack, sc.cost.basis, sc.cost.per_device_hour_usd) == ("roofline", "tco", 4.0)
    assert "stack roofline" in describe(planned, "chat-h100", q)["serving"]


def test_an_upload_ctxsim_plan_accepts_is_accepted_and_travels_in_the_link():
    """A 70B scenario whose own tp does not fit an H100 is refused for a run but is a question the
    planner answers by choosing tp; the link carries it and reads back through the upload checks."""
    with pytest.raises(ScenarioError, match="leave no KV space"):
        parse_upload(_upload(CHAT_70B), "chat-70b.yaml", 100_000)
    data = parse_upload(_upload(CHAT_70B), "chat-70b.yaml", 100_000, runnable=False)
    assert scenario_question(data).model == "llama-3.1-70b"
    packed = link_scenario(data)
    assert packed is not None and len(packed) < 1000
    assert parse_upload(unlink_scenario(packed, 100_000), "link", 100_000, runnable=False) == data
    with pytest.raises(ScenarioError, match="does not read"):
        unlink_scenario("not-deflate!", 100_000)
    with pytest.raises(ScenarioError, match="over the 100-byte limit"):
        unlink_scenario(packed, 100)
    noise = base64.b64encode(random.Random(0).randbytes(LINK_CHARS)).decode()  # does not deflate
    assert link_scenario({**data, "name": noise}) is None


def _candidate(hardware, tp, replicas, cost, ttft, tpot, verdict="meets"):
    return {
        "hardware": hardware,
        "tp": tp,
        "pp": 1,
        "replicas": replicas,
        "devices": tp * replicas,
        "prefill_replicas": 0,
        "split": {},
        "cost_per_hour_usd": cost,
        "cost_per_1m_input_tokens_usd": cost / 10,
        "cost_per_1m_output_tokens_usd": cost / 2,
        "headroom": {"ttft_p99": 1 - ttft / 2.0, "tpot_p99": 1 - tpot / 0.05},
        "summary": {"ttft_p99_s": ttft, "tpot_p99_s": tpot, "requests_rejected": 0},
        "verdict": verdict,
        "requests": 2000,
    }


SLOS = [
    {"metric": "ttft", "percentile": 99, "limit_s": 2.0, "name": "ttft_p99"},
    {"metric": "tpot", "percentile": 99, "limit_s": 0.05, "name": "tpot_p99"},
]


def _plan() -> dict:
    """Four mi300x at tp 1 and two at tp 2 cost the same; the tp 2 pair has the better latency. The
    h200's best meets TPOT with 4% to spare."""
    best = _candidate("mi300x", 1, 4, 2.011, 0.42, 0.0188)
    tie = _candidate("mi300x", 2, 2, 2.011, 0.27, 0.0178)
    third = _candidate("mi300x", 4, 1, 2.011, 1.3, 0.032)
    h200 = _candidate("h200", 1, 3, 2.95, 0.5, 0.048)
    return {
        "slos": SLOS,
        "best": best,
        "ranked": [best, tie, third],
        "found": [best, tie, third, h200],
        "per_hardware": [best, h200],
        "misses": [_candidate("a100-80g-sxm", 1, 16, 7.5, 3.0, 0.09, "misses")],
        "skipped": [
            {"hardware": "h200", "tp": 1, "reason": "meets the SLOs with 3 replica(s) at $2.95/h, ..."},
            {"hardware": "b200", "tp": 1, "reason": "b200 has no price (hardware.price)"},
            {"hardware": "b200", "tp": 2, "reason": "b200 has no price (hardware.price)"},
        ],
        "max_devices": 64,
    }


def test_ties_at_equal_cost_with_better_latency_are_flagged():
    plan = _plan()
    ties = equal_cost(plan["best"], plan)
    assert [(t["candidate"]["tp"], t["better"], t["worse"]) for t in ties] == [
        (2, ["ttft_p99", "tpot_p99"], []),
        (4, [], ["ttft_p99", "tpot_p99"]),
    ]
    notes = tie_notes(plan["best"], plan)
    assert notes[0] == (
        "tie: 2 x 2 x mi300x (tp 2, pp 1) costs the same ($2.01/h) with better latency: "
        "lower TTFT p99 (270.0 ms vs 420.0 ms), lower TPOT p99 (17.8 ms vs 18.8 ms)"
    )
    assert notes[1].startswith("tie: 1 x 4 x mi300x (tp 4, pp 1) costs the same ($2.01/h): higher TTFT p99")
    assert equal_cost(plan["per_hardware"][1], plan) == []


def test_achieved_p99_against_each_target_and_thin_headroom():
    plan = _plan()
    rows = slo_rows(plan["per_hardware"][1], SLOS)
    assert [(r["target"], r["limit_s"], r["achieved_s"], r["thin"]) for r in rows] == [
        ("TTFT p99", 2.0, 0.5, False),
        ("TPOT p99", 0.05, 0.048, True),
    ]
    assert rows[1]["headroom"] == pytest.approx(0.04)
    assert thin_headroom(plan["per_hardware"][1], SLOS) == [
        "TPOT p99 48.0 ms is within 4% of its 50.0 ms limit: a little more load or a longer prompt "
        "tail misses it"
    ]
    assert thin_headroom(plan["best"], SLOS) == []


def test_best_per_hardware_type_and_why_none():
    rows = per_hardware(_plan())
    assert [(r["hardware"], r["candidate"] and r["candidate"]["tp"]) for r in rows] == [
        ("mi300x", 1),
        ("h200", 1),
        ("a100-80g-sxm", None),
        ("b200", None),
    ]
    assert rows[2]["why"] == "misses the SLOs even with 16 x 1 x a100-80g-sxm (tp 1, pp 1)"
    assert rows[3]["why"] == "b200 has no price (hardware.price)"  # the same for every tp: said once


def test_candidates_table_notes_in_full():
    frame = candidates_table(_plan())
    assert list(frame["verdict"]) == ["meets"] * 4 + ["misses", "skipped", "skipped"]
    assert list(frame.columns[:6]) == ["verdict", "hardware", "tp", "replicas", "devices", "$/hour"]
    assert {"TTFT p99 (s)", "TTFT p99 headroom", "TPOT p99 (s)", "TPOT p99 headroom"} < set(frame.columns)
    notes = list(frame["note"])
    assert notes[0].startswith("best overall; tie: 2 x 2 x mi300x")
    assert notes[3].startswith("cheapest on h200; thin headroom: TPOT p99 48.0 ms")
    assert notes[-1] == "b200 has no price (hardware.price)"


def test_the_page_and_ctxsim_plan_agree_on_the_same_question(tmp_path):
    """The page's search (per hardware type) and `ctxsim plan`'s give the same best configuration."""
    from sim.cli import app as cli

    q = replace(
        scenario_question(CHAT),
        qps=8.0,
        requests=300,
        hardware=("h100-sxm", "a100-80g-sxm"),
        tps=(1,),
        max_devices=8,
    )
    base = planned_scenario(CHAT, q, ROOT)
    assert base == CHAT  # the question as the file asks it
    page = plan_job(base, question_mapping(q), describe(base, "chat-h100", q), progress=lambda *_: None)
    args = ["plan", str(EXAMPLES / "chat-h100.yaml"), "--qps", "8", "--slo", "ttft_p99=2s"]
    args += ["--slo", "tpot_p99=50ms", "--hardware", "h100-sxm,a100-80g-sxm", "--tp", "1"]
    args += ["--max-devices", "8", "--requests", "300", "--json"]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0, out.output
    cli_best, page_best = json.loads(out.stdout)["best"], page["plan"]["best"]
    keys = ("hardware", "tp", "pp", "replicas", "devices", "cost_per_hour_usd", "verdict", "requests")
    assert {k: page_best[k] for k in keys} == {k: cli_best[k] for k in keys}
    assert {c["hardware"] for c in page["plan"]["per_hardware"]} == {"h100-sxm", "a100-80g-sxm"}
