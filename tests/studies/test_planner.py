"""The planner's answer, checked by simulation: the cheapest configuration meets the SLOs and the
next cheaper one does not."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sim.api import run
from sim.cli import app
from sim.cli.studies import _verdict_cell
from sim.scenario import ScenarioError, scenario_from_dict
from sim.studies.planner import ROOFLINE_SLACK, Demand, SearchSpace, candidate_scenario, device_hour_usd, plan
from sim.studies.planner import replica_bound_rps as bound
from sim.studies.verdict import PlanError, Verdict, parse_slo, verdict

ROOT = Path(__file__).resolve().parents[2]
CHAT = ROOT / "examples" / "chat-h100.yaml"
BASE = yaml.safe_load(CHAT.read_text())
HARDWARE, TPS, MAX_DEVICES, REQUESTS, QPS = ("h100-sxm", "a100-80g-sxm"), (1, 2), 16, 600, 25.0
SLOS = (parse_slo("ttft_p99=1s"), parse_slo("tpot_p99=30ms"))
DEMAND = Demand(QPS, SLOS, REQUESTS)
runner = CliRunner()


def _verdict(sc):
    return verdict(run(sc).summary, SLOS)


@pytest.fixture(scope="module")
def answer():
    return plan(BASE, DEMAND, SearchSpace(HARDWARE, TPS, MAX_DEVICES))


def test_cheapest_meets_the_slos_and_the_next_cheaper_does_not(answer):
    best = answer.best
    assert best is not None and best.meets
    judged_on = replace(DEMAND, requests=best.requests)
    chosen = candidate_scenario(BASE, judged_on, best.hardware, best.tp, best.replicas)
    assert _verdict(chosen) == Verdict.meets
    cheaper = []
    for hw in HARDWARE:
        for tp in TPS:
            try:
                one = candidate_scenario(BASE, DEMAND, hw, tp, 1)
            except ScenarioError:
                continue
            replica_usd = device_hour_usd(one.hardware, one.cost) * one.par.devices
            cheaper += [
                (r * replica_usd, hw, tp, r)
                for r in range(1, MAX_DEVICES // one.par.devices + 1)
                if r * replica_usd < best.cost_per_hour_usd - 1e-9
            ]
    assert cheaper, "the answer is the cheapest configuration there is; raise QPS to make this test bite"
    _, hw, tp, replicas = max(cheaper)
    assert _verdict(candidate_scenario(BASE, DEMAND, hw, tp, replicas)) != Verdict.meets


def test_ranked_cheapest_first_with_margins(answer):
    costs = [c.cost_per_hour_usd for c in answer.ranked]
    assert costs == sorted(costs) and len(costs) == 3
    for c, below in zip(answer.ranked, answer.below, strict=True):
        assert c.meets and all(h >= 0 for h in c.headroom.values())
        assert c.devices == c.replicas * c.tp * c.pp
        decode = 1 - c.summary.prefill_cost_share  # decode's share of the device time pays for output
        assert c.cost_per_1m_output_tokens_usd == pytest.approx(
            c.cost_per_hour_usd * decode / 3600 / c.summary.output_tokens_per_s * 1e6
        )
        assert c.cost_basis.startswith("cloud on-demand (")
        assert c.verdict == Verdict.meets and c.requests >= REQUESTS
        if below is not None:  # one replica fewer misses, or cannot be shown to meet, an SLO
            assert below.replicas == c.replicas - 1 and not below.meets
            assert below.verdict in (Verdict.misses, Verdict.borderline)


def test_roofline_bound_is_an_upper_bound_on_a_replica(answer):
    sc = candidate_scenario(BASE, DEMAND, "h100-sxm", 1, 1)
    data = sc.model_dump(mode="json")
    data["workload"]["arrivals"] = {"kind": "burst"}  # everything at once: the replica's capacity
    capacity = run(scenario_from_dict(data)).summary.throughput_rps
    per = bound(sc, 1500 * 1.5, 250 * 1.3)  # about the workload's mean lengths
    assert capacity <= ROOFLINE_SLACK * per


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ttft_p99=2s", ("ttft", 99, 2.0)),
        ("tpot_p50=50ms", ("tpot", 50, 0.05)),
        ("e2e_p90=1.5", ("e2e", 90, 1.5)),
    ],
)
def test_parse_slo(text, expected):
    s = parse_slo(text)
    assert (s.metric, s.percentile, s.limit_s) == expected


@pytest.mark.parametrize("text", ["ttft=2s", "ttft_p95=2s", "ttft_p99", "ttft_p99=soon", "ttft_p99=0s"])
def test_parse_slo_rejects(text):
    with pytest.raises(PlanError, match=r"--slo"):
        parse_slo(text)


def test_plan_needs_a_rate_to_set():
    burst = {**BASE, "workload": {**BASE["workload"], "arrivals": {"kind": "burst"}}}
    with pytest.raises(PlanError, match=r"workload\.arrivals\.kind: burst"):
        plan(burst, Demand(QPS, SLOS))


def test_configurations_that_cannot_fit_or_carry_the_load_are_not_simulated():
    p = plan(
        {**BASE, "model": "llama-3.1-70b"},
        Demand(50.0, SLOS, requests=50),
        SearchSpace(["h100-sxm"], (1, 2, 3), max_devices=2),
    )
    reasons = {s.tp: s.reason for s in p.skipped}
    assert "leave no KV space" in reasons[1] and "must divide num_heads" in reasons[3]
    assert "roofline bound" in reasons[2] and "over --max-devices 2" in reasons[2]
    assert p.best is None and p.simulations == 0


def test_cli_plan_json_and_table():
    args = [
        "plan",
        str(CHAT),
        "--qps",
        "10",
        "--slo",
        "ttft_p99=2s",
        "--slo",
        "tpot_p99=50ms",
        "--tp",
        "1",
        "--requests",
        "300",
        "--top",
        "1",
    ]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["best"]["hardware"] == "h100-sxm" and out["best"]["meets"]
    costs = {"cost_per_hour_usd", "cost_per_1m_input_tokens_usd", "cost_per_1m_output_tokens_usd"}
    assert costs | {"headroom", "replicas", "devices", "tp"} <= set(out["best"])
    assert [s["name"] for s in out["slos"]] == ["ttft_p99", "tpot_p99"]
    assert out["best"]["verdict"] in ("meets", "borderline") and out["best"]["requests"] >= 300
    r = runner.invoke(app, args, env={"COLUMNS": "160"})
    assert r.exit_code == 0 and "│ best " in r.stdout and "x h100-sxm (1 x 1)" in r.stdout
    header = next(line for line in r.stdout.splitlines() if "replicas x hardware" in line)
    assert "verdict" in header and "judged on" in header
    best = next(line for line in r.stdout.splitlines() if "│ best " in line)
    assert f"│ {out['best']['verdict']} " in best and f"{out['best']['requests']:,} req" in best


def test_plan_verdicts_read_in_colour():
    assert _verdict_cell("meets") == "[green]meets[/]" and _verdict_cell("misses") == "[red]misses[/]"
    assert _verdict_cell("borderline") == "[yellow]borderline[/]"


def test_cli_plan_bad_slo():
    r = runner.invoke(app, ["plan", str(CHAT), "--qps", "10", "--slo", "ttft_p42=2s"])
    assert r.exit_code == 2 and "--slo 'ttft_p42=2s'" in " ".join(r.output.split())


def test_disaggregated_candidates_are_checked_by_simulation():
    """With --disaggregated each (hardware, tp) is also searched as prefill + decode pools; any such
    answer meets the SLOs when simulated again, and one replica fewer (split the same way) does not."""
    space = SearchSpace(("h100-sxm",), (1,), MAX_DEVICES, disaggregated=True)
    result = plan(BASE, DEMAND, space, top=4)
    searched = [*result.ranked, *result.misses, *[b for b in result.below if b is not None]]
    split_runs = [c for c in searched if c.prefill_replicas]
    assert split_runs, "no disaggregated configuration was simulated"
    for c, below in zip(result.ranked, result.below, strict=True):
        if not c.prefill_replicas:
            continue
        assert 1 <= c.prefill_replicas < c.replicas and "disaggregated" in c.label
        judged_on = replace(DEMAND, requests=c.requests)
        sc = candidate_scenario(
            BASE, judged_on, "h100-sxm", c.tp, c.replicas, prefill_replicas=c.prefill_replicas
        )
        assert sc.cluster.disaggregated.prefill.replicas == c.prefill_replicas
        assert _verdict(sc) == Verdict.meets
        if below is not None and below.replicas >= 2:
            fewer = candidate_scenario(
                BASE, DEMAND, "h100-sxm", c.tp, below.replicas, prefill_replicas=below.prefill_replicas
            )
            assert _verdict(fewer) != Verdict.meets


def test_plan_searches_expert_and_attention_splits_pruning_first():
    """ep x attention_dp combinations are tried with each tp; one that cannot split the model is
    skipped naming the degrees, before anything is simulated."""
    from sim.studies.planner import _pairs

    base = {**BASE, "model": "qwen3-30b-a3b"}
    space = SearchSpace(("h100-sxm",), (1,), 16, eps=(1, 3, 8), attention_dps=(1, 8))
    assert {"ep": 8, "attention_dp": 8} in space.splits() and {} in space.splits()
    pairs, skipped, _ = _pairs(base, DEMAND, space)
    assert any(dict(p.split) == {"ep": 8, "attention_dp": 8} for p in pairs)
    assert any("with ep 3" in s.reason and "must divide" in s.reason for s in skipped)


def test_a_search_where_every_configuration_is_skipped_says_so():
    """70B weights on one 80 GB H100 at tp 1: nothing to simulate, every skip named, no crash."""
    base = yaml.safe_load(CHAT.read_text()) | {"model": "llama-3.1-70b"}
    answer = plan(base, Demand(8.0, [parse_slo("ttft_p99=2s")], 300), SearchSpace(None, [1], 1))
    assert answer.best is None and answer.simulations == 0
    assert answer.skipped and all(s.tp == 1 for s in answer.skipped)


def test_per_hardware_finds_each_types_cheapest_and_keeps_the_overall_best():
    """A plan made per_hardware answers for every hardware type as a plan of that type alone would,
    where a plain plan prunes the dearer type unsimulated, and its overall best is the plain plan's
    (what `ctxsim plan` prints)."""
    demand, space = Demand(5.0, SLOS, 200), SearchSpace(HARDWARE, (1,), 8)
    plain, each = plan(BASE, demand, space, top=1), plan(BASE, demand, space, top=1, per_hardware=True)
    assert plain.per_hardware == () and plain.best.hardware == "h100-sxm"
    assert any(s.hardware == "a100-80g-sxm" and "dearer than" in s.reason for s in plain.skipped)
    assert (each.best.hardware, each.best.tp, each.best.replicas) == (
        plain.best.hardware,
        plain.best.tp,
        plain.best.replicas,
    )
    assert [c.hardware for c in each.per_hardware] == ["h100-sxm", "a100-80g-sxm"]
    assert each.per_hardware[0] == each.best and set(map(id, each.per_hardware)) <= set(map(id, each.found))
    out = each.to_dict()
    assert [c["hardware"] for c in out["per_hardware"]] == ["h100-sxm", "a100-80g-sxm"]
    alone = plan(BASE, demand, SearchSpace(("a100-80g-sxm",), (1,), 8), top=1).best
    a100 = each.per_hardware[1]
    assert (a100.tp, a100.replicas) == (alone.tp, alone.replicas)
    assert a100.cost_per_hour_usd == alone.cost_per_hour_usd
