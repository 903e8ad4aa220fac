"""Cluster sizing: the question in (a model, its prompt and output lengths or a task mix or a trace, a
load, p99 SLOs, the hardware and tensor-parallel degrees to consider), the planner's answer out: the
best configuration overall and on each hardware type, its p99s against the targets with their
headroom, ties, and every configuration tried in a sortable table.

An example or an uploaded scenario fills the form; the page always says which model and workload it
sizes. The question lives in `dashboard.question`, the reading of the answer in `dashboard.sizing`;
the plan runs as a background job (`dashboard.jobs`) and the window keeps only its key, so the last
plan is still there after a visit to another page.
"""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dash_table, dcc, html

from dashboard import figures
from dashboard.app import job_store, settings
from dashboard.components import (
    figure_card,
    figure_id,
    job_message,
    job_parts,
    job_progress,
    labelled,
    page_url,
    register_job_controls,
    register_source_choice,
    serving_controls,
    share_box,
    upload_box,
)
from dashboard.plan_view import asked_text, best_card, candidates_data, per_hardware_card
from dashboard.question import (
    FORM_FIELDS,
    TPS,
    WORKLOADS,
    Question,
    describe,
    form_values,
    link_scenario,
    planned_scenario,
    question_from_form,
    question_from_query,
    question_mapping,
    scenario_question,
    unlink_scenario,
)
from dashboard.runs import default_example, example_names, latency_frame, parse_upload, read_example
from dashboard.sizing import (
    plan_job,
)
from hardware import hardware_names
from sim.scenario import ScenarioError
from workloads import model_names
from workloads.mixes import PRESETS

dash.register_page(__name__, path="/sizing", name="Cluster sizing", order=1)

OWN = "(scenario)"
"""The model picker's value for a scenario whose model is not a plain preset: keep it as it is."""
FORM = [f"sizing-{name}" for name in FORM_FIELDS]
"""The form's fields' ids, in `dashboard.question.FORM_FIELDS` order."""
FILLED = [i for i in FORM if i not in ("sizing-requests", "sizing-tps", "sizing-max-devices")]
"""The fields a newly chosen scenario fills: all but the search's own settings."""
HIDDEN = ("$/1M output tokens", "$/1M input tokens", "pp", "rejected", "judged on (requests)")
"""Candidate columns shown on request ("Toggle Columns") and always in the CSV, so the notes fit."""


def _question(values) -> Question:
    """The form's values (in `FORM` order) as a question."""
    return question_from_form(list(values))


def _flat(q: Question) -> list:
    """A question as the form's values, in `FORM` order (the model as `OWN` where it is the
    scenario's own)."""
    model, *rest = form_values(q)
    return [model or OWN, *rest]


def _number(id_: str, value, step="any", **kwargs) -> dbc.Input:
    return dbc.Input(id=id_, type="number", value=value, min=0, step=step, size="sm", debounce=True, **kwargs)


def _row(*cells: tuple[str, object]) -> dbc.Row:
    return dbc.Row([dbc.Col(labelled(label, control)) for label, control in cells], className="g-2")


def _model_options(data: dict | None, label: str | None) -> list:
    """The catalog's models, and the scenario's own first where it is not a plain preset name."""
    options = [{"label": m, "value": m} for m in model_names()]
    raw = (data or {}).get("model")
    if raw is None or (isinstance(raw, str) and raw in model_names()):
        return options
    name = raw.get("name") or raw.get("preset") if isinstance(raw, dict) else str(raw)
    return [{"label": f"{name} (as in {label})", "value": OWN}, *options]


def _workload_fields(v: dict) -> list:
    """Workload choice and its fields (`v`: the form's values by id): length distributions, a
    task-mix preset, or a trace."""
    widths = {"median": (4, 1), "sigma": (3, 0.05), "max": (5, 1)}
    length_rows = [
        labelled(
            f"{name} tokens: median, spread σ, at most",
            dbc.Row(
                [
                    dbc.Col(_number(f"sizing-{name}-{part}", v[f"sizing-{name}-{part}"], step), width=w)
                    for part, (w, step) in widths.items()
                ],
                className="g-1",
            ),
        )
        for name in ("prompt", "output")
    ]
    return [
        labelled(
            "workload",
            dbc.RadioItems(
                options=[{"label": v, "value": k} for k, v in WORKLOADS.items()],
                value=v["sizing-workload"],
                id="sizing-workload",
                inline=True,
            ),
        ),
        html.Div(
            [
                *length_rows,
                dbc.FormText("lognormal: half the requests above the median; σ is the spread of log(length)"),
            ],
            id="sizing-lengths-box",
            className="mb-2",
        ),
        html.Div(
            labelled(
                "task-mix preset",
                dcc.Dropdown(
                    [{"label": f"{k}: {p.description}", "value": k} for k, p in sorted(PRESETS.items())],
                    v["sizing-mix"],
                    id="sizing-mix",
                    optionHeight=60,
                ),
            ),
            id="sizing-mix-box",
        ),
        html.Div(
            labelled(
                "trace file (under the dashboard's data folder)",
                dbc.Input(
                    id="sizing-trace",
                    value=v["sizing-trace"],
                    debounce=True,
                    size="sm",
                    placeholder="e.g. traces/conversation.jsonl",
                ),
                "its prompt and output lengths, arriving as Poisson at the target load",
            ),
            id="sizing-trace-box",
        ),
    ]


def _controls(examples: list[str], example: str | None, source: dict, values: list) -> dbc.Card:
    """The form: where to start, the model, the workload, load, SLOs and the search."""
    v = dict(zip(FORM, values, strict=True))
    return dbc.Card(
        dbc.CardBody(
            [
                labelled(
                    "start from an example scenario (or upload one)",
                    dcc.Dropdown(examples, example, id="sizing-example", clearable=False),
                ),
                upload_box("sizing-upload"),
                html.Div(id="sizing-source-error"),
                labelled(
                    "model",
                    dcc.Dropdown(
                        _model_options(source.get("data"), source.get("label")),
                        v["sizing-model"],
                        id="sizing-model",
                        clearable=False,
                    ),
                ),
                *_workload_fields(v),
                _row(
                    ("target load (req/s)", _number("sizing-qps", v["sizing-qps"])),
                    ("simulated requests", _number("sizing-requests", v["sizing-requests"], 100)),
                ),
                _row(
                    ("TTFT p99 ≤ (s)", _number("sizing-ttft", v["sizing-ttft"])),
                    ("TPOT p99 ≤ (s)", _number("sizing-tpot", v["sizing-tpot"])),
                    ("e2e p99 ≤ (s)", _number("sizing-e2e", v["sizing-e2e"])),
                ),
                labelled(
                    "hardware to compare (empty: the scenario's own)",
                    dcc.Dropdown(hardware_names(), v["sizing-hardware"], id="sizing-hardware", multi=True),
                ),
                labelled(
                    "tensor-parallel degrees (the page picks among them)",
                    dbc.Checklist(options=list(TPS), value=v["sizing-tps"], id="sizing-tps", inline=True),
                ),
                labelled("most devices", _number("sizing-max-devices", v["sizing-max-devices"], 1)),
                serving_controls("sizing", v["sizing-stack"], v["sizing-basis"], v["sizing-price"]),
            ]
        )
    )


def _start(query: dict, examples: list[str]) -> tuple[str | None, dict, str | None]:
    """(the example, the source store, why a link's scenario was refused) for a shared link's query."""
    example = query.get("example") if query.get("example") in examples else default_example(examples)
    refused = None
    if query.get("scenario"):
        label = str(query.get("upload") or "the link's scenario")
        try:
            url = unlink_scenario(str(query["scenario"]), settings().max_upload_bytes)
            data = parse_upload(url, label, settings().max_upload_bytes, runnable=False)
            return example, {"label": label, "data": data, "uploaded": True}, None
        except ScenarioError as exc:
            refused = str(exc)
    data = read_example(settings().examples_dir, example) if example else None
    return example, {"label": example, "data": data}, refused


def layout(**query):
    """The page, its form filled from the starting scenario and then from a shared link's query."""
    examples = example_names(settings().examples_dir)
    example, source, refused = _start(query, examples)
    start = scenario_question(source["data"]) if source["data"] else Question()
    values = _flat(question_from_query(query, start, hardware_names()))
    return dbc.Row(
        [
            dbc.Col(
                [
                    _controls(examples, example, source, values),
                    dcc.Store(id="sizing-source", data=source),
                    dcc.Store(id="sizing-result", storage_type="session"),
                    *job_parts("sizing"),
                ],
                md=4,
                xl=3,
            ),
            dbc.Col(
                [
                    dbc.Alert(refused, color="danger", className="small") if refused else None,
                    share_box("sizing-link"),
                    html.Div(id="sizing-link-note", className="small text-muted mb-2"),
                    dbc.Card(
                        dbc.CardBody(
                            [
                                html.Div(id="sizing-question"),
                                dbc.ButtonGroup(
                                    [
                                        dbc.Button("Plan", id="sizing-run", color="primary"),
                                        dbc.Button(
                                            "Cancel", id="sizing-cancel", color="secondary", disabled=True
                                        ),
                                    ],
                                    className="mt-2",
                                ),
                                html.Div(id="sizing-progress", className="small text-muted mt-1"),
                                html.Div(id="sizing-error"),
                            ]
                        ),
                        className="mb-3",
                    ),
                    html.Div(id="sizing-answer", className="mb-3"),
                    html.Div(id="sizing-per-hardware", className="mb-3"),
                    _candidates_card(),
                    figure_card("sizing-latency"),
                ],
                md=8,
                xl=9,
            ),
        ]
    )


def _candidates_card() -> dbc.Card:
    """Every configuration the plan tried, sortable by any column, notes in full; CSV export."""
    return dbc.Card(
        dbc.CardBody(
            [
                html.H5("candidates", className="card-title"),
                html.P(
                    "click a heading to sort; borderline verdicts shaded amber, thin headroom in amber; "
                    "Toggle Columns shows the token prices, pp and how many requests judged each",
                    className="small text-muted mb-1",
                ),
                dash_table.DataTable(
                    id="sizing-candidates",
                    data=[],
                    columns=[],
                    sort_action="native",
                    export_format="csv",
                    export_columns="all",
                    hidden_columns=list(HIDDEN),
                    page_action="none",
                    style_table={"overflowX": "auto", "maxHeight": "600px", "overflowY": "auto"},
                    style_cell={
                        "whiteSpace": "normal",
                        "height": "auto",
                        "textAlign": "left",
                        "fontSize": "0.8rem",
                        "fontFamily": 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif',
                        "minWidth": "40px",
                        "maxWidth": "80px",
                        "padding": "2px 4px",
                    },
                    style_cell_conditional=[
                        {
                            "if": {"column_id": "note"},
                            "minWidth": "220px",
                            "width": "250px",
                            "maxWidth": "250px",
                        }
                    ],
                    css=[{"selector": ".show-hide", "rule": "font-size: 0.8rem"}],
                    style_header={"fontWeight": "600", "whiteSpace": "normal", "height": "auto"},
                ),
            ]
        ),
        className="mb-3",
    )


register_source_choice("sizing", runnable=False)


@callback(
    Output("sizing-model", "options"),
    *[Output(i, "value") for i in FILLED],
    Input("sizing-source", "data"),
    prevent_initial_call=True,
)
def fill_form(source):
    """A newly chosen example or upload fills the question's fields with what it asks (the search
    settings, tp and most devices, stay as they are)."""
    values = dict(zip(FORM, _flat(scenario_question(source["data"])), strict=True))
    return [_model_options(source["data"], source["label"]), *(values[i] for i in FILLED)]


@callback(
    Output("sizing-lengths-box", "style"),
    Output("sizing-mix-box", "style"),
    Output("sizing-trace-box", "style"),
    Input("sizing-workload", "value"),
)
def show_workload_fields(workload):
    """Only the fields of the chosen way of giving the workload."""
    return [{} if workload == mode else {"display": "none"} for mode in ("lengths", "mix", "trace")]


@callback(
    Output("sizing-question", "children"),
    Output("sizing-link", "value"),
    Output("sizing-link-note", "children"),
    Input("sizing-source", "data"),
    *[Input(i, "value") for i in FORM],
)
def show_question(source, *values):
    """What the page sizes, in words, and the link that asks it again."""
    q = _question(values)
    params = {**q.query()}
    note = ""
    if source.get("uploaded"):
        packed = link_scenario(source["data"])
        if packed is None:
            note = (
                f"this link carries the form but not {source['label']} (too long for a link): "
                "whoever opens it starts from the default example; send them the file"
            )
        else:
            params |= {"upload": source["label"], "scenario": packed}
            note = f"this link carries {source['label']} too"
    else:
        params["example"] = source.get("label")
    link = page_url("/sizing", params)
    try:
        asked = describe(planned_scenario(source["data"], q, settings().data_root), source["label"], q)
    except ScenarioError as exc:
        return dbc.Alert(str(exc), color="danger", className="small mb-0"), link, note
    return asked_text(asked, "Sizing"), link, note


register_job_controls("sizing")


@callback(
    Output("sizing-job", "data"),
    Output("sizing-error", "children"),
    Input("sizing-run", "n_clicks"),
    State("session", "data"),
    State("sizing-source", "data"),
    *[State(i, "value") for i in FORM],
    prevent_initial_call=True,
)
def start_plan(_clicks, session, source, *values):
    """Queue the planner's search for the question as the form asks it."""
    if not source or not source.get("data"):
        return dash.no_update, dbc.Alert("choose an example or upload a scenario", color="info")
    q = _question(values)
    problem = (
        "set a target load above 0 req/s"
        if not q.qps or q.qps <= 0
        else "set at least one p99 target (TTFT, TPOT or end to end)"
        if not q.slos()
        else None
    )
    if problem:
        return dash.no_update, dbc.Alert(problem, color="warning", className="small")
    try:
        base = planned_scenario(source["data"], q, settings().data_root)
        asked = describe(base, source["label"], q)
        key = job_store().submit(session, plan_job, base, question_mapping(q), asked)
    except ValueError as exc:
        return dash.no_update, dbc.Alert(str(exc), color="danger", className="small")
    return {"key": key}, None


@callback(
    Output("sizing-job", "data", allow_duplicate=True),
    Output("sizing-result", "data"),
    Output("sizing-progress", "children"),
    Output("sizing-error", "children", allow_duplicate=True),
    Input("sizing-poll", "n_intervals"),
    State("sizing-job", "data"),
    State("sizing-result", "data"),
    prevent_initial_call=True,
)
def poll_plan(_ticks, job, shown):
    """The search's progress while it waits or runs; once done, its plan replaces the one shown
    (whose answer is discarded); once failed, died or cancelled, why."""
    if not job:
        return (dash.no_update,) * 4
    status = job_store().status(job["key"])
    text = job_progress(status)[1]
    if status.state in ("queued", "running"):
        return dash.no_update, dash.no_update, text, dash.no_update
    if status.state != "done":
        return None, dash.no_update, "", job_message(status)
    if shown and shown["key"] != job["key"]:
        job_store().discard(shown["key"])
    return None, {"key": job["key"]}, text, None


@callback(
    Output("sizing-answer", "children"),
    Output("sizing-per-hardware", "children"),
    Output("sizing-candidates", "data"),
    Output("sizing-candidates", "columns"),
    Output("sizing-candidates", "style_data_conditional"),
    Output(figure_id("sizing-latency"), "figure"),
    Input("sizing-result", "data"),
)
def show_plan(shown):
    """The best configuration with its p99s against the targets, ties and thin headroom; the best on
    each hardware type; every candidate; and the chosen configuration's latency CDFs."""
    result = job_store().result(shown["key"]) if shown else None
    if shown and result is None:
        message = dbc.Alert("the last plan is no longer on the server; Plan again", color="warning")
        return message, None, [], [], [], figures.empty("latency of the chosen cluster")
    if not result:
        message = html.P("set the question, then Plan", className="text-muted")
        return message, None, [], [], [], figures.empty("latency of the chosen cluster")
    plan_dict, chosen, asked = result["plan"], result["chosen"], result["asked"]
    data, columns, styles = candidates_data(plan_dict)
    each = per_hardware_card(plan_dict)
    best = plan_dict["best"]
    if best is None:
        message = dbc.Alert(
            [
                html.Div(asked_text(asked, "Nothing meets the SLOs for")),
                html.P("see each hardware type and the candidates below for why", className="small mb-0"),
            ],
            color="warning",
        )
        return message, each, data, columns, styles, figures.empty("nothing met the SLOs")
    latency = figures.latency_cdfs({chosen["label"]: latency_frame(chosen)})
    return best_card(best, plan_dict, asked), each, data, columns, styles, latency
