"""Cluster sizing: a workload, a target load and SLOs in; the planner's cheapest cluster, its
runner-ups, what it costs, and the latency of the chosen configuration out. The plan runs as a
background job (`dashboard.jobs`); the window keeps only its key, so the last plan is still there
after a visit to another page."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html

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
    share_box,
    upload_box,
    verdict_card_body,
    verdict_colour,
)
from dashboard.runs import default_example, example_names, latency_frame, read_example
from dashboard.sizing import TPS, borderline_rows, candidates_table, plan_job
from hardware import hardware_names
from sim.format import usd
from sim.studies.verdict import DEFAULT_REQUESTS

dash.register_page(__name__, path="/sizing", name="Cluster sizing", order=1)


def _float(query: dict, key: str, default: float | None) -> float | None:
    try:
        return float(query[key]) if query.get(key) not in (None, "") else default
    except ValueError:
        return default


def _number(id_: str, value, step) -> dbc.Input:
    return dbc.Input(id=id_, type="number", value=value, min=0, step=step, size="sm")


def _number_col(label: str, id_: str, value, step="any") -> dbc.Col:
    """One labelled number input in a column of its own, as the form's rows lay them out."""
    return dbc.Col(labelled(label, _number(id_, value, step)))


def _load_row(query: dict) -> dbc.Row:
    """Target load and how many requests each configuration simulates."""
    return dbc.Row(
        [
            _number_col("target load (req/s)", "sizing-qps", _float(query, "qps", 10.0)),
            _number_col(
                "simulated requests", "sizing-requests", int(_float(query, "requests", DEFAULT_REQUESTS)), 100
            ),
        ]
    )


def _slo_row(query: dict) -> dbc.Row:
    """The p99 targets: TTFT, TPOT and end to end (empty: no target)."""
    return dbc.Row(
        [
            _number_col("TTFT p99 ≤ (s)", "sizing-ttft", _float(query, "ttft_p99", 2.0)),
            _number_col("TPOT p99 ≤ (s)", "sizing-tpot", _float(query, "tpot_p99", 0.05)),
            _number_col("e2e p99 ≤ (s)", "sizing-e2e", _float(query, "e2e_p99", None)),
        ]
    )


def _controls(
    query: dict, examples: list[str], example: str | None, chosen: list[str], tps: list[int]
) -> dbc.Card:
    """The form: workload, load, SLOs, hardware and tp to compare, device limit, and the buttons."""
    return dbc.Card(
        dbc.CardBody(
            [
                labelled(
                    "workload (example scenario)",
                    dcc.Dropdown(examples, example, id="sizing-example", clearable=False),
                ),
                upload_box("sizing-upload"),
                html.Div(id="sizing-source-error"),
                _load_row(query),
                _slo_row(query),
                labelled(
                    "hardware to compare (empty: the scenario's)",
                    dcc.Dropdown(hardware_names(), chosen, id="sizing-hardware", multi=True),
                ),
                labelled(
                    "tensor-parallel degrees",
                    dbc.Checklist(options=TPS, value=tps, id="sizing-tps", inline=True),
                ),
                labelled(
                    "most devices", _number("sizing-max-devices", int(_float(query, "max_devices", 64)), 1)
                ),
                dbc.ButtonGroup(
                    [
                        dbc.Button("Plan", id="sizing-run", color="primary"),
                        dbc.Button("Cancel", id="sizing-cancel", color="secondary", disabled=True),
                    ],
                    className="my-2",
                ),
                html.Div(id="sizing-progress", className="small text-muted"),
                html.Div(id="sizing-error"),
            ]
        )
    )


def layout(**query):
    """The page, with the form filled from a shared link's query (unknown values fall back)."""
    examples = example_names(settings().examples_dir)
    example = (
        query.get("example") if query.get("example") in examples else default_example(examples)
    )
    hw = query.get("hardware", "")
    chosen = [h for h in (hw if isinstance(hw, list) else [hw]) if h in hardware_names()]
    tps = [
        int(t)
        for t in (query.get("tp") if isinstance(query.get("tp"), list) else [query.get("tp")])
        if t in {str(x) for x in TPS}
    ] or TPS
    controls = _controls(query, examples, example, chosen, tps)
    return dbc.Row(
        [
            dbc.Col(
                [
                    controls,
                    dcc.Store(
                        id="sizing-source",
                        data={
                            "label": example,
                            "data": (read_example(settings().examples_dir, example) if example else None),
                        },
                    ),
                    dcc.Store(id="sizing-result", storage_type="session"),
                    *job_parts("sizing"),
                ],
                md=4,
            ),
            dbc.Col(
                [
                    share_box("sizing-link"),
                    html.Div(id="sizing-answer", className="mb-3"),
                    figure_card("sizing-candidates"),
                    figure_card("sizing-latency"),
                ],
                md=8,
            ),
        ]
    )


register_source_choice("sizing")


INPUTS = [
    "sizing-qps",
    "sizing-requests",
    "sizing-ttft",
    "sizing-tpot",
    "sizing-e2e",
    "sizing-hardware",
    "sizing-tps",
    "sizing-max-devices",
]


@callback(
    Output("sizing-link", "value"), Input("sizing-source", "data"), *[Input(i, "value") for i in INPUTS]
)
def share(source, qps, requests, ttft, tpot, e2e, hardware, tps, max_devices):
    return page_url(
        "/sizing",
        {
            "example": (source or {}).get("label"),
            "qps": qps,
            "requests": requests,
            "ttft_p99": ttft,
            "tpot_p99": tpot,
            "e2e_p99": e2e,
            "hardware": hardware or None,
            "tp": tps,
            "max_devices": max_devices,
        },
    )


register_job_controls("sizing")


@callback(
    Output("sizing-job", "data"),
    Output("sizing-error", "children"),
    Input("sizing-run", "n_clicks"),
    State("session", "data"),
    State("sizing-source", "data"),
    *[State(i, "value") for i in INPUTS],
    prevent_initial_call=True,
)
def start_plan(_clicks, session, source, qps, requests, ttft, tpot, e2e, hardware, tps, max_devices):
    """Queue the planner's search for the form as it stands."""
    if not source or not source.get("data"):
        return dash.no_update, dbc.Alert("choose an example or upload a scenario", color="info")
    try:
        key = job_store().submit(
            session, plan_job, source["data"], qps, requests, [ttft, tpot, e2e], hardware, tps, max_devices
        )
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
    Output(figure_id("sizing-candidates"), "figure"),
    Output(figure_id("sizing-latency"), "figure"),
    Input("sizing-result", "data"),
)
def show_plan(shown):
    """The chosen cluster with its verdict, the candidates table (borderline rows flagged) and the
    chosen configuration's latency CDFs."""
    result = job_store().result(shown["key"]) if shown else None
    if shown and result is None:
        return (
            dbc.Alert("the last plan is no longer on the server; Plan again", color="warning"),
            figures.empty("candidates appear here after Plan"),
            figures.empty("latency of the chosen cluster"),
        )
    if not result:
        return (
            html.P("set a load and SLOs, then Plan", className="text-muted"),
            figures.empty("candidates appear here after Plan"),
            figures.empty("latency of the chosen cluster"),
        )
    plan_dict, chosen = result["plan"], result["chosen"]
    frame = candidates_table(plan_dict)
    table = figures.table(frame, "candidates (cheapest first; borderline shaded)", borderline_rows(frame))
    best = plan_dict["best"]
    if best is None:
        return (
            dbc.Alert(
                "no configuration searched meets the SLOs; see the misses and skipped rows", color="warning"
            ),
            table,
            figures.empty("nothing met the SLOs"),
        )
    answer = dbc.Card(
        dbc.CardBody(
            [
                html.H5(
                    f"{best['replicas']} x {best['devices'] // best['replicas']} x {best['hardware']} "
                    f"(tp={best['tp']}, pp={best['pp']}): {best['devices']} devices",
                    className="card-title",
                ),
                html.P(
                    [
                        f"{usd(best['cost_per_hour_usd'])} per hour · ",
                        f"{usd(best['cost_per_1m_output_tokens_usd'])} per 1M output tokens · ",
                        f"{usd(best['cost_per_1m_input_tokens_usd'])} per 1M input tokens",
                    ],
                    id="sizing-cost",
                ),
                *verdict_card_body(best),
                html.P(
                    ", ".join(f"{k} headroom {v:.0%}" for k, v in best["headroom"].items() if v is not None),
                    className="small text-muted mb-0",
                ),
            ]
        ),
        color=verdict_colour(best["verdict"]),
        outline=True,
    )
    return answer, table, figures.latency_cdfs({chosen["label"]: latency_frame(chosen)})
