"""What devices cost in dollars: the hourly price, electricity, and money per second, token or byte.
Every dollar figure in runs, studies and the dashboard comes from these functions.

A device-hour costs its hourly rate when the hardware has one, else its purchase price amortised
over `amortization_years` of 8766 hours (365.25 days), always running. On top comes electricity.

Electricity follows what the device does, not how long it is on (`hardware.spec.Power`): it draws
idle power `idle_fraction x TDP` all the time, and on top a dynamic part that each operator's
compute and memory activity drives, capped at the TDP:

    power_w = TDP x (idle + (1 - idle) x min(1, compute_fraction x u_c + memory_fraction x u_m))

with u_c and u_m the shares of the operator's time its compute leg and its memory leg are active
(the roofline knows both). The cost model sums each operator's time weighted by
min(1, compute_fraction x u_c + memory_fraction x u_m) into the step's `active_s`, so over a run of
`duration_s` on `devices` devices with `active_device_s` active device-seconds in all,

    energy_j = TDP x (idle_fraction x duration_s x devices + (1 - idle_fraction) x active_device_s)

and costs energy_j / 3.6e6 (J per kWh) x the price of a kWh. A lightly loaded device that is always
decoding a few sequences is memory-bound, so it draws little above idle; a device prefilling long
prompts draws near its TDP. A price per device-hour that must not depend on a run (the planner ranks
and prunes configurations by price before simulating them, and the cost curve and the dashboard's
what-if work from an analytic estimate) uses the cap, the TDP: TDP / 1e3 kW x the price of a kWh
per hour (for an H100 at 700 W and $0.10 per kWh, $0.070 per hour), an upper bound on any run's
figure, reached only by a device compute-bound all the time.

Every function keeps the order of its arithmetic, so a figure is the same to the last bit
wherever it is computed.
"""

from __future__ import annotations

from hardware.spec import Accelerator, Power, Price

HOURS_PER_YEAR = 8766.0
S_PER_HOUR = 3600.0
J_PER_KWH = 3.6e6
W_PER_KW = 1e3
BYTES_PER_GB = 1e9


def device_hour_usd(price: Price | None, amortization_years: float) -> float | None:
    """Dollars per device-hour before electricity: the hourly rate, or the purchase price spread over
    `amortization_years` of continuous use; None without a price."""
    if price is None:
        return None
    if price.per_hour_usd is not None:
        return price.per_hour_usd
    if price.purchase_usd is not None:
        return price.purchase_usd / (amortization_years * HOURS_PER_YEAR)
    return None


def power_usd_per_hour(power_w: float, electricity_usd_per_kwh: float) -> float:
    """Dollars an hour of drawing `power_w` costs."""
    return power_w / W_PER_KW * electricity_usd_per_kwh


def device_hour_at_tdp_usd(
    hw: Accelerator, amortization_years: float, electricity_usd_per_kwh: float
) -> float | None:
    """Dollars per device-hour including electricity at TDP (the cap of `power_w`, reached by a device
    compute-bound all hour): a price that does not depend on a run, and an upper bound on any run's;
    None when the hardware has no price."""
    base = device_hour_usd(hw.price, amortization_years)
    if base is None:
        return None
    power = power_usd_per_hour(hw.power.tdp_w, electricity_usd_per_kwh) if hw.power else 0.0
    return base + power


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
