"""What the machine is: accelerators, memory tiers, links, peaks, derates and prices."""

from hardware.catalog import UnknownNameError, hardware_names, load_hardware
from hardware.spec import (
    BYTES_PER_ELEMENT,
    Accelerator,
    Efficiency,
    Link,
    MemoryTier,
    PeakFlops,
    Power,
    Price,
)

__all__ = [
    "BYTES_PER_ELEMENT",
    "Accelerator",
    "Efficiency",
    "Link",
    "MemoryTier",
    "PeakFlops",
    "Power",
    "Price",
    "UnknownNameError",
    "hardware_names",
    "load_hardware",
]
