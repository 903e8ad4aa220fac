"""The price flags every command that prints dollars takes: `--basis cloud|tco` and `--price`, your own
USD per device-hour (one number, or `PRESET=USD` pairs), turned into the scenario's `cost:` fields
(`sim.scenario.CostAssumptions`), and the one line that states a hardware's price basis. A bad value
is one red line naming the field, as a bad `cost:` in a scenario file is."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sim.cli.console import fail

if TYPE_CHECKING:
    from hardware.spec import Accelerator
    from sim.scenario import CostAssumptions


class Basis(StrEnum):
    cloud = "cloud"
    tco = "tco"


BasisOption = Annotated[
    Basis | None,
    typer.Option(
        "--basis",
        help="price basis: cloud (published on-demand rent, the default) or tco (purchase price amortised, "
        "power with PUE, hosting); sources in docs/cost.md",
    ),
]
PriceOption = Annotated[
    str | None,
    typer.Option(
        "--price",
        help="your own all-in USD per device-hour: for every device (2.5) or per preset "
        "(h100-sxm=2.5,h200=3.1)",
    ),
]


def parse_price(text: str | None) -> float | dict[str, float] | str | None:
    """`--price` as the value of `cost.per_device_hour_usd`: a number, or a mapping from `PRESET=USD`
    pairs. A value that is not a number is passed on as given, for the scenario's own check to name."""
    if text is None:
        return None
    if "=" not in text:
        return _number(text.strip())
    pairs = [p.partition("=") for p in text.split(",") if p.strip()]
    if any(not sep or not name.strip() for name, sep, _ in pairs):
        fail(f"--price {text!r}: give USD per device-hour (2.5) or PRESET=USD pairs (h100-sxm=2.5,h200=3.1)")
    return {name.strip(): _number(value.strip()) for name, _, value in pairs}


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def cost_fields(basis: Basis | None, price: str | None) -> dict[str, Any]:
    """The `cost:` fields the flags set (none for flags not given)."""
    fields: dict[str, Any] = {}
    if basis is not None:
        fields["basis"] = basis.value
    if price is not None:
        fields["per_device_hour_usd"] = parse_price(price)
    return fields


def with_cost(data: dict, basis: Basis | None, price: str | None) -> dict:
    """A scenario mapping with the flags' `cost:` fields set over its own."""
    from sim import scenario

    fields = cost_fields(basis, price)
    return scenario.with_cost(data, fields.get("basis"), fields.get("per_device_hour_usd"))


def cost_assumptions(scenario_cost: Any, basis: Basis | None, price: str | None) -> CostAssumptions:
    """The validated `cost:` of a scenario mapping (or none) with the flags over it; fails with one line
    naming the field when a value is wrong."""
    from pydantic import ValidationError

    from sim.scenario import CostAssumptions, format_error

    base = scenario_cost if isinstance(scenario_cost, dict) else {}
    if scenario_cost is not None and not isinstance(scenario_cost, dict):
        fail(f"cost: expected a mapping of cost fields, got {scenario_cost!r}")
    try:
        return CostAssumptions.model_validate({**base, **cost_fields(basis, price)})
    except ValidationError as exc:
        fail("; ".join(f"cost.{part}" for part in format_error(exc).split("; ")))


def basis_line(hw: Accelerator, cost: CostAssumptions) -> str:
    """What a device-hour of `hw` costs and on what basis, or why it has no price."""
    from sim.cost import pricing

    price = pricing.device_price(hw, cost)
    return price.label if price is not None else pricing.no_price_reason(hw, cost)
