"""The price of a device-hour on a stated basis (cloud on-demand or TCO), the user's own price, and the
split of a run's cost between its input and its output tokens, each checked against a hand calculation."""

import numpy as np
import pytest

from hardware import hardware_names, load_hardware
from sim.api import run
from sim.cost import pricing
from sim.cost.prefill import PrefillClock
from sim.scenario import CostAssumptions, ScenarioError, scenario_from_dict
from tests.conftest import TINY_BASE


@pytest.mark.parametrize("name", hardware_names())
def test_every_preset_has_a_price_or_a_reason_on_both_bases(name):
    hw = load_hardware(name)
    assert hw.price is not None, f"{name}: no price: block"
    for basis, entry in pricing.bases(hw, CostAssumptions()).items():
        if entry["usd_per_device_hour"] is None:
            assert entry["reason"].startswith(f"{name} has no "), (name, basis)
            assert len(entry["reason"]) > len(name) + 40, "the reason says why"
        else:
            assert entry["usd_per_device_hour"] > 0 and entry["label"] and entry["source"]
    if hw.price.cloud is not None:
        c = hw.price.cloud
        assert c.provider and c.url.startswith("https://") and c.date[:2] == "20"
    else:
        assert hw.price.no_cloud
    assert hw.price.purchase_usd is not None or hw.price.no_purchase


def test_cloud_price_is_the_instance_price_over_its_devices(h100):
    price = pricing.device_price(h100, CostAssumptions())
    assert price.basis == "cloud" and price.usd_per_device_hour == pytest.approx(49.24 / 8)
    assert price.fixed_usd_per_device_hour == price.usd_per_device_hour
    assert price.electricity_usd_per_kwh == 0.0  # power is in the rent
    assert "CoreWeave" in price.label and "2026-09-20" in price.label and "$6.155/device-hour" in price.label
    assert "https://www.coreweave.com/pricing" in price.detail and "/ 8 devices" in price.detail


def test_tco_price_by_hand(h100):
    """$30,000 over 4 years of 8,766 hours, 0.7 kW hosted at $184.06 a kW-month (730.5 hours), and
    0.7 kW x PUE 1.56 at $0.10 a kWh."""
    cost = CostAssumptions(basis="tco")
    price = pricing.device_price(h100, cost)
    capital = 30_000 / (4 * 8766)
    hosting = 0.7 * 184.06 / 730.5
    power = 0.7 * 1.56 * 0.10
    assert price.usd_per_device_hour == pytest.approx(capital + hosting + power)
    assert price.usd_per_device_hour == pytest.approx(1.1411, abs=1e-4)
    assert price.fixed_usd_per_device_hour == pytest.approx(capital + hosting)
    assert price.electricity_usd_per_kwh == pytest.approx(0.156)  # a run pays its energy x PUE
    assert price.label.startswith("TCO ($30,000 over 4 y")


def test_user_price_replaces_the_basis_one_or_per_preset(h100):
    h200 = load_hardware("h200")
    one = CostAssumptions(per_device_hour_usd=2.5)
    assert pricing.device_price(h100, one).usd_per_device_hour == 2.5
    assert pricing.device_price(h100, one).label == "cloud, user-set: $2.5/device-hour"
    each = CostAssumptions(basis="tco", per_device_hour_usd={"h100-sxm": 2.0})
    assert pricing.device_price(h100, each).usd_per_device_hour == 2.0
    assert pricing.device_price(h200, each).basis == "tco" and not pricing.device_price(h200, each).user_set


def test_no_price_says_why():
    groq = load_hardware("groq-lpu")
    assert pricing.device_price(groq, CostAssumptions()) is None
    assert "GroqCloud sells tokens" in pricing.no_price_reason(groq, CostAssumptions())
    pcie = load_hardware("h100-pcie")
    why = pricing.no_price_reason(pcie, CostAssumptions(basis="tco"))
    assert why.startswith("h100-pcie has no total cost of ownership price") and "hardware.csv" in why
    assert pricing.device_price(groq, CostAssumptions(per_device_hour_usd=4.0)).usd_per_device_hour == 4.0


def test_token_split_by_hand():
    """$6 an hour, a quarter of the device time in prefill, 1.2M input and 0.3M output tokens an hour:
    $1.50 buys 1.2M input tokens ($1.25 per 1M) and $4.50 buys 0.3M output tokens ($15 per 1M)."""
    into, out = pricing.token_split_usd_per_1m(6.0, 0.25, 1.2e6, 0.3e6)
    assert into == pytest.approx(1.25) and out == pytest.approx(15.0)
    into, out = pricing.batch_token_split_usd_per_1m(3.6, 2.0, 10.0, 4, 1000, 500)
    # $3.6/h is $0.001/s: 2 s of prefill for 4,000 input tokens, 8 s of decode for 2,000 output tokens
    assert into == pytest.approx(0.002 / 4000 * 1e6) and out == pytest.approx(0.008 / 2000 * 1e6)


class _Steps:
    """A cost model whose prefill chunk k takes k + 1 seconds."""

    def step(self, new, ctx, sampled):
        return type("T", (), {"total_s": ctx[0] / new[0] + 1.0})()


def test_prefill_clock_charges_each_token_its_chunks_share():
    clock = PrefillClock(_Steps(), chunk=100, devices=2)
    # 150 tokens from empty: chunk 0 (1 s) and half of chunk 1 (2 s / 2); 100 more from 150: the rest of
    # chunk 1 (1 s) and half of chunk 2 (1.5 s)
    assert clock.seconds(np.array([0, 150]), np.array([150, 250])) == pytest.approx(2.0 + 2.5)
    assert clock.device_seconds(np.array([0]), np.array([150])) == pytest.approx(4.0)
    assert clock.seconds(np.array([], np.int64), np.array([], np.int64)) == 0.0


def test_a_run_splits_its_cost_between_input_and_output_tokens():
    sc = scenario_from_dict({**TINY_BASE, "cost": {"per_device_hour_usd": 3.6}})
    s = run(sc).summary
    assert s.cost_basis == "cloud, user-set: $3.6/device-hour"
    assert 0 < s.prefill_cost_share < 1
    tokens = run(sc).requests.query("finish_s == finish_s")
    spent = (
        s.cost_per_1m_input_tokens_usd * tokens["prompt_tokens"].sum()
        + s.cost_per_1m_output_tokens_usd * tokens["output_tokens"].sum()
    ) / 1e6
    assert spent == pytest.approx(s.cost_usd)  # the split neither loses nor adds a cent
    assert s.cost_usd == pytest.approx(3.6 * s.devices * s.duration_s / 3600)  # user price: all-in


def test_disaggregated_runs_split_by_the_pools_devices():
    from tests.conftest import disaggregated_cluster

    data = {**TINY_BASE, "cluster": disaggregated_cluster(3), "cost": {"per_device_hour_usd": 1.0}}
    s = run(scenario_from_dict(data)).summary
    assert s.prefill_cost_share == pytest.approx(1 / 4)


@pytest.mark.parametrize(
    ("cost", "message"),
    [
        ({"basis": "aws"}, "cost.basis: Input should be 'cloud' or 'tco'"),
        ({"per_device_hour_usd": -1}, "cost.per_device_hour_usd: expected USD per device-hour above 0"),
        ({"per_device_hour_usd": "cheap"}, "cost.per_device_hour_usd: expected USD per device-hour"),
        ({"per_device_hour_usd": {"h100-sxm": 0}}, "cost.per_device_hour_usd: h100-sxm: expected USD"),
        ({"per_device_hour_usd": {"h100sxm": 2}}, "cost.per_device_hour_usd: 'h100sxm' is not a hardware"),
        ({"per_device_hour": 2}, "cost: per_device_hour: unknown field; did you mean per_device_hour_usd?"),
        ({"pue": 0.5}, "cost.pue: Input should be greater than or equal to 1"),
    ],
)
def test_bad_cost_names_the_field(cost, message):
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict({**TINY_BASE, "cost": cost})
    assert message in str(exc.value)
