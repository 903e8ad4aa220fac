"""How numbers read to a person, in one place for the CLI, the HTML reports and the dashboard.

Each function turns one kind of quantity into text; a missing value (None or NaN) reads as a dash.
Where two views print the same quantity differently on purpose (a terminal table to the cent, a
dashboard card to four significant figures), the difference is a parameter or a second, named
function here, so every view picks its style from this one set.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

MISSING = "—"


def is_missing(x: Any) -> bool:
    """None or a float NaN: a number that was not measured."""
    return x is None or (isinstance(x, float | np.floating) and math.isnan(x))


def number(x: Any, missing: str = MISSING, thousands: bool = False, whole_from: float = math.inf) -> str:
    """A table cell: floats to 4 significant figures (printed whole, without an exponent, from
    `whole_from` up); integers with thousands separators when `thousands`; anything else as str."""
    if is_missing(x):
        return missing
    if isinstance(x, float | np.floating):
        return f"{x:,.0f}" if abs(x) >= whole_from else f"{x:,.4g}"
    if thousands and isinstance(x, int):
        return f"{x:,}"
    return str(x)


def count(n: float | None) -> str:
    """A count of things (tokens, requests) as a whole number with thousands separators."""
    return MISSING if is_missing(n) else f"{n:,.0f}"


def percent(x: float | None, places: int = 1) -> str:
    """A fraction as a percentage with `places` decimals: 0.257 -> '25.7%'."""
    return MISSING if is_missing(x) else f"{x:.{places}%}"


def seconds(s: float | None, ms_places: int = 1, s_places: int = 2) -> str:
    """A duration in fixed-point milliseconds below a second, seconds from there, for tables whose
    columns line up: 0.0123 -> '12.3 ms', 2.5 -> '2.50 s'."""
    if is_missing(s):
        return MISSING
    return f"{s * 1e3:,.{ms_places}f} ms" if s < 1 else f"{s:,.{s_places}f} s"


def seconds_significant(s: float | None) -> str:
    """A duration to 4 significant figures in µs, ms or s, for a single figure read on its own."""
    if is_missing(s):
        return MISSING
    if s < 1e-3:
        return f"{s * 1e6:.4g} µs"
    return f"{s * 1e3:.4g} ms" if s < 1 else f"{s:.4g} s"


def usd(x: float | None, cents: bool = False) -> str:
    """Dollars to 4 significant figures; with `cents`, prices as a bill shows them: to the cent
    from $1 up and to 3 significant figures below."""
    if is_missing(x):
        return MISSING
    if cents:
        return f"${x:,.3g}" if x < 1 else f"${x:,.2f}"
    return f"${x:,.4g}"


def interval(lo: float | None, hi: float | None, fmt: Callable[[float], str] = number) -> str:
    """A confidence interval as '[lo–hi]', each bound through `fmt`; a dash when either bound is
    missing (too few samples for an interval)."""
    if is_missing(lo) or is_missing(hi):
        return MISSING
    return f"[{fmt(lo)}–{fmt(hi)}]"


def _with_interval(text: str, lo: float | None, hi: float | None, fmt: Callable[[float], str]) -> str:
    """`text` followed by its interval when there is one, the bounds written without the unit."""
    return text if is_missing(lo) or is_missing(hi) else f"{text} {interval(lo, hi, fmt)}"


def _places(x: float, figures: int) -> int:
    """Decimal places that show `x` to `figures` significant figures (none past the point for big x)."""
    return figures - 1 if x == 0 else max(0, figures - 1 - math.floor(math.log10(abs(x))))


def seconds_ci(s: float | None, lo: float | None = None, hi: float | None = None, figures: int = 3) -> str:
    """A duration to `figures` significant figures in µs, ms or s, and its confidence interval in the
    same unit and decimals, so the bounds read against the estimate: '301 ms [290–313]'."""
    if is_missing(s):
        return MISSING
    unit, scale = ("µs", 1e6) if abs(s) < 1e-3 else ("ms", 1e3) if abs(s) < 1 else ("s", 1.0)
    places = _places(s * scale, figures)

    def digits(x: float) -> str:
        return f"{x * scale:,.{places}f}"

    return _with_interval(f"{digits(s)} {unit}", lo, hi, digits)


def rate_ci(x: float | None, lo: float | None = None, hi: float | None = None, unit: str = "req/s") -> str:
    """A rate to two decimals with its confidence interval: '12.03 req/s [11.65–12.41]'."""
    if is_missing(x):
        return MISSING

    def digits(v: float) -> str:
        return f"{v:,.2f}"

    return _with_interval(f"{digits(x)} {unit}", lo, hi, digits)


def percent_ci(x: float | None, lo: float | None = None, hi: float | None = None, places: int = 1) -> str:
    """A fraction as a percentage with its confidence interval: '93.2% [91.0–95.1]'."""
    if is_missing(x):
        return MISSING

    def digits(v: float) -> str:
        return f"{v * 100:.{places}f}"

    return _with_interval(percent(x, places), lo, hi, digits)


def si(value: float, unit: str) -> str:
    """3 significant figures with a decimal prefix (k, M, G, T): 8.1e10, 'B' -> '81 GB'."""
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:,.3g} {prefix}{unit}"
    return f"{value:,.3g} {unit}"
