"""The hardware designer's knobs and answer, for its page: each knob's slider range, label and
help in display units, the knob values read back as `dashboard.whatif.Knobs`, and the answer table's
cells with the change column's colour, the "does not fit" alerts and the note on a change of
parallelism the knobs forced. The numbers are `dashboard.whatif`'s; here they are only laid out."""

from __future__ import annotations

import math

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.components import labelled
from dashboard.whatif import Knobs, blocked, knobs_of, max_context_tokens, onchip_tier
from hardware import load_hardware
from sim.cost.parallelism import Parallelism
from sim.format import MISSING, count, interval, seconds_significant, usd

# knob -> (query key, unit label, scale from SI)
KNOBS = {
    "memory_capacity_bytes": ("mem_gb", "GB", 1e9),
    "memory_bandwidth_bytes_per_s": ("bw_tbs", "TB/s", 1e12),
    "peak_bf16_flops_per_s": ("tflops", "TFLOP/s", 1e12),
    "sram_bytes": ("sram_mb", "MB", 1e6),
    "scale_up_bytes_per_s": ("link_gbs", "GB/s", 1e9),
}


KNOB_LABELS = {
    "memory_capacity_bytes": "{tier} capacity",
    "memory_bandwidth_bytes_per_s": "{tier} bandwidth",
    "peak_bf16_flops_per_s": "peak bf16 FLOP/s (other dtypes scale with it)",
    "sram_bytes": "on-chip SRAM ({sram}) as a weight store",
    "scale_up_bytes_per_s": "scale-up link bandwidth (per direction)",
}


METRICS = [
    ("devices", "devices (tp x pp, other degrees)"),
    ("fits", "fits"),
    ("ttft", "TTFT"),
    ("tpot", "TPOT"),
    ("max_context", "max context (tokens)"),
    ("max_batch", "max batch at this context"),
    ("cost_1m", "$ / 1M output tokens"),
    ("cost_request", "$ / request"),
]


def knob_slider(knob: str, value_si: float | None) -> dict:
    """Slider settings for one knob from a quarter to four times its preset value, in steps of a
    hundredth of the preset's leading digit (so the preset's own value lies on a step)."""
    _, _unit, scale = KNOBS[knob]
    if value_si is None:
        return {"min": 0, "max": 1, "step": 1, "value": 0, "disabled": True, "marks": None}
    preset = value_si / scale
    step = 10.0 ** (math.floor(math.log10(preset)) - 2)
    lo, hi = step * max(1, round(preset / 4 / step)), step * round(preset * 4 / step)
    marks = {float(v): f"{v:g}" for v in (lo, preset, hi)}
    return {"min": lo, "max": hi, "step": step, "value": preset, "disabled": False, "marks": marks}


def knob_label(knob: str, hw) -> str:
    sram = onchip_tier(hw)
    if knob == "sram_bytes" and sram is None:
        return "on-chip SRAM: none above the main tier"
    return KNOB_LABELS[knob].format(tier=hw.main_tier.name.upper(), sram=sram.name if sram else "")


def sram_help(hw) -> str:
    """What the SRAM knob does on this device, in a sentence or two."""
    sram, main = onchip_tier(hw), hw.main_tier
    if sram is None:
        if main.name.lower() == "sram":
            return (
                f"{hw.name} keeps weights and KV in its on-chip SRAM, which is already its main tier: "
                "turn its capacity and bandwidth above instead."
            )
        tier = main.name.upper()
        return f"{hw.name}'s preset lists no on-chip tier above {tier}, so there is none to grow."
    fast, slow = sram.bandwidth_bytes_per_s / 1e12, main.bandwidth_bytes_per_s / 1e12
    return (
        f"The designer treats {hw.name}'s {sram.name} ({sram.capacity_bytes / 1e6:,.0f} MB at {fast:,.3g} "
        f"TB/s) as a store for weights: as many weight bytes as fit are read from it, the rest from "
        f"{main.name.upper()} ({slow:,.3g} TB/s); KV stays in {main.name.upper()}. Grow it and decode "
        "speeds up once a good share of the weights fits."
    )


def knobs_from(hw, values) -> Knobs:
    """Slider values (display units) as `Knobs`; a disabled knob keeps the preset's value."""
    preset = knobs_of(hw)
    fields = {}
    for (knob, (_, _, scale)), value in zip(KNOBS.items(), values, strict=True):
        was = getattr(preset, knob)
        unchanged = was is None or value is None or math.isclose(value * scale, was, rel_tol=1e-9)
        fields[knob] = was if unchanged else value * scale
    return Knobs(**fields)


def split_text(par: Parallelism) -> str:
    """tp x pp, with any other degree above 1 after them."""
    extra = [f"{k} {getattr(par, k)}" for k in ("attention_dp", "ep", "cp") if getattr(par, k) > 1]
    return " x ".join([f"{par.tp} x {par.pp}", *extra])


LOWER_IS_BETTER = {"devices", "ttft", "tpot", "cost_1m", "cost_request"}
"""The metrics that improve as they fall; the others (context, batch) improve as they grow."""


def change_text(new: float | None, old: float | None) -> str:
    if (
        new is None
        or old is None
        or old == 0
        or any(isinstance(v, float) and math.isnan(v) for v in (new, old))
    ):
        return ""
    return f"{(new / old - 1) * 100:+.1f}%"


def change_class(key: str, new: float | None, old: float | None) -> str:
    """The change cell's colour: green where the modified device is better, red where worse,
    grey where there is no change to speak of (under 0.05%) or nothing to compare."""
    text = change_text(new, old)
    if text in ("", "+0.0%", "-0.0%"):
        return "text-muted"
    better = (new < old) == (key in LOWER_IS_BETTER)
    return "text-success fw-semibold" if better else "text-danger fw-semibold"


def answer_cells(ans) -> dict:
    """Each metric's (text, value). A design point that does not fit has its devices and "no", and
    no latency, capacity or cost."""
    e = ans.estimate
    cells = {
        "devices": (f"{ans.par.devices} ({split_text(ans.par)})", ans.par.devices),
        "fits": ("yes" if e.fits else "no", None),
    }
    if not e.fits:
        return cells | {key: (MISSING, None) for key, _ in METRICS if key not in cells}
    context = max_context_tokens(e)
    text = count(context)
    if context < e.max_context_tokens:  # the model's limit, not the KV pool, binds: say both
        text = f"{text} (model's limit; KV {count(e.max_context_tokens)})"
    return cells | {
        "ttft": (_banded(e.ttft_s, e.ttft_lo_s, e.ttft_hi_s), e.ttft_s),
        "tpot": (_banded(e.tpot_s, e.tpot_lo_s, e.tpot_hi_s), e.tpot_s),
        "max_context": (text, e.max_context_tokens),
        "max_batch": (count(e.max_batch_at_context), e.max_batch_at_context),
        "cost_1m": (usd(ans.cost_per_1m_output_tokens_usd), ans.cost_per_1m_output_tokens_usd),
        "cost_request": (usd(ans.cost_per_request_usd), ans.cost_per_request_usd),
    }


def _banded(value: float, lo: float | None, hi: float | None) -> str:
    """A latency with the serving stack's 80% interval after it, where the estimate carries one."""
    text = seconds_significant(value)
    return text if lo is None or hi is None else f"{text} {interval(lo, hi, seconds_significant)}"


def cost_note(before, after) -> str:
    """What the answer's dollars are on (each device's basis, once where they agree) and which stack
    serves it, with what its bracket means."""
    bases = list(dict.fromkeys(a.cost_basis for a in (before, after) if a.cost_basis))
    band = (
        "; [lo–hi]: the stack's 80% interval from held-out measurements"
        if after.estimate.ttft_lo_s is not None
        else ""
    )
    return f"$ on {' / '.join(bases) or 'no price'} · stack {after.estimate.stack or 'none'}{band}"


def fit_alerts(before, after, modified: bool) -> list:
    """The "does not fit: why" of the design point shown (and of the preset, when only it fails)."""
    out = []
    why = blocked(after)
    if why:
        out.append(dbc.Alert(f"does not fit: {why}", color="danger", className="py-2 mb-2"))
    was = blocked(before)
    if modified and was and was != why:
        out.append(dbc.Alert(f"the preset does not fit: {was}", color="warning", className="small py-1 mb-2"))
    return out


def par_note(before, after, alone) -> dbc.Alert | None:
    """Where the knobs changed the fewest devices that fit: that change, apart from what the
    hardware alone does on the preset's split (nothing where the modified device does not fit)."""
    if before.par == after.par or blocked(after):
        return None
    text = [
        html.Strong("parallelism changed: "),
        f"the modified device runs on {after.par.devices} ({split_text(after.par)}) where the preset "
        f"needs {before.par.devices} ({split_text(before.par)}), so the change column mixes the hardware "
        "with the change of split. ",
    ]
    if alone is None or blocked(before):
        return dbc.Alert(text, color="info", className="small py-1 mb-2", id="designer-par-alert")
    if (why := blocked(alone)) is not None:
        text.append(f"On the preset's {split_text(before.par)} the modified device does not fit: {why}.")
    else:
        old, new = answer_cells(before), answer_cells(alone)
        effects = ", ".join(
            f"{label} {change_text(new[key][1], old[key][1])}"
            for key, label in (("ttft", "TTFT"), ("tpot", "TPOT"), ("cost_1m", "$ / 1M output tokens"))
        )
        text.append(f"The hardware alone, on the preset's {split_text(before.par)}: {effects}.")
    return dbc.Alert(text, color="info", className="small py-1 mb-2", id="designer-par-alert")


def knob_controls(hw, query: dict) -> list:
    """One slider per knob around the preset's value, set to the shared link's value when it has one,
    with a box beside it that applies a typed value on Enter (or on leaving the box)."""
    preset = knobs_of(hw)
    sliders = []
    for knob, (key, unit, _scale) in KNOBS.items():
        spec = knob_slider(knob, getattr(preset, knob))
        wanted = _float(query.get(key))
        if wanted is not None and not spec["disabled"]:
            spec["value"] = min(max(wanted, spec["min"]), spec["max"])
        label = html.Span(knob_label(knob, hw), id=f"designer-{key}-label")
        if knob == "sram_bytes":
            label = html.Span(
                [label, dbc.Badge("?", id="designer-sram-info", pill=True, color="info", className="ms-1")]
            )
        slider = dcc.Slider(
            id=f"designer-{key}",
            min=spec["min"],
            max=spec["max"],
            step=spec["step"],
            value=spec["value"],
            marks=spec["marks"],
            disabled=spec["disabled"],
            tooltip={"placement": "bottom"},
            allow_direct_input=False,
        )
        box = dbc.Input(
            id=f"designer-{key}-box",
            type="number",
            value=spec["value"] if not spec["disabled"] else None,
            step="any",
            disabled=spec["disabled"],
            debounce=True,
            size="sm",
            placeholder=unit,
        )
        row = dbc.Row([dbc.Col(slider, width=8), dbc.Col(box, width=4)], className="g-1 align-items-start")
        sliders.append(labelled(label, row, help_text=unit))
    sliders.append(html.Div(sram_help(hw), id="designer-sram-help", className="form-text small mb-2"))
    sliders.append(
        dbc.Tooltip(sram_help(hw), target="designer-sram-info", placement="right", id="designer-sram-tip")
    )
    return sliders


SLIDER_PROPS = ("min", "max", "step", "marks", "disabled")


def move_knob(knob: str, hw_name: str, box, slider, lo, hi, disabled, triggered: str | None) -> list:
    """One knob's slider (range, step, marks, disabled, value), box (value, disabled) and label.
    A new preset puts the knob back on the preset's value with a range around it; a slider move
    shows in the box; a value typed in the box (applied on Enter) moves the slider, clamped to its
    range; an empty or unreadable box shows the slider's value again."""
    key = KNOBS[knob][0]
    keep = [dash.no_update] * len(SLIDER_PROPS)
    if triggered == "designer-hardware":
        hw = load_hardware(hw_name)
        spec = knob_slider(knob, getattr(knobs_of(hw), knob))
        value = None if spec["disabled"] else spec["value"]
        slider_props = [spec[p] for p in SLIDER_PROPS]
        return [*slider_props, spec["value"], value, spec["disabled"], knob_label(knob, hw)]
    if triggered == f"designer-{key}":
        return [*keep, dash.no_update, None if disabled else slider, dash.no_update, dash.no_update]
    if disabled:
        return [*keep, lo, dash.no_update, dash.no_update, dash.no_update]
    if not isinstance(box, int | float) or not math.isfinite(box):
        return [*keep, dash.no_update, slider, dash.no_update, dash.no_update]
    value = min(max(float(box), lo), hi)
    return [*keep, value, value if value != box else dash.no_update, dash.no_update, dash.no_update]


def _float(text) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None
