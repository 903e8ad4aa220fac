"""How numbers read to a person, in one place for the CLI, the HTML reports and the dashboard.

Each function turns one kind of quantity into text; a missing value (None or NaN) reads as a dash.
Where two views print the same quantity differently on purpose (a terminal table to the cent, a
dashboard card to four significant figures), the difference is a parameter or a second, named
function here, so every view picks its style from this one set.
"""

from __future__ import annotations

import math
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


def si(value: float, unit: str) -> str:
    """3 significant figures with a decimal prefix (k, M, G, T): 8.1e10, 'B' -> '81 GB'."""
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:,.3g} {prefix}{unit}"
    return f"{value:,.3g} {unit}"
