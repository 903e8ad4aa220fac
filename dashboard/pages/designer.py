"""Hardware designer: start from a preset, turn its knobs, and compare with the untouched preset.

Every number comes from `sim.cost.estimate` through `dashboard.whatif`, and the cost curve from
`sim.studies.costcurve` (as `ctxsim cost-curve` draws it); the callbacks only read the controls, call
those functions and format what comes back.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict
from functools import lru_cache

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, dcc, html

from dashboard import figures
from dashboard.components import (
    figure_card,
    figure_id,
    labelled,
    page_url,
    share_box,
)
from dashboard.whatif import (
    Knobs,
    answer,
    apply_knobs,
    knobs_of,
    onchip_tier,
    roof,
    roofline_points,
)
from hardware import hardware_names, load_hardware
from sim.cost.parallelism import Parallelism
from sim.format import count, seconds_significant, usd
from sim.studies.costcurve import Jump, cost_curve
from workloads import load_model, model_names

dash.register_page(__name__, path="/", name="Hardware designer", order=0)

DEFAULTS = {
    "hardware": "h100-sxm",
    "model": "llama-3.1-70b",
    "kv": "model",
    "devices": "auto",
    "prompt": 32_768,
    "output": 512,
    "batch": 1,
}
KV_DTYPES = ["model", "bf16", "fp8", "int8", "fp4", "int4"]
DEVICE_CHOICES = [
    "auto", "1", "2", "4", "8", "16", "32",
    "tp8-pp2", "tp8-pp4", "tp8-cp4", "tp8-cp16", "dp8-ep8", "dp32-ep32", "dp72-ep72",
]
"""How a replica splits the model: tp alone (beyond 8 a tp group outgrows an HGX board), or tp with
pipeline (pp) or context (cp) parallelism, or data-parallel attention (dp) with expert parallelism
(ep) for MoE models."""
DEGREE_NAMES = {"tp": "tp", "pp": "pp", "cp": "cp", "ep": "ep", "dp": "attention_dp"}
CURVE_CONTEXT = (1_000, 10_000_000)  # the prompt slider's range
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
    "sram_bytes": "on-chip SRAM ({sram}; holds weights first, the rest in {tier})",
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


def _query_float(query: dict, key: str) -> float | None:
    try:
        return float(query[key]) if key in query else None
    except ValueError:
        return None


def _query_int(query: dict, key: str, default: int) -> int:
    try:
        return max(1, int(float(query.get(key, default))))
    except ValueError:
        return default


def _sliders(hw, query: dict) -> list:
    """One slider per knob around the preset's value, set to the shared link's value when it has one."""
    preset = knobs_of(hw)
    sliders = []
    for knob, (key, unit, _scale) in KNOBS.items():
        spec = knob_slider(knob, getattr(preset, knob))
        wanted = _query_float(query, key)
        if wanted is not None and not spec["disabled"]:
            spec["value"] = min(max(wanted, spec["min"]), spec["max"])
        sliders.append(
            labelled(
                html.Span(_knob_label(knob, hw), id=f"designer-{key}-label"),
                dcc.Slider(
                    id=f"designer-{key}",
                    min=spec["min"],
                    max=spec["max"],
                    step=spec["step"],
                    value=spec["value"],
                    marks=spec["marks"],
                    disabled=spec["disabled"],
                    tooltip={"placement": "bottom"},
                ),
                help_text=unit,
            )
        )
    return sliders


def _device_row(kv: str, devices: str) -> dbc.Row:
    """KV cache dtype and the replica's split (or the fewest devices that fit)."""
    return dbc.Row(
        [
            dbc.Col(labelled("KV dtype", dcc.Dropdown(KV_DTYPES, kv, id="designer-kv", clearable=False))),
            dbc.Col(
                labelled(
                    "parallelism",
                    dcc.Dropdown(
                        [{"label": _device_label(d), "value": d} for d in DEVICE_CHOICES],
                        devices,
                        id="designer-devices",
                        clearable=False,
                    ),
                )
            ),
        ]
    )


def _workload_controls(prompt: int, output: int, batch: int) -> list:
    """Prompt length on a log slider with its exact box, output tokens and batch."""
    return [
        labelled(
            "prompt tokens (context)",
            dcc.Slider(
                id="designer-prompt-log",
                min=3,
                max=7,
                step=0.05,
                value=round(math.log10(prompt), 2),
                marks={e: f"{10**e:,.0f}" for e in range(3, 8)},
                allow_direct_input=False,
            ),
        ),
        dbc.Row(
            [
                dbc.Col(
                    labelled(
                        "prompt tokens",
                        dbc.Input(
                            id="designer-prompt", type="number", min=1, step=1, value=prompt, debounce=True
                        ),
                    )
                ),
                dbc.Col(
                    labelled(
                        "output tokens",
                        dbc.Input(
                            id="designer-output", type="number", min=1, step=1, value=output, debounce=True
                        ),
                    )
                ),
                dbc.Col(
                    labelled(
                        "batch",
                        dbc.Input(
                            id="designer-batch", type="number", min=1, step=1, value=batch, debounce=True
                        ),
                    )
                ),
            ]
        ),
    ]


def _answer_table() -> dbc.Table:
    """Preset, modified and change columns for each metric, filled by `update_answer`."""
    return dbc.Table(
        [
            html.Thead(html.Tr([html.Th(""), html.Th("preset"), html.Th("modified"), html.Th("change")])),
            html.Tbody(
                [
                    html.Tr(
                        [
                            html.Td(label),
                            html.Td(id=f"designer-{key}-preset"),
                            html.Td(id=f"designer-{key}-modified", className="fw-semibold"),
                            html.Td(id=f"designer-{key}-change", className="text-muted"),
                        ]
                    )
                    for key, label in METRICS
                ]
            ),
        ],
        size="sm",
        bordered=False,
        hover=True,
        className="mb-2",
    )


def layout(**query):
    """The page, with controls set from a shared link's query (unknown values fall back to defaults)."""
    hw_name = query.get("hardware") if query.get("hardware") in hardware_names() else DEFAULTS["hardware"]
    model = query.get("model") if query.get("model") in model_names() else DEFAULTS["model"]
    kv = query.get("kv") if query.get("kv") in KV_DTYPES else DEFAULTS["kv"]
    devices = query.get("devices") if query.get("devices") in DEVICE_CHOICES else DEFAULTS["devices"]
    prompt = _query_int(query, "prompt", DEFAULTS["prompt"])
    output = _query_int(query, "output", DEFAULTS["output"])
    batch = _query_int(query, "batch", DEFAULTS["batch"])
    hw = load_hardware(hw_name)
    controls = [
        labelled("preset", dcc.Dropdown(hardware_names(), hw_name, id="designer-hardware", clearable=False)),
        labelled("model", dcc.Dropdown(model_names(), model, id="designer-model", clearable=False)),
        _device_row(kv, devices),
        *_workload_controls(prompt, output, batch),
        html.H6("knobs", className="mt-3"),
        *_sliders(hw, query),
    ]
    table = _answer_table()
    return dbc.Row(
        [
            dbc.Col(dbc.Card(dbc.CardBody(controls)), md=4),
            dbc.Col(
                [
                    html.Div(id="designer-error"),
                    dbc.Card(
                        dbc.CardBody(
                            [
                                html.H5("Analytic answer", className="card-title"),
                                table,
                                html.Div(id="designer-note", className="small text-muted"),
                            ]
                        ),
                        className="mb-3",
                    ),
                    share_box("designer-link"),
                    figure_card("designer-roofline"),
                    figure_card("designer-cost-curve"),
                    dcc.Store(id="designer-preset-curve"),
                ],
                md=8,
            ),
        ]
    )


def _knob_label(knob: str, hw) -> str:
    sram = onchip_tier(hw)
    if knob == "sram_bytes" and sram is None:
        return f"on-chip SRAM: {hw.main_tier.name.upper()} is already the main tier"
    return KNOB_LABELS[knob].format(tier=hw.main_tier.name.upper(), sram=sram.name if sram else "")


KNOB_INPUTS = [Input(f"designer-{key}", "value") for key, _, _ in KNOBS.values()]


@callback(
    [
        Output(f"designer-{key}", prop)
        for key, _, _ in KNOBS.values()
        for prop in ("min", "max", "step", "value", "marks", "disabled")
    ]
    + [Output(f"designer-{key}-label", "children") for key, _, _ in KNOBS.values()],
    Input("designer-hardware", "value"),
    prevent_initial_call=True,
)
def reset_knobs(hw_name):
    """A new preset puts every knob back on the preset's value, with ranges around it."""
    hw = load_hardware(hw_name)
    preset = knobs_of(hw)
    out = []
    for knob in KNOBS:
        spec = knob_slider(knob, getattr(preset, knob))
        out += [spec[p] for p in ("min", "max", "step", "value", "marks", "disabled")]
    return out + [_knob_label(knob, hw) for knob in KNOBS]


@callback(
    Output("designer-prompt", "value"),
    Output("designer-prompt-log", "value"),
    Input("designer-prompt", "value"),
    Input("designer-prompt-log", "value"),
    prevent_initial_call=True,
)
def sync_prompt(tokens, log_tokens):
    """The log slider and the exact box move together; the box is what the answers use."""
    if dash.ctx.triggered_id == "designer-prompt-log":
        return round(10**log_tokens), dash.no_update
    if not tokens or tokens < 1:
        return dash.no_update, dash.no_update
    return dash.no_update, round(math.log10(tokens), 2)


def knobs_from(hw, values) -> Knobs:
    """Slider values (display units) as `Knobs`; a disabled knob keeps the preset's value."""
    preset = knobs_of(hw)
    fields = {}
    for (knob, (_, _, scale)), value in zip(KNOBS.items(), values, strict=True):
        was = getattr(preset, knob)
        unchanged = was is None or value is None or math.isclose(value * scale, was, rel_tol=1e-9)
        fields[knob] = was if unchanged else value * scale
    return Knobs(**fields)


def _model(name: str, kv: str):
    return load_model(name).with_dtypes(None, None if kv == "model" else kv)


def _par(devices: str) -> Parallelism | None:
    """The split a DEVICE_CHOICES value names (None: the fewest devices that fit)."""
    if devices == "auto":
        return None
    if devices.isdigit():
        return Parallelism(int(devices), 1)
    degrees = {DEGREE_NAMES[k]: int(v) for k, v in re.findall(r"([a-z]+)(\d+)", devices)}
    return Parallelism(**degrees)


def _device_label(choice: str) -> str:
    if choice == "auto":
        return "fewest devices that fit"
    if choice.isdigit():
        return f"tp={choice}"
    return " x ".join(f"{DEGREE_NAMES[k]}={v}" for k, v in re.findall(r"([a-z]+)(\d+)", choice))


def _split_text(par: Parallelism) -> str:
    """tp x pp, with any other degree above 1 after them."""
    extra = [f"{k} {getattr(par, k)}" for k in ("attention_dp", "ep", "cp") if getattr(par, k) > 1]
    return " x ".join([f"{par.tp} x {par.pp}", *extra])


def _change(new: float | None, old: float | None) -> str:
    if (
        new is None
        or old is None
        or old == 0
        or any(isinstance(v, float) and math.isnan(v) for v in (new, old))
    ):
        return ""
    return f"{(new / old - 1) * 100:+.1f}%"


def _cells(ans) -> dict:
    e = ans.estimate
    return {
        "devices": (f"{ans.par.devices} ({_split_text(ans.par)})", ans.par.devices),
        "fits": ("yes" if e.fits else "no", None),
        "ttft": (seconds_significant(e.ttft_s), e.ttft_s),
        "tpot": (seconds_significant(e.tpot_s), e.tpot_s),
        "max_context": (count(e.max_context_tokens), e.max_context_tokens),
        "max_batch": (count(e.max_batch_at_context), e.max_batch_at_context),
        "cost_1m": (usd(ans.cost_per_1m_output_tokens_usd), ans.cost_per_1m_output_tokens_usd),
        "cost_request": (usd(ans.cost_per_request_usd), ans.cost_per_request_usd),
    }


ANSWER_OUTPUTS = [
    Output(f"designer-{key}-{col}", "children")
    for key, _ in METRICS
    for col in ("preset", "modified", "change")
]


@callback(
    [
        *ANSWER_OUTPUTS,
        Output("designer-note", "children"),
        Output(figure_id("designer-roofline"), "figure"),
        Output("designer-link", "value"),
        Output("designer-error", "children"),
    ],
    Input("designer-hardware", "value"),
    Input("designer-model", "value"),
    Input("designer-kv", "value"),
    Input("designer-devices", "value"),
    Input("designer-prompt", "value"),
    Input("designer-output", "value"),
    Input("designer-batch", "value"),
    *KNOB_INPUTS,
)
def update_answer(hw_name, model_name, kv, devices, prompt, output, batch, *knob_values):
    """TTFT, TPOT, capacity and cost for the preset and the modified device, and the roofline."""
    none = [dash.no_update] * (len(ANSWER_OUTPUTS) + 3)
    if not all(isinstance(v, int | float) and v >= 1 for v in (prompt, output, batch)):
        return [
            *none,
            dbc.Alert("prompt, output and batch must be whole numbers of at least 1", color="warning"),
        ]
    prompt, output, batch = int(prompt), int(output), int(batch)
    base = load_hardware(hw_name)
    hw = apply_knobs(base, knobs_from(base, knob_values))
    model = _model(model_name, kv)
    try:
        before = answer(model, base, prompt, output, batch, _par(devices))
        after = answer(model, hw, prompt, output, batch, _par(devices))
        ops = roofline_points(model, hw, after.par, prompt, batch)
    except ValueError as exc:
        return [*none, dbc.Alert(str(exc), color="danger")]
    old, new = _cells(before), _cells(after)
    cells = []
    for key, _ in METRICS:
        cells += [old[key][0], new[key][0], _change(new[key][1], old[key][1])]
    note = after.estimate.reason or f"{model.name} fits on {after.par.devices} x {hw.name}"
    roofs = {hw.name: roof(hw, model.weight_dtype)}
    if hw is not base:
        roofs[base.name] = roof(base, model.weight_dtype)
    knob_query = {key: v for (key, _, _), v in zip(KNOBS.values(), knob_values, strict=True) if v is not None}
    link = page_url(
        "/",
        {
            "hardware": hw_name,
            "model": model_name,
            "kv": kv,
            "devices": devices,
            "prompt": prompt,
            "output": output,
            "batch": batch,
            **knob_query,
        },
    )
    return [*cells, note, figures.roofline(ops, roofs), link, None]


def _curve_data(model, hw, output: int, batch: int) -> dict:
    """`hw`'s cost curve over the prompt slider's range, batching up to `batch` requests, as JSON data
    for the page's store."""
    curve, jumps = cost_curve(model, [hw], output, *CURVE_CONTEXT, max_batch=batch)
    return {"curve": curve.to_dict("list"), "jumps": [asdict(j) for j in jumps]}


@callback(
    Output("designer-preset-curve", "data"),
    Input("designer-hardware", "value"),
    Input("designer-model", "value"),
    Input("designer-kv", "value"),
    Input("designer-output", "value"),
    Input("designer-batch", "value"),
)
def preset_curve(hw_name, model_name, kv, output, batch):
    """The untouched preset's cost curve; it changes only with the preset and the workload."""
    if not all(isinstance(v, int | float) and v >= 1 for v in (output, batch)):
        return dash.no_update
    return _preset_curve_data(hw_name, model_name, kv, int(output), int(batch))


@lru_cache(maxsize=256)
def _preset_curve_data(hw_name: str, model_name: str, kv: str, output: int, batch: int) -> dict:
    """A preset's cost curve as the page's store holds it (read, never changed). Presets do not
    change while the server runs, so a web worker draws each preset's curve for a workload once,
    however many users open the designer on it."""
    return {"hardware": hw_name, **_curve_data(_model(model_name, kv), load_hardware(hw_name), output, batch)}


@callback(
    Output(figure_id("designer-cost-curve"), "figure"),
    Input("designer-preset-curve", "data"),
    State("designer-hardware", "value"),
    State("designer-model", "value"),
    State("designer-kv", "value"),
    State("designer-output", "value"),
    State("designer-batch", "value"),
    *KNOB_INPUTS,
)
def update_cost_curve(preset, hw_name, model_name, kv, output, batch, *knob_values):
    """Cost per request against context on the modified device, beside the preset's."""
    if not preset or preset["hardware"] != hw_name:
        return dash.no_update
    base = load_hardware(hw_name)
    hw = apply_knobs(base, knobs_from(base, knob_values))
    model = _model(model_name, kv)
    curves = [pd.DataFrame(preset["curve"])]
    jumps = [Jump(**j) for j in preset["jumps"]]
    if hw is not base:
        mine = _curve_data(model, hw, int(output), int(batch))
        curves.insert(0, pd.DataFrame(mine["curve"]))
        jumps = [Jump(**j) for j in mine["jumps"]] + jumps
    return figures.cost_curve(pd.concat(curves, ignore_index=True), jumps, model.max_context_tokens)
