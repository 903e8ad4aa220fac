"""What devices cost in dollars: the price of a device-hour on a stated basis, electricity, and money
per second, token or byte. Every dollar figure in runs, studies and the dashboard comes from these
functions, and every one is shown with its basis (`DevicePrice.label`).

Two bases (`cost.basis` in a scenario, `--basis` on the command line), each sourced per preset in
`hardware.price` (see docs/cost.md):

- **cloud** (the default): a published on-demand rental price, `hardware.price.cloud` (provider,
  offering, date, URL), per device = the offering's hourly price / its devices. Power, cooling and
  hosting are in the rent, so a run pays device-hours only.
- **tco**, total cost of ownership: the purchase price (the device alone, `hardware.price.purchase_usd`)
  amortised over `cost.amortization_years` of 8766 hours (365.25 days), always running, plus hosting,
  `cost.hosting_usd_per_kw_month` per kW of TDP (colocation space, cooling and power delivery), plus
  electricity at `cost.electricity_usd_per_kwh` times the facility's `cost.pue`.

`cost.per_device_hour_usd` (`--price`) replaces either with the user's own all-in figure, one number
or one per hardware preset. A preset without a figure on the chosen basis says why
(`hardware.price.no_cloud`, `no_purchase`, `no_price_reason`), and every dollar figure is then
missing rather than made up.

Electricity follows what the device does, not how long it is on (`hardware.spec.Power`): it draws
idle power `idle_fraction x TDP` all the time, and on top a dynamic part that each operator's
compute and memory activity drives, capped at the TDP:

    power_w = TDP x (idle + (1 - idle) x min(1, compute_fraction x u_c + memory_fraction x u_m))

with u_c and u_m the shares of the operator's time its compute leg and its memory leg are active
(the roofline knows both). The cost model sums each operator's time weighted by
min(1, compute_fraction x u_c + memory_fraction x u_m) into the step's `active_s`, so over a run of
`duration_s` on `devices` devices with `active_device_s` active device-seconds in all,

    energy_j = TDP x (idle_fraction x duration_s x devices + (1 - idle_fraction) x active_device_s)

and, on the tco basis, costs energy_j / 3.6e6 (J per kWh) x PUE x the price of a kWh. A lightly
loaded device that is always decoding a few sequences is memory-bound, so it draws little above
idle; a device prefilling long prompts draws near its TDP. A price per device-hour that must not
depend on a run (`DevicePrice.usd_per_device_hour`: the planner ranks and prunes configurations by
price before simulating them, and the cost curve and the dashboard's what-if work from an analytic
estimate) takes the cap, the TDP: for an H100 at 700 W, PUE 1.56 and $0.10 per kWh, $0.109 per
hour, an upper bound on any run's figure, reached only by a device compute-bound all the time.

Every function keeps the order of its arithmetic, so a figure is the same to the last bit
wherever it is computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hardware.spec import Accelerator, Power, Price

if TYPE_CHECKING:
    from sim.scenario import CostAssumptions

BASES = ("cloud", "tco")
BASIS_NAMES = {"cloud": "cloud on-demand", "tco": "total cost of ownership"}
HOURS_PER_YEAR = 8766.0
HOURS_PER_MONTH = HOURS_PER_YEAR / 12
S_PER_HOUR = 3600.0
J_PER_KWH = 3.6e6
W_PER_KW = 1e3
BYTES_PER_GB = 1e9


def power_usd_per_hour(power_w: float, electricity_usd_per_kwh: float) -> float:
    """Dollars an hour of drawing `power_w` costs."""
    return power_w / W_PER_KW * electricity_usd_per_kwh


def hosting_usd_per_hour(tdp_w: float, usd_per_kw_month: float) -> float:
    """Dollars an hour of hosting a device of `tdp_w` watts costs at `usd_per_kw_month` per kW a month."""
    return tdp_w / W_PER_KW * usd_per_kw_month / HOURS_PER_MONTH


@dataclass(frozen=True)
class DevicePrice:
    """What one device-hour costs on one basis, and how that was worked out.

    `fixed_usd_per_device_hour` is charged for every device-hour of a run whatever the devices do (the
    rent; or capital and hosting), and `electricity_usd_per_kwh` on the energy the run draws (PUE
    included; 0 where the rent covers power). `usd_per_device_hour` adds electricity at TDP: a figure
    that does not depend on a run, an upper bound on any run's. `label` is the short statement shown
    next to every dollar figure; `detail` the full one, with the source."""

    basis: str
    user_set: bool
    usd_per_device_hour: float
    fixed_usd_per_device_hour: float
    electricity_usd_per_kwh: float
    label: str
    detail: str


def user_price(cost: CostAssumptions, hardware: str) -> float | None:
    """The user's own USD per device-hour for `hardware` (`cost.per_device_hour_usd`: one number for
    every device, or one per preset name), None where it gives none."""
    given = cost.per_device_hour_usd
    if isinstance(given, dict):
        return given.get(hardware)
    return given


def device_price(hw: Accelerator, cost: CostAssumptions) -> DevicePrice | None:
    """A device-hour of `hw` on `cost.basis` (or at the user's own price); None when the preset has
    no figure on that basis (`no_price_reason` says why)."""
    own = user_price(cost, hw.name)
    if own is not None:
        text = f"{cost.basis}, user-set: ${own:,.4g}/device-hour"
        return DevicePrice(cost.basis, True, own, own, 0.0, text, f"{text} (cost.per_device_hour_usd)")
    if cost.basis == "cloud":
        return _cloud_price(hw.price)
    return _tco_price(hw, cost)


def _cloud_price(price: Price | None) -> DevicePrice | None:
    if price is None:
        return None
    if price.cloud is not None:
        c = price.cloud
        rate = c.per_device_hour_usd
        label = f"cloud on-demand ({c.provider}, {c.date}): ${rate:,.4g}/device-hour"
        split = f" / {c.devices} devices" if c.devices > 1 else ""
        detail = (
            f"cloud on-demand: {c.provider} {c.offering} at ${c.usd_per_hour:,.4g}/h{split} = "
            f"${rate:,.4g} per device-hour, read {c.date} from {c.url}"
        ) + (f" ({c.source})" if c.source else "")
        return DevicePrice("cloud", False, rate, rate, 0.0, label, detail)
    if price.per_hour_usd is not None:
        rate = price.per_hour_usd
        label = f"cloud, hardware.price.per_hour_usd: ${rate:,.4g}/device-hour"
        detail = label + (f" ({price.source})" if price.source else "")
        return DevicePrice("cloud", False, rate, rate, 0.0, label, detail)
    return None


def _tco_price(hw: Accelerator, cost: CostAssumptions) -> DevicePrice | None:
    price = hw.price
    if price is None or price.purchase_usd is None or hw.power is None:
        return None
    tdp = hw.power.tdp_w
    capital = price.purchase_usd / (cost.amortization_years * HOURS_PER_YEAR)
    hosting = hosting_usd_per_hour(tdp, cost.hosting_usd_per_kw_month)
    per_kwh = cost.electricity_usd_per_kwh * cost.pue
    total = capital + hosting + power_usd_per_hour(tdp, per_kwh)
    label = (
        f"TCO (${price.purchase_usd:,.0f} over {cost.amortization_years:g} y, power at PUE {cost.pue:g}, "
        f"hosting): ${total:,.4g}/device-hour"
    )
    kw = tdp / W_PER_KW
    detail = (
        f"total cost of ownership: purchase ${price.purchase_usd:,.0f} / ({cost.amortization_years:g} y x "
        f"{HOURS_PER_YEAR:g} h) = ${capital:,.4g}/h, hosting {kw:g} kW x "
        f"${cost.hosting_usd_per_kw_month:g}/kW-month = ${hosting:,.4g}/h, electricity {kw:g} kW x "
        f"PUE {cost.pue:g} x ${cost.electricity_usd_per_kwh:g}/kWh at TDP = "
        f"${power_usd_per_hour(tdp, per_kwh):,.4g}/h (a run pays for the energy it draws)"
        + (f"; purchase price: {price.source}" if price.source else "")
    )
    return DevicePrice("tco", False, total, capital + hosting, per_kwh, label, detail)


def no_price_reason(hw: Accelerator, cost: CostAssumptions) -> str:
    """Why `hw` has no price on `cost.basis` (empty when it has one)."""
    if device_price(hw, cost) is not None:
        return ""
    price = hw.price
    if cost.basis == "cloud":
        given = price is not None and price.no_cloud
        why = price.no_cloud if given else "no cloud price (hardware.price.cloud)"
    elif price is None or price.purchase_usd is None:
        why = (
            price.no_purchase
            if price is not None and price.no_purchase
            else "no purchase price (hardware.price.purchase_usd)"
        )
    else:
        why = "no TDP to price power and hosting by (hardware.power.tdp_w)"
    return f"{hw.name} has no {BASIS_NAMES[cost.basis]} price: {why}"


def bases(hw: Accelerator, cost: CostAssumptions) -> dict[str, dict]:
    """Both bases for `hw` under `cost`'s assumptions (any user price aside), as the catalog lists
    them: `usd_per_device_hour`, `label` and `source` for each, or `reason` where there is none."""
    plain = cost.model_copy(update={"per_device_hour_usd": None})
    out = {}
    for basis in BASES:
        assumed = plain.model_copy(update={"basis": basis})
        price = device_price(hw, assumed)
        if price is None:
            out[basis] = {"usd_per_device_hour": None, "reason": no_price_reason(hw, assumed)}
        else:
            out[basis] = {
                "usd_per_device_hour": price.usd_per_device_hour,
                "label": price.label,
                "source": price.detail,
            }
    return out


def device_hour_at_tdp_usd(hw: Accelerator, cost: CostAssumptions) -> float | None:
    """USD per device-hour on `cost`'s basis with electricity at TDP (`DevicePrice.usd_per_device_hour`);
    None when the hardware has no price on that basis."""
    price = device_price(hw, cost)
    return None if price is None else price.usd_per_device_hour


def token_split_usd_per_1m(
    usd_per_hour: float, prefill_share: float, input_tokens_per_hour: float, output_tokens_per_hour: float
) -> tuple[float | None, float | None]:
    """USD per 1M input and per 1M output tokens when `usd_per_hour` buys those tokens an hour and
    `prefill_share` of the device time goes to prefill (the input tokens), the rest to decode (the
    output tokens); None for a kind of token that none were served of."""
    into = out = None
    if input_tokens_per_hour:
        into = usd_per_1m_tokens(usd_per_hour * prefill_share, input_tokens_per_hour)
    if output_tokens_per_hour:
        out = usd_per_1m_tokens(usd_per_hour * (1.0 - prefill_share), output_tokens_per_hour)
    return into, out


def batch_token_split_usd_per_1m(
    usd_per_hour: float, prefill_s: float, e2e_s: float, batch: int, input_tokens: int, output_tokens: int
) -> tuple[float, float]:
    """USD per 1M input and per 1M output tokens of one analytic batch (`sim.cost.estimate`) on devices
    costing `usd_per_hour` together: its prefill (`prefill_s`) pays for the batch's input tokens, the
    rest of its `e2e_s` (decode) for its output tokens."""
    into = usd_per_1m_tokens(usd_for_s(usd_per_hour, prefill_s), batch * input_tokens)
    out = usd_per_1m_tokens(usd_for_s(usd_per_hour, e2e_s - prefill_s), batch * output_tokens)
    return into, out


def power_w(power: Power, compute_activity: float, memory_activity: float) -> float:
    """Watts a device draws while its compute leg is active `compute_activity` and its memory leg
    `memory_activity` of the time (each 0..1): idle power plus the dynamic part they drive, capped at
    the TDP."""
    idle = power.idle_fraction * power.tdp_w
    share = power.compute_fraction * compute_activity + power.memory_fraction * memory_activity
    return idle + (power.tdp_w - idle) * min(1.0, share)


def energy_j(
    tdp_w: float | None, idle_fraction: float, duration_s: float, devices: int, active_device_s: float
) -> float:
    """Joules `devices` devices draw over `duration_s` with `active_device_s` active device-seconds
    in all (each operator's time weighted by its share of dynamic power, `power_w`): idle power all
    the time plus the dynamic range over the active seconds; 0 without a power figure."""
    if not tdp_w:
        return 0.0
    return tdp_w * (idle_fraction * duration_s * devices + (1 - idle_fraction) * active_device_s)


def electricity_usd(energy: float, electricity_usd_per_kwh: float) -> float:
    """Dollars `energy` joules cost."""
    return energy / J_PER_KWH * electricity_usd_per_kwh


def run_cost_usd(
    devices: int, duration_s: float, device_hour: float, energy: float, electricity_usd_per_kwh: float
) -> float:
    """Dollars a run costs: its device-hours at `device_hour` (before electricity) plus the
    electricity its `energy` joules cost."""
    device_hours = devices * duration_s / S_PER_HOUR
    return device_hours * device_hour + electricity_usd(energy, electricity_usd_per_kwh)


def usd_per_s(usd_per_hour: float) -> float:
    return usd_per_hour / S_PER_HOUR


def usd_at(usd_per_second: float, seconds: float) -> float:
    """Dollars `seconds` of something priced at `usd_per_second` cost."""
    return usd_per_second * seconds


def usd_for_s(usd_per_hour: float, seconds: float) -> float:
    """Dollars `seconds` of something priced at `usd_per_hour` cost: `usd_at(usd_per_s(usd_per_hour),
    seconds)` up to the last bit, for callers that hold the hourly price."""
    return usd_per_hour * seconds / S_PER_HOUR


def usd_per_hour(usd: float, duration_s: float) -> float:
    """The hourly rate at which `usd` was spent over `duration_s`."""
    return usd / (duration_s / S_PER_HOUR)


def usd_per_1m_tokens(usd: float, tokens: float) -> float:
    """Dollars per million tokens when `usd` buys `tokens` (or `usd` per second buys `tokens` per
    second, or per hour)."""
    return usd / tokens * 1e6


def capacity_usd_per_byte_s(usd_per_second: float, capacity_bytes: float) -> float:
    """A device group's price spread over its memory: what holding one byte for a second costs."""
    return usd_per_second / capacity_bytes


def storage_usd_per_byte_s(usd_per_gb_hour: float) -> float:
    """A storage price per GB-hour as dollars per byte-second."""
    return usd_per_gb_hour / BYTES_PER_GB / S_PER_HOUR


def storage_usd(byte_s: float, usd_per_byte_s: float | None) -> float:
    """Dollars holding `byte_s` byte-seconds costs; 0 where the storage has no price."""
    return byte_s * usd_per_byte_s if usd_per_byte_s is not None else 0.0
