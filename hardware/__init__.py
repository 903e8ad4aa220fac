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
from hardware.stacks import DEFAULT_STACK, StackProfile, apply_stack, load_stack, stack_names

__all__ = [
    "BYTES_PER_ELEMENT",
    "DEFAULT_STACK",
    "Accelerator",
    "Efficiency",
    "Link",
    "MemoryTier",
    "PeakFlops",
    "Power",
    "Price",
    "StackProfile",
    "UnknownNameError",
    "apply_stack",
    "hardware_names",
    "load_hardware",
    "load_stack",
    "stack_names",
]
