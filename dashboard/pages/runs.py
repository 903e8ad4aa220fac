"""Scenario runs: pick an example or upload a scenario, edit a few fields, run it in the background,
and keep several runs side by side.

The runs themselves stay on the server, as the answers of their jobs (`dashboard.jobs`); the window
keeps only their keys and labels, in its session storage, so no request carries a run back and
the kept runs survive a visit to another page."""

from __future__ import annotations

import json

import dash
import dash_bootstrap_components as dbc
import pandas as pd
import yaml
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
    run_notes,
    share_box,
    upload_box,
)
from dashboard.runs import (
    CHOICES,
    FORM_FIELDS,
    SLO_VERDICT,
    apply_form,
    change_header,
    change_tones,
    compare_table,
    default_example,
    example_names,
    form_values,
    latency_frame,
    read_example,
    run_job,
    run_label,
    run_number,
)
from hardware import hardware_names
from hardware.yamltext import load_yaml
from sim.engine.summary import Summary
from sim.report import figures as shared
from sim.report import labels
from sim.runnable import scenario_from_dict
from sim.scenario import ScenarioError
from workloads import model_names

dash.register_page(__name__, path="/runs", name="Scenario runs", order=2)

FORM_IDS = [f"runs-field-{path.replace('.', '-').replace('_', '-')}" for path, _ in FORM_FIELDS]


def _field(path: str, label: str, id_: str, value):
    if path in CHOICES:
        options = CHOICES[path] if value in CHOICES[path] or value is None else [value, *CHOICES[path]]
        return labelled(label, dcc.Dropdown(options, value, id=id_, clearable=False))
    if path in ("hardware", "model"):
        names = hardware_names() if path == "hardware" else model_names()
        options = names if value in names or value is None else [value, *names]
        return labelled(label, dcc.Dropdown(options, value, id=id_, clearable=False))
    kind = "text" if path == "name" else "number"
    return labelled(label, dbc.Input(id=id_, type=kind, value=value, size="sm", debounce=True))


def _query_value(text: str):
    """A form value from the URL, read the way `--set key=value` reads it."""
    try:
        return load_yaml(text)
    except yaml.YAMLError:
        return text


def layout(**query):
    examples = example_names(settings().examples_dir)
    example = query.get("example") if query.get("example") in examples else default_example(examples)
    data, values = None, [None] * len(FORM_FIELDS)
    if example:
        data = read_example(settings().examples_dir, example)
        values = form_values(scenario_from_dict(data))
    values = [
        _query_value(query[path]) if path in query else v
        for (path, _), v in zip(FORM_FIELDS, values, strict=True)
    ]
    form = [
        _field(path, label, id_, v)
        for (path, label), id_, v in zip(FORM_FIELDS, FORM_IDS, values, strict=True)
    ]
    controls = dbc.Card(
        dbc.CardBody(
            [
                labelled("example", dcc.Dropdown(examples, example, id="runs-example", clearable=False)),
                upload_box("runs-upload"),
                html.Div(id="runs-source-error"),
                html.H6("fields", className="mt-2"),
                dbc.Row([dbc.Col(f, md=6) for f in form]),
                html.Div(id="runs-check", className="small mb-2"),
                dbc.ButtonGroup(
                    [
                        dbc.Button("Run", id="runs-run", color="primary"),
                        dbc.Button("Cancel", id="runs-cancel", color="secondary", disabled=True),
                        dbc.Button("Clear runs", id="runs-clear", color="light"),
                    ],
                    className="mb-2",
                ),
                dbc.Progress(id="runs-progress", value=0, striped=True, animated=True, className="mb-1"),
                html.Div(id="runs-progress-text", className="small text-muted"),
                html.Div(id="runs-run-error"),
                html.Hr(),
                dbc.Button(
                    "scenario YAML", id="runs-download-scenario", size="sm", outline=True, className="me-1"
                ),
                dbc.Button("runs (JSON)", id="runs-download-runs", size="sm", outline=True),
                dcc.Download(id="runs-scenario-file"),
                dcc.Download(id="runs-runs-file"),
            ]
        )
    )
    return dbc.Row(
        [
            dbc.Col(
                [
                    controls,
                    dcc.Store(id="runs-source", data={"label": example, "data": data}),
                    dcc.Store(id="runs-kept", storage_type="session", data=[]),
                    *job_parts("runs"),
                ],
                md=4,
            ),
            dbc.Col(
                [
                    share_box("runs-link"),
                    html.H5("Runs side by side"),
                    html.Div(id="runs-compare", className="mb-3"),
                    figure_card("runs-latency"),
                    figure_card("runs-bound"),
                    labelled("details of run", dcc.Dropdown(id="runs-selected", clearable=False)),
                    html.Div(id="runs-classes", className="mb-3"),
                    figure_card("runs-occupancy"),
                ],
                md=8,
            ),
        ]
    )


register_source_choice("runs")


@callback([Output(i, "value") for i in FORM_IDS], Input("runs-source", "data"), prevent_initial_call=True)
def fill_form(source):
    return form_values(scenario_from_dict(source["data"]))


@callback(
    Output("runs-check", "children"),
    Output("runs-link", "value"),
    Input("runs-source", "data"),
    *[Input(i, "value") for i in FORM_IDS],
)
def check_form(source, *values):
    """Validate the edited scenario as the CLI would; the message names the field at fault."""
    if not source or not source.get("data"):
        return dbc.Alert("choose an example or upload a scenario", color="info", className="small"), ""
    try:
        data, edits = apply_form(source["data"], list(values))
        sc = scenario_from_dict(data)
    except ScenarioError as exc:
        return dbc.Alert(str(exc), color="danger", className="small"), ""
    if source.get("uploaded"):  # an upload cannot travel in a link: share the scenario YAML instead
        link = "uploaded scenarios are shared as a file: use the scenario YAML button"
    else:
        link = page_url("/runs", {"example": source["label"]} | dict(e.split("=", 1) for e in edits))
    text = f"{sc.name}: {sc.model.name} on {sc.replicas} x {sc.par.devices} x {sc.hardware.name}"
    return html.Span(
        ["✓ ", text, *([f" — edits: {', '.join(edits)}"] if edits else [])], className="text-success"
    ), link


register_job_controls("runs")


@callback(
    Output("runs-job", "data"),
    Output("runs-run-error", "children"),
    Output("runs-progress", "value", allow_duplicate=True),
    Output("runs-progress-text", "children", allow_duplicate=True),
    Input("runs-run", "n_clicks"),
    State("session", "data"),
    State("runs-source", "data"),
    State("runs-kept", "data"),
    *[State(i, "value") for i in FORM_IDS],
    prevent_initial_call=True,
)
def start_run(_clicks, session, source, kept, *values):
    """Check the edited scenario here, so a bad field is named at once, and queue its simulation.
    Runs are numbered in the window's order: one more than the newest kept. The progress bar starts
    again from nothing for each run, named by its number."""
    try:
        data, _ = apply_form(source["data"], list(values))
        n = kept[-1]["n"] + 1 if kept else 1
        label = f"#{n} {run_label(scenario_from_dict(data))}"
        key = job_store().submit(session, run_job, data, label)
    except ValueError as exc:
        return dash.no_update, dbc.Alert(str(exc), color="danger", className="small"), 0, ""
    return {"key": key, "label": label, "n": n}, None, 0, f"#{n}: queued"


def keep(kept: list[dict], job: dict) -> list[dict]:
    """The kept runs with a finished job's added (once, however many polls see it finish); the
    oldest beyond `max_runs_kept` are dropped and their answers discarded."""
    if all(entry["key"] != job["key"] for entry in kept):
        kept = [*kept, {k: job[k] for k in ("key", "label", "n")}]
    limit = settings().max_runs_kept
    for old in kept[:-limit]:
        job_store().discard(old["key"])
    return kept[-limit:]


@callback(
    Output("runs-job", "data", allow_duplicate=True),
    Output("runs-kept", "data"),
    Output("runs-progress", "value"),
    Output("runs-progress-text", "children"),
    Output("runs-run-error", "children", allow_duplicate=True),
    Input("runs-poll", "n_intervals"),
    State("runs-job", "data"),
    State("runs-kept", "data"),
    prevent_initial_call=True,
)
def poll_run(_ticks, job, kept):
    """The job's progress while it waits or runs; once done, the run joins the kept ones; once
    failed, died or cancelled, why."""
    if not job:
        return (dash.no_update,) * 5
    status = job_store().status(job["key"])
    percent, text = job_progress(status)
    text = f"{run_number(job['label'])}: {text}"
    if status.state in ("queued", "running"):
        return dash.no_update, dash.no_update, percent, text, dash.no_update
    if status.state != "done":
        return None, dash.no_update, 0, "", job_message(status)
    return None, keep(kept or [], job), percent, text, None


@callback(
    Output("runs-kept", "data", allow_duplicate=True),
    Input("runs-clear", "n_clicks"),
    State("runs-kept", "data"),
    prevent_initial_call=True,
)
def clear_runs(_clicks, kept):
    for run_ in kept or []:
        job_store().discard(run_["key"])
    return []


def kept_runs(kept: list[dict]) -> tuple[list[dict], list[str]]:
    """The kept runs the server still has, and the labels of those it no longer has."""
    runs, missing = [], []
    for entry in kept:
        answer = job_store().result(entry["key"])
        if answer is None:
            missing.append(entry["label"])
        else:
            runs.append(answer)
    return runs, missing


@callback(
    Output("runs-compare", "children"),
    Output(figure_id("runs-latency"), "figure"),
    Output(figure_id("runs-bound"), "figure"),
    Output("runs-selected", "options"),
    Output("runs-selected", "value"),
    Input("runs-kept", "data"),
)
def show_runs(kept):
    """The kept runs side by side: the compare table (human units, SLO verdicts, the change from the
    first run to the last) with each run's caveats, latency CDFs and where step time goes; before
    any run, placeholders that say so instead of empty axes."""
    runs, missing = kept_runs(kept or [])
    gone = [
        dbc.Alert(
            f"{label}: no longer on the server (unused for too long, or the dashboard restarted)",
            color="warning",
            className="small py-1 mb-1",
        )
        for label in missing
    ]
    body = (
        [
            compare_html(runs),
            *(alert for run in runs for alert in run_notes(run["label"], Summary(**run["summary"]))),
        ]
        if runs
        else [
            html.P(
                "no runs yet: choose an example or upload a scenario, then press Run",
                className="text-muted",
                id="runs-compare-empty",
            )
        ]
    )
    latency = figures.latency_cdfs({run["label"]: latency_frame(run) for run in runs})
    bound = figures.bound_shares({run["label"]: Summary(**run["summary"]) for run in runs})
    options = [{"label": e["label"], "value": e["key"]} for e in kept or [] if e["label"] not in missing]
    return [*body, *gone], latency, bound, options, options[-1]["value"] if options else None


TONES = {"better": "text-success", "worse": "text-danger"}


def _verdict_class(text: str) -> str | None:
    """A PASS cell green, a MISS cell red."""
    return (
        "text-success fw-semibold"
        if text.startswith("PASS")
        else ("text-danger fw-semibold" if text.startswith("MISS") else None)
    )


def compare_html(runs: list[dict]) -> dbc.Table:
    """The compare table as HTML: a row header per field, a column per run, and the change column
    coloured better (green) or worse (red); PASS and MISS in their colours."""
    table = compare_table(runs)
    header = change_header(runs)
    tones = change_tones(runs)
    head = html.Thead(html.Tr([html.Th(""), *(html.Th(c) for c in table.columns)]))
    rows = []
    for label, cells in table.iterrows():
        tds = []
        for column, text in cells.items():
            if column == header:
                tone = TONES.get(tones.get(label, ("", None))[1])
                tds.append(html.Td(text, className=tone))
            else:
                verdict = _verdict_class(text) if label == SLO_VERDICT or label.endswith("vs SLO") else None
                tds.append(html.Td(text, className=verdict))
        rows.append(html.Tr([html.Th(label, scope="row", className="fw-normal"), *tds]))
    return dbc.Table(
        [head, html.Tbody(rows)], size="sm", striped=True, responsive=True, id="runs-compare-table"
    )


@callback(
    Output("runs-classes", "children"),
    Output(figure_id("runs-occupancy"), "figure"),
    Input("runs-selected", "value"),
    State("runs-kept", "data"),
)
def show_run(key, kept):
    """One run's per-class metrics and its batch and KV occupancy over time."""
    run_ = job_store().result(key) if any(e["key"] == key for e in kept or []) else None
    if run_ is None:
        return None, figures.empty(figures.NO_RUNS)
    classes = pd.DataFrame(run_["classes"])
    shown = pd.DataFrame(
        {
            labels.label(c) if c != "class" else "class": classes[c].map(lambda v, c=c: labels.text(c, v))
            for c in classes.columns
        }
    )
    table = dbc.Table.from_dataframe(shown, size="sm", striped=True, responsive=True)
    return [html.H6("per class"), table], shared.occupancy(pd.DataFrame(run_["timeseries"]))


@callback(
    Output("runs-scenario-file", "data"),
    Input("runs-download-scenario", "n_clicks"),
    State("runs-source", "data"),
    *[State(i, "value") for i in FORM_IDS],
    prevent_initial_call=True,
)
def download_scenario(_clicks, source, *values):
    """The edited scenario as a file `ctxsim run` takes."""
    try:
        data, _ = apply_form(source["data"], list(values))
    except ScenarioError:
        return dash.no_update
    return {
        "content": yaml.safe_dump(data, sort_keys=False),
        "filename": f"{data.get('name', 'scenario')}.yaml",
    }


@callback(
    Output("runs-runs-file", "data"),
    Input("runs-download-runs", "n_clicks"),
    State("runs-kept", "data"),
    prevent_initial_call=True,
)
def download_runs(_clicks, kept):
    """Every kept run: its scenario mapping and summary (enough to rerun and compare)."""
    runs, _ = kept_runs(kept or [])
    body = [{"label": r["label"], "scenario": r["scenario"], "summary": r["summary"]} for r in runs]
    return {"content": json.dumps(body, indent=1), "filename": "runs.json"}
