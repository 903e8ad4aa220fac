"""Hardware designer: start from a preset, turn its knobs, and compare with the untouched preset.

Every number comes from `sim.cost.estimate` through `dashboard.whatif`, and the cost curve from
`sim.studies.costcurve` (as `ctxsim cost-curve` draws it); the callbacks only read the controls, call
those functions and format what comes back. A design point that does not fit (weights and KV past the
devices' memory, or a prompt past the model's context) shows why instead of numbers; where the knobs
change the fewest devices that fit, the hardware's own effect is shown apart, on the preset's split.
Each knob has a box beside its slider that applies a typed value on Enter. The controls scroll in a
panel of their own, so the answer stays in view on a laptop screen.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict
from functools import lru_cache

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, Patch, State, callback, dcc, html

from dashboard import figures
from dashboard.components import (
    figure_card,
    figure_id,
    labelled,
    page_url,
    serving_controls,
    share_box,
)
from dashboard.designer_view import (
    KNOBS,
    METRICS,
    SLIDER_PROPS,
    answer_cells,
    change_class,
    change_text,
    cost_note,
    fit_alerts,
    knob_controls,
    knobs_from,
    move_knob,
    par_note,
    sram_help,
)
from dashboard.whatif import (
    BASIS_LABELS,
    answer,
    apply_knobs,
    blocked,
    cost_assumptions,
    on_preset_split,
    own_price,
    roof,
    roofline_points,
    served,
    stack_choices,
)
from hardware import hardware_names, load_hardware
from sim.cost.parallelism import Parallelism
from sim.scenario import CostAssumptions
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
    "stack": "typical",
    "basis": "cloud",
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
PANEL = {
    "position": "sticky",
    "top": "0.5rem",
    "maxHeight": "calc(100vh - 5rem)",
    "overflowY": "auto",
    "overflowX": "hidden",
}
"""The controls' panel: it scrolls on its own and stays put while the page scrolls, so on a laptop
screen (1366 x 768) every knob can be reached with the answer beside it still in view."""


def _query_int(query: dict, key: str, default: int) -> int:
    try:
        return max(1, int(float(query.get(key, default))))
    except ValueError:
        return default


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
    stack = query.get("stack") if query.get("stack") in stack_choices() else DEFAULTS["stack"]
    basis = query.get("basis") if query.get("basis") in BASIS_LABELS else DEFAULTS["basis"]
    hw = load_hardware(hw_name)
    controls = [
        labelled("preset", dcc.Dropdown(hardware_names(), hw_name, id="designer-hardware", clearable=False)),
        labelled("model", dcc.Dropdown(model_names(), model, id="designer-model", clearable=False)),
        _device_row(kv, devices),
        *_workload_controls(prompt, output, batch),
        serving_controls("designer", stack, basis, own_price(query.get("price"))),
        html.H6("knobs", className="mt-3"),
        *knob_controls(hw, query),
    ]
    answer_card = dbc.Card(
        dbc.CardBody(
            [
                html.H5("Analytic answer", className="card-title"),
                html.Div(id="designer-verdict"),
                _answer_table(),
                html.Div(id="designer-cost-basis", className="small text-muted mb-1"),
                html.Div(id="designer-par-note"),
                html.Div(id="designer-note", className="small text-muted"),
            ]
        ),
        className="mb-3",
        id="designer-answer",
    )
    return dbc.Row(
        [
            dbc.Col(dbc.Card(dbc.CardBody(controls), id="designer-controls", style=PANEL), md=4),
            dbc.Col(
                [
                    html.Div(id="designer-error"),
                    answer_card,
                    share_box("designer-link"),
                    figure_card("designer-roofline"),
                    figure_card("designer-cost-curve"),
                    dcc.Store(id="designer-preset-curve"),
                ],
                md=8,
            ),
        ]
    )


KNOB_INPUTS = [Input(f"designer-{key}", "value") for key, _, _ in KNOBS.values()]


def _register_knob(knob: str) -> None:
    slider_id = f"designer-{KNOBS[knob][0]}"

    @callback(
        *[Output(slider_id, p) for p in SLIDER_PROPS],
        Output(slider_id, "value"),
        Output(f"{slider_id}-box", "value"),
        Output(f"{slider_id}-box", "disabled"),
        Output(f"{slider_id}-label", "children"),
        Input("designer-hardware", "value"),
        Input(f"{slider_id}-box", "value"),
        Input(slider_id, "value"),
        State(slider_id, "min"),
        State(slider_id, "max"),
        State(slider_id, "disabled"),
        prevent_initial_call=True,
    )
    def move(hw_name, box, slider, lo, hi, disabled):
        return move_knob(knob, hw_name, box, slider, lo, hi, disabled, dash.ctx.triggered_id)


for _knob in KNOBS:
    _register_knob(_knob)


@callback(
    Output("designer-sram-help", "children"),
    Output("designer-sram-tip", "children"),
    Input("designer-hardware", "value"),
    prevent_initial_call=True,
)
def explain_sram(hw_name):
    """What the SRAM knob means on the chosen preset."""
    return [sram_help(load_hardware(hw_name))] * 2


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


ANSWER_OUTPUTS = [
    Output(f"designer-{key}-{col}", "children")
    for key, _ in METRICS
    for col in ("preset", "modified", "change")
]
CHANGE_CLASSES = [Output(f"designer-{key}-change", "className") for key, _ in METRICS]


@callback(
    [
        *ANSWER_OUTPUTS,
        *CHANGE_CLASSES,
        Output("designer-verdict", "children"),
        Output("designer-par-note", "children"),
        Output("designer-cost-basis", "children"),
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
    Input("designer-stack", "value"),
    Input("designer-basis", "value"),
    Input("designer-price", "value"),
    *KNOB_INPUTS,
)
def update_answer(
    hw_name, model_name, kv, devices, prompt, output, batch, stack, basis, price, *knob_values
):
    """TTFT, TPOT, capacity and cost for the preset and the modified device (or why it does not
    fit) as the chosen stack serves them and priced on the chosen basis, the change of split the
    knobs forced apart from the hardware's effect, and the roofline."""
    none = [dash.no_update] * (len(ANSWER_OUTPUTS) + len(CHANGE_CLASSES) + 6)
    if not all(isinstance(v, int | float) and v >= 1 for v in (prompt, output, batch)):
        return [
            *none,
            dbc.Alert("prompt, output and batch must be whole numbers of at least 1", color="warning"),
        ]
    prompt, output, batch = int(prompt), int(output), int(batch)
    base, profile = served(load_hardware(hw_name), stack or DEFAULTS["stack"])
    hw = apply_knobs(base, knobs_from(base, knob_values))
    model = _model(model_name, kv)
    cost = cost_assumptions(basis, price)
    try:
        before = answer(model, base, prompt, output, batch, _par(devices), cost, profile)
        after = answer(model, hw, prompt, output, batch, _par(devices), cost, profile)
        alone = on_preset_split(model, hw, prompt, output, batch, before, after, cost, profile)
        why = blocked(after)
        ops = None if why else roofline_points(model, hw, after.par, prompt, batch)
    except ValueError as exc:
        return [*none, dbc.Alert(str(exc), color="danger")]
    old, new = answer_cells(before), answer_cells(after)
    cells, classes = [], []
    for key, _ in METRICS:
        cells += [old[key][0], new[key][0], change_text(new[key][1], old[key][1])]
        classes.append(change_class(key, new[key][1], old[key][1]))
    note = "" if why else f"{model.name} fits on {after.par.devices} x {hw.name}"
    if why:
        roofline = figures.empty(f"does not fit on {after.par.devices} x {hw.name}: no operators to place")
    else:
        roofs = {hw.name: roof(hw, model.weight_dtype)}
        if hw is not base:
            roofs[base.name] = roof(base, model.weight_dtype)
        roofline = figures.roofline(ops, roofs)
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
            "stack": stack,
            "basis": cost.basis,
            "price": cost.per_device_hour_usd,
            **knob_query,
        },
    )
    verdict = fit_alerts(before, after, hw is not base)
    notes = [par_note(before, after, alone), cost_note(before, after), note]
    return [*cells, *classes, verdict, *notes, roofline, link, None]


def _curve_data(model, hw, output: int, batch: int, cost: CostAssumptions) -> dict:
    """`hw`'s cost curve over the prompt slider's range, batching up to `batch` requests, priced on
    `cost`, as JSON data for the page's store."""
    curve, jumps = cost_curve(model, [hw], output, *CURVE_CONTEXT, max_batch=batch, cost=cost)
    return {"curve": curve.to_dict("list"), "jumps": [asdict(j) for j in jumps]}


@callback(
    Output("designer-preset-curve", "data"),
    Input("designer-hardware", "value"),
    Input("designer-model", "value"),
    Input("designer-kv", "value"),
    Input("designer-output", "value"),
    Input("designer-batch", "value"),
    Input("designer-stack", "value"),
    Input("designer-basis", "value"),
    Input("designer-price", "value"),
)
def preset_curve(hw_name, model_name, kv, output, batch, stack, basis, price):
    """The untouched preset's cost curve; it changes only with the preset, the workload, the stack
    and the price."""
    if not all(isinstance(v, int | float) and v >= 1 for v in (output, batch)):
        return dash.no_update
    cost = cost_assumptions(basis, price)
    stack = stack or DEFAULTS["stack"]
    return _preset_curve_data(hw_name, model_name, kv, int(output), int(batch), stack, cost)


@lru_cache(maxsize=256)
def _preset_curve_data(
    hw_name: str, model_name: str, kv: str, output: int, batch: int, stack: str, cost: CostAssumptions
) -> dict:
    """A preset's cost curve as the page's store holds it (read, never changed). Presets do not
    change while the server runs, so a web worker draws each preset's curve for a workload, stack and
    price once, however many users open the designer on it."""
    hw, _ = served(load_hardware(hw_name), stack)
    curve = _curve_data(_model(model_name, kv), hw, output, batch, cost)
    return {"hardware": hw_name, "stack": stack, "cost": cost.model_dump(mode="json"), **curve}


@callback(
    Output(figure_id("designer-cost-curve"), "figure"),
    Input("designer-preset-curve", "data"),
    State("designer-hardware", "value"),
    State("designer-model", "value"),
    State("designer-kv", "value"),
    State("designer-output", "value"),
    State("designer-batch", "value"),
    State("designer-prompt", "value"),
    *KNOB_INPUTS,
)
def update_cost_curve(preset, hw_name, model_name, kv, output, batch, prompt, *knob_values):
    """Cost per request against context on the modified device, beside the preset's (served by the
    same stack, on the same price), with the model's context limit and the prompt length asked
    about marked."""
    if not preset or preset["hardware"] != hw_name:
        return dash.no_update
    base, _ = served(load_hardware(hw_name), preset["stack"])
    hw = apply_knobs(base, knobs_from(base, knob_values))
    model = _model(model_name, kv)
    curves = [pd.DataFrame(preset["curve"])]
    jumps = [Jump(**j) for j in preset["jumps"]]
    if hw is not base:
        mine = _curve_data(model, hw, int(output), int(batch), CostAssumptions(**preset["cost"]))
        curves.insert(0, pd.DataFrame(mine["curve"]))
        jumps = [Jump(**j) for j in mine["jumps"]] + jumps
    marked = int(prompt) if isinstance(prompt, int | float) and prompt >= 1 else None
    return figures.cost_curve(pd.concat(curves, ignore_index=True), jumps, model.context_limit_tokens, marked)


@callback(
    Output(figure_id("designer-cost-curve"), "figure", allow_duplicate=True),
    Input("designer-prompt", "value"),
    State(figure_id("designer-cost-curve"), "figure"),
    prevent_initial_call=True,
)
def mark_prompt(prompt, figure):
    """Move the prompt's mark on the cost curve without drawing the curve again."""
    shapes = ((figure or {}).get("layout") or {}).get("shapes") or [{}]
    if shapes[0].get("name") != "prompt" or not isinstance(prompt, int | float) or prompt < 1:
        return dash.no_update
    patched = Patch()
    marker, label = figures.prompt_marker(int(prompt))
    patched["layout"]["shapes"][0] = marker
    patched["layout"]["annotations"][0] = label
    return patched
