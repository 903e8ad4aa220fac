"""Expert parallelism and data-parallel attention: what a device holds and computes, the all-to-all,
and the inputs that cannot run."""

import pytest
from typer.testing import CliRunner

from hardware import load_hardware
from sim.cli import app
from sim.cost import _kernels as K
from sim.cost import collectives as C
from sim.cost.estimate import estimate
from sim.cost.exchange import destinations
from sim.cost.memory import memory_plan
from sim.cost.ops import build_ops
from sim.cost.parallelism import ConfigError, Parallelism, check_parallelism, weight_bytes_per_device
from sim.cost.roofline import RooflineCost
from sim.runnable import scenario_from_dict
from sim.scenario import ScenarioError
from workloads import load_model

runner = CliRunner()
H, F, E, LAYERS = 7168, 2048, 256, 58  # DeepSeek-V3: hidden, expert FFN width, experts, MoE layers


@pytest.fixture(scope="module")
def dsv3():
    return load_model("deepseek-v3").with_dtypes(weight_dtype="fp8")


def test_an_ep_device_holds_its_experts_only(dsv3):
    """EP 64 over 64 attention ranks (tp 1): each device holds 256/64 = 4 whole experts of every MoE
    layer, 4 x 3·7168·2048 x 58 fp8 bytes = 10.2 GB, plus a full copy of everything else (attention,
    the 3 dense layers, shared experts, embeddings)."""
    par = Parallelism(ep=64, attention_dp=64)
    experts = LAYERS * E * 3 * H * F * 1.0
    rest = dsv3.weight_bytes() - experts
    per_device = weight_bytes_per_device(dsv3, par)
    assert per_device == pytest.approx(rest + experts / 64, rel=1e-12)
    assert (experts / 64) / LAYERS == pytest.approx(4 * 3 * H * F)
    plain = weight_bytes_per_device(dsv3, Parallelism(tp=8))
    assert plain == pytest.approx(dsv3.weight_bytes() / 8, rel=1e-12)
    table = build_ops(dsv3, load_hardware("gb200"), par)
    row = table.names.index("Lattention/moe.experts")
    assert table.bytes_coef[row, K.MOE_TOUCHED] * LAYERS == pytest.approx(4 * 3 * H * F * LAYERS)
    eplb = Parallelism(ep=72, attention_dp=72, redundant_experts=32)  # 288 copies, 4 a device
    assert weight_bytes_per_device(dsv3, eplb) == pytest.approx(rest + experts * 288 / 256 / 72)


def test_ep_dispatch_is_an_all_to_all_on_the_topology(dsv3):
    """EP 72 on one NVL72 rack stays on NVLink; the same on 9 HGX H200 boards crosses the NICs."""
    gb = RooflineCost(dsv3, load_hardware("gb200"), Parallelism(ep=72, attention_dp=72, redundant_experts=32))
    ops = set(gb.breakdown([1] * 8, [1000] * 8, 8)["op"])
    assert "Lattention/moe.dispatch_combine" in ops
    hgx = RooflineCost(dsv3, load_hardware("h200"), Parallelism(ep=72, attention_dp=72, redundant_experts=32))
    assert "Lattention/moe.dispatch_combine.scale_out" in set(hgx.breakdown([1] * 8, [1000] * 8, 8)["op"])
    (leg,) = C.all_to_all(load_hardware("h200"), 72)
    assert leg.bytes_per_byte == pytest.approx(64 / 72)
    # 8 experts a token over 72 devices reach 7.6 distinct devices, over 8 devices 5.25
    assert destinations(8, 72) == pytest.approx(72 * (1 - (71 / 72) ** 8))
    assert destinations(8, 8) == pytest.approx(8 * (1 - (7 / 8) ** 8))


def test_imbalance_slows_only_the_expert_work(dsv3):
    hw = load_hardware("gb200")
    even = RooflineCost(dsv3, hw, Parallelism(ep=8, attention_dp=8, expert_imbalance=1.0))
    skew = RooflineCost(dsv3, hw, Parallelism(ep=8, attention_dp=8, expert_imbalance=1.5))
    a = even.breakdown([4096], [0], 1).set_index("op")
    b = skew.breakdown([4096], [0], 1).set_index("op")
    experts = "Lattention/moe.experts"
    assert b.loc[experts, "flops"] == pytest.approx(1.5 * a.loc[experts, "flops"])
    attention = "Lattention/moe.attention"
    assert b.loc[attention, "time_s"] == pytest.approx(a.loc[attention, "time_s"])


def test_attention_dp_splits_kv_and_batch(dsv3):
    """8 attention ranks: each holds its own requests' KV (an eighth of the pool) and gets an eighth
    of the batch, so TPOT is one rank's and the output rate all eight's."""
    hw = load_hardware("h200")
    par = Parallelism(ep=8, attention_dp=8)
    plan = memory_plan(dsv3, hw, par)
    assert plan.share(8).kv_pool_bytes == pytest.approx(plan.kv_pool_bytes / 8)
    est = estimate(dsv3, hw, par, 2000, 200, batch=64)
    same_share = estimate(dsv3, hw, par, 2000, 200, batch=57)  # ceil(57 / 8) = 8 a rank too
    assert est.tpot_s == pytest.approx(same_share.tpot_s, rel=1e-12)
    assert est.output_tokens_per_s == pytest.approx(64 / 57 * same_share.output_tokens_per_s, rel=1e-12)
    assert est.kv_capacity_tokens == plan.share(8).kv_capacity_tokens


def test_bad_splits_name_the_field(dsv3, llama8b):
    with pytest.raises(ConfigError, match=r"ep \(7\) must divide the 256 experts"):
        check_parallelism(dsv3, Parallelism(attention_dp=7, ep=7))
    with pytest.raises(ConfigError, match=r"ep \(72\) must divide the 256 \+ 8 redundant experts"):
        check_parallelism(dsv3, Parallelism(attention_dp=72, ep=72, redundant_experts=8))
    with pytest.raises(ConfigError, match=r"ep \(16\) must divide tp x attention_dp \(8\)"):
        check_parallelism(dsv3, Parallelism(tp=8, ep=16))
    with pytest.raises(ConfigError, match=r"ep \(2\) needs experts"):
        check_parallelism(llama8b, Parallelism(tp=2, ep=2))
    with pytest.raises(ConfigError, match=r"cp \(4\): .*SSM layers"):
        check_parallelism(load_model("jamba-v0.1"), Parallelism(cp=4))


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--model", "deepseek-v3", "--attention-dp", "7", "--ep", "7"], "ep (7) must divide the 256"),
        (["--model", "jamba-v0.1", "--cp", "4"], "cp (4)"),
        (["--model", "llama-3.1-70b", "--tp", "16", "--hardware", "a100-80g-sxm"], "tp (16) spans 2"),
    ],
)
def test_cli_refuses_bad_splits_with_exit_2(args, field):
    hw = [] if "--hardware" in args else ["--hardware", "h100-sxm"]
    r = runner.invoke(app, ["estimate", *args, *hw, "--input", "1000", "--output", "10"])
    assert r.exit_code == 2 and field in " ".join(r.output.split())


def test_scenario_refuses_a_group_larger_than_the_cluster():
    base = {
        "hardware": "h100-sxm",
        "model": "deepseek-v3",
        "parallelism": {"attention_dp": 16, "ep": 16},
        "cluster": {"devices": 8},
        "workload": {
            "prompt_tokens": {"kind": "fixed", "tokens": 100},
            "output_tokens": {"kind": "fixed", "tokens": 10},
        },
        "stop": {"requests": 10},
    }
    spans = r"parallelism: one replica spans 16 devices .*exceeds cluster.devices \(8\)"
    with pytest.raises(ScenarioError, match=spans):
        scenario_from_dict(base)
    with pytest.raises(ScenarioError, match=r"parallelism: ep \(3\) must divide the 256 experts"):
        scenario_from_dict({**base, "parallelism": {"attention_dp": 3, "ep": 3}, "cluster": {"devices": 3}})
