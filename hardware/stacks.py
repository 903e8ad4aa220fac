"""Serving-stack profiles: what a serving framework adds to the bare hardware, and how far off that is.

A datasheet says what the silicon could do; a serving stack (vLLM, SGLang, TensorRT-LLM) decides how
much of it a request sees. Think of the stack as the kitchen's way of working: the same cooks and
pantries, but one kitchen plates every order as it comes while another batches them, and each loses
some time between dishes. A profile (`hardware/stacks/<name>.yaml`) holds, in the hardware file's own
schema (`hardware.spec.Efficiency`):

- efficiency curves, as fractions of peak keyed by the work one kernel call does (so they carry over
  to a device with other peaks), and the fixed overhead per kernel call; in `device_curves`, the
  same measured on particular devices, which a device of that name takes instead; and
  `other_vendors`, the fraction of those efficiencies the stack reaches on other vendors' parts;
- the stack's overhead per step (scheduling, launch gaps) and per sequence a step runs (inputs,
  sampling, detokenising and streaming each request's token), the fraction of the link's
  benchmarked bandwidth its all-reduces reach, the speed of its grouped expert GEMMs against a dense
  GEMM, and its all-reduce latency per hop and algorithm on the scale-up link;
- what the stack supports, which public data it was fitted on and how the fit was split;
- `uncertainty`: for each metric and regime, an 80% prediction interval of measured / predicted
  from rows no fit read (order statistics, `sim.fidelity.stacks.prediction_interval`), so a
  prediction `x` comes with the interval [lo x, hi x].

`apply_stack` puts a profile on a device. The rule: a device whose efficiencies were measured
(`efficiency.calibration`, which `ctxsim calibrate` sets and profiles never carry) keeps its measured
curves and scalars and takes only the stack's overheads (per step and sequence, all-reduce bandwidth
fraction, grouped GEMMs); any other device (a datasheet preset) takes the whole efficiency block. Either way
the scale-up link takes the stack's latency per hop and algorithm. A stack replaces the fields it
owns and never multiplies, and the device records the stack's name: applying the stack a device
already carries changes nothing (a scenario written out and read back is not stacked twice), and a
device carrying one stack served with another ends as if it had never carried the first. `roofline`
sets every efficiency to 1 and every overhead and scale-up latency to 0, calibrated or not (so a
calibrated device served with it forgets its curves): the physical lower bound no prediction may go
under. `none` uses the hardware file as written.

A profile names the device `kinds` its stack runs on. A device of another kind is left as written
and takes none of the profile's bands (`served_by`): no GPU serving stack runs on a Groq LPU, whose
own compiler schedules every chip, so `typical` leaves an LPU's hardware file as it is; `roofline`
runs on every kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator

from hardware.base import Frozen
from hardware.catalog import load_preset, preset_names, unknown_name
from hardware.spec import Accelerator, Curves, Efficiency, Seconds

STACK_DIR = Path(__file__).parent / "stacks"
DEFAULT_STACK = "typical"
"""The profile a scenario, `estimate` and `plan` use when they name none."""
AS_GIVEN = "none"
"""The stack name that applies no profile: the hardware file's efficiencies as written."""

Metric = Literal["ttft", "tpot", "e2e", "throughput"]
Kind = Literal["gpu", "tpu", "lpu", "other"]
Regime = Literal["prefill", "decode", "serving", "all"]
Parts = Literal["any", "non-nvidia"]
"""Which devices a band was read from: every held-out row, or the rows on parts of other vendors
than NVIDIA, whose kernels no profile measured (its curves carry over from NVIDIA GPUs)."""
RowsOf = Literal["this stack", "every stack"]
"""Which stacks' held-out rows a band was read from (`Band.rows_of`)."""


def parts_of(vendor: str) -> Parts:
    """The band family a device of `vendor` reads first: its own when its kernels were carried over."""
    return "any" if vendor.strip().lower() in ("", "nvidia") else "non-nvidia"


KERNEL_CURVES = ("gemm", "gemm_fp8", "gemm_fp4", "attention", "memory", "attention_memory")


def derated(efficiency: Efficiency, fraction: float) -> Efficiency:
    """`efficiency` with its compute and memory legs (scalars and curves, not links or overheads) at
    `fraction` of what they were: kernels that reach only part of the fraction of peak they reach
    where they were measured."""
    if fraction == 1.0:
        return efficiency
    curves = {
        name: curve.model_copy(update={"efficiency": tuple(e * fraction for e in curve.efficiency)})
        for name in KERNEL_CURVES
        if (curve := getattr(efficiency.curves, name)) is not None
    }
    return efficiency.model_copy(
        update={
            "compute": efficiency.compute * fraction,
            "memory": efficiency.memory * fraction,
            "curves": efficiency.curves.model_copy(update=curves),
        }
    )


class Supports(Frozen):
    """What the stack does by default; informational: a scenario's scheduler still says what runs."""

    chunked_prefill: bool
    cuda_graphs: bool
    prefix_caching: bool
    source: str = ""


class Band(Frozen):
    """The spread of measured / predicted for one metric family in one regime, over held-out rows:
    `lo` and `hi` the edges of its 80% prediction interval, `rows` how many rows they were read from, and the
    median absolute error (%) of those rows. `rows_of` says whose rows: the profile's own stack's, or,
    for a metric its own stack has too few held-out rows of, every stack's (the profile's predictions of
    them: wider, since it carries the differences between stacks as error too)."""

    metric: Metric
    regime: Regime
    parts: Parts = "any"
    rows_of: RowsOf = "this stack"
    lo: float = Field(gt=0)
    hi: float = Field(gt=0)
    rows: int = Field(ge=1)
    median_abs_error_pct: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.lo > self.hi:
            raise ValueError(f"{self.metric}/{self.regime}: lo ({self.lo}) is above hi ({self.hi})")
        return self


class FittedOn(Frozen):
    """Where a profile's numbers came from: the public sources, how many rows the fit read and how
    many rows (never read by it) its error and bands were measured on, and how the two were split."""

    sources: tuple[str, ...] = ()
    fit_rows: int = Field(default=0, ge=0)
    scored_rows: int = Field(default=0, ge=0)
    split: str = ""


class DeviceCurves(Frozen):
    """The stack's kernel efficiencies measured on one device (a kernel calibration, as in
    `Efficiency`): what a device of that name takes instead of the profile's own curves, which were
    measured on another device and carry over only as fractions of peak."""

    compute: float = Field(default=1.0, gt=0, le=1)
    memory: float = Field(default=1.0, gt=0, le=1)
    link: float = Field(default=1.0, gt=0, le=1)
    op_overhead_s: Seconds = Field(default=0.0, ge=0)
    curves: Curves = Curves()
    source: str = ""


class StackProfile(Frozen):
    name: str
    description: str
    versions: tuple[str, ...] = ()
    efficiency: Efficiency = Efficiency()
    device_curves: dict[str, DeviceCurves] = Field(default_factory=dict)
    """Kernel efficiencies measured on particular devices, by hardware name (`Accelerator.name`)."""
    other_vendors: float = Field(default=1.0, gt=0, le=1)
    """The fraction of the curves' efficiencies that the stack's kernels reach on a part of another
    vendor than NVIDIA (`parts_of`), whose kernels no table measured: fitted on such rows."""
    keep_measured_curves: bool = True
    scale_up_latency_s: Seconds = Field(ge=0)
    scale_up_algorithm: Literal["ring", "tree"]
    kinds: tuple[Kind, ...] = Field(default=("gpu", "tpu", "other"), min_length=1)
    supports: Supports | None = None
    fitted_on: FittedOn = FittedOn()
    uncertainty: tuple[Band, ...] = ()
    transfer: str = ""
    sources: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _no_calibration(self) -> Self:
        """A profile's curves describe a stack, not one measured device: where they were measured is
        `fitted_on`, and `apply_stack` reads `calibration` as "this device was measured"."""
        if self.efficiency.calibration is not None:
            raise ValueError("efficiency.calibration: a stack profile records its data in fitted_on")
        return self

    def band(self, metric: Metric, regime: Regime, vendor: str = "") -> Band | None:
        """The band for `metric` in `regime`, else the metric's band over all regimes, else None. On
        a device of another vendor than NVIDIA (`parts_of`), that vendor family's bands come first:
        an extrapolation is scored on rows that were extrapolations too."""
        families = dict.fromkeys((parts_of(vendor), "any"))
        for parts in families:
            for want in (regime, "all"):
                for b in self.uncertainty:
                    if b.metric == metric and b.regime == want and b.parts == parts:
                        return b
        return None

    def interval(
        self, value: float, metric: Metric, regime: Regime, vendor: str = ""
    ) -> tuple[float, float] | None:
        """The 80% interval [lo x value, hi x value] of a predicted `value`, or None without a band."""
        b = self.band(metric, regime, vendor)
        return None if b is None else (value * b.lo, value * b.hi)


def stack_names() -> list[str]:
    """The shipped profiles, and `none`."""
    return [*preset_names(STACK_DIR), AS_GIVEN]


def load_stack(name_or_path: str | Path) -> StackProfile | None:
    """A shipped profile by name, or a profile YAML file; None for `none` (no profile)."""
    if str(name_or_path).lower() == AS_GIVEN:
        return None
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml") and str(name_or_path).lower() not in preset_names(STACK_DIR):
        raise unknown_name("stack", str(name_or_path), stack_names())
    return load_preset(name_or_path, StackProfile, "stack", STACK_DIR)


def apply_stack(hw: Accelerator, stack: StackProfile | None) -> Accelerator:
    """`hw` as served by `stack` (see the module docstring for the rule); `hw` itself when `stack`
    is None or `hw` already carries it."""
    if stack is None or hw.efficiency.stack == stack.name or hw.kind not in stack.kinds:
        return hw
    if hw.efficiency.calibration is not None and stack.keep_measured_curves:
        own = ("step_overhead_s", "seq_overhead_s", "moe_gemm", "collective")
        efficiency = hw.efficiency.model_copy(
            update={**{k: getattr(stack.efficiency, k) for k in own}, "stack": stack.name}
        )
    else:
        measured = stack.device_curves.get(hw.name)
        fields = ("compute", "memory", "link", "op_overhead_s", "curves")
        own = {k: getattr(measured, k) for k in fields} if measured is not None else {}
        efficiency = stack.efficiency.model_copy(update={**own, "stack": stack.name})
        if measured is None and parts_of(hw.vendor) == "non-nvidia":
            efficiency = derated(efficiency, stack.other_vendors)
    update: dict = {"efficiency": efficiency}
    if hw.scale_up is not None:
        link = {"latency_s": stack.scale_up_latency_s, "algorithm": stack.scale_up_algorithm}
        update["scale_up"] = hw.scale_up.model_copy(update=link)
    return hw.model_copy(update=update)


def served_by(hw: Accelerator, stack: StackProfile | None) -> StackProfile | None:
    """`stack` when `hw` is served by it (carries its name), else None: a device of a kind the stack
    does not run on was left as written by `apply_stack`, and the stack's bands say nothing of it."""
    return stack if stack is not None and hw.efficiency.stack == stack.name else None
