"""Human units in, SI out.

Files say "80 GB", "3.35 TB/s", "400 Gb/s", "989 TFLOPS" or "50ms"; everything inside ctxsim is bytes,
bytes per second, FLOP per second and seconds. Decimal prefixes are powers of 1000, binary ones
(KiB, MiB, GiB, TiB) powers of 1024; a lower-case `b` means bits. A bare number is taken as already SI.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z/µ]*)\s*$")
_DECIMAL = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}

# kind -> (unit regex, how to read the prefix and the base unit)
_TIME = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0}


def _split(text: str) -> tuple[float, str]:
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a number or a quantity such as '80 GB'")
    match = _NUMBER.match(text)
    if not match:
        raise ValueError(f"cannot read {text!r} as a number with a unit")
    return float(match.group(1)), match.group(2)


def _prefixed(unit: str, bases: dict[str, float]) -> float | None:
    """Scale for `unit` = optional SI or binary prefix + one of `bases`; None if it does not parse."""
    for base, scale in bases.items():
        if unit == base:
            return scale
        if unit.endswith(base):
            prefix = unit[: -len(base)]
            if prefix in _BINARY:
                return _BINARY[prefix] * scale
            if prefix in _DECIMAL:
                return _DECIMAL[prefix] * scale
    return None


def parse_bytes(value: str | float | int) -> float:
    """'80 GB' -> 8e10, '80 GiB' -> 85899345920, '4 Gb' -> 5e8 (bits)."""
    return _parse(value, {"B": 1.0, "b": 0.125}, "a size such as '80 GB' or '192 GiB'")


def parse_bandwidth(value: str | float | int) -> float:
    """'3.35 TB/s' -> 3.35e12 bytes/s; '400 Gb/s' (bits) -> 5e10 bytes/s; 'GBps' is accepted."""
    bases = {"B/s": 1.0, "Bps": 1.0, "b/s": 0.125, "bps": 0.125}
    return _parse(value, bases, "a bandwidth such as '3.35 TB/s' or '400 Gb/s'")


def parse_flops(value: str | float | int) -> float:
    """'989 TFLOPS' -> 9.89e14 FLOP/s; 'TOPS' (integer ops) is read the same way."""
    bases = {"FLOPS": 1.0, "FLOP/s": 1.0, "flops": 1.0, "OPS": 1.0, "ops": 1.0}
    return _parse(value, bases, "a rate such as '989 TFLOPS'")


def parse_seconds(value: str | float | int) -> float:
    """'50ms' -> 0.05, '2s' -> 2.0, '5us' -> 5e-6."""
    return _read(value, _TIME.get, "a duration such as '50ms' or '2s'", kind="a duration")


def parse_watts(value: str | float | int) -> float:
    """'700 W' -> 700.0, '1.2 kW' -> 1200.0."""
    return _parse(value, {"W": 1.0}, "a power such as '700 W'")


def _parse(value: str | float | int, bases: dict[str, float], example: str) -> float:
    """`value` in units of `bases`, each of which may carry an SI or binary prefix."""
    return _read(value, lambda unit: _prefixed(unit, bases), example, kind=example)


def _read(
    value: str | float | int, scale_of: Callable[[str], float | None], example: str, kind: str
) -> float:
    """`value` in SI: a number as it is, a string as its number times `scale_of(unit)` (None for a unit
    this quantity does not have; the message then shows `example`). A bool is refused as not `kind`
    rather than read as 0 or 1."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not {kind}")
    if isinstance(value, int | float):
        return float(value)
    number, unit = _split(value)
    if unit == "":
        return number
    scale = scale_of(unit)
    if scale is None:
        raise ValueError(f"cannot read {value!r} as {example}")
    return number * scale
