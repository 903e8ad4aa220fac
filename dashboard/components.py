"""Layout builders shared by the pages, the one callback every figure shares (its "CSV" button,
which downloads the data the figure plots; plotly's camera button gives the PNG), and the controls
of a page's background job.

A figure card's ids are pattern-matching dicts, `{"type": "figure", "name": NAME}`, so pages write
to `figure_id(NAME)` and the CSV callback below serves every card without knowing the pages.
"""

from __future__ import annotations

from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
from dash import MATCH, Input, Output, State, callback, dcc, html

from dashboard.app import job_store, settings
from dashboard.figures import figure_csv
from dashboard.jobs import Status
from dashboard.runs import parse_upload, read_example
from dashboard.whatif import BASIS_LABELS, stack_choices
from sim.engine.summary import Summary
from sim.format import count
from sim.report.readout import BORDERLINE, notes, overload
from sim.scenario import ScenarioError

POLL_MS = 500


def figure_id(name: str) -> dict:
    return {"type": "figure", "name": name}


def figure_card(name: str, height: int | None = None) -> dbc.Card:
    """A graph with a CSV download of its data; PNG comes from the graph's own toolbar."""
    config = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "filename": name, "scale": 2}}
    return dbc.Card(
        dbc.CardBody(
            [
                dcc.Loading(
                    dcc.Graph(
                        id=figure_id(name), config=config, style={"height": f"{height}px"} if height else {}
                    )
                ),
                dbc.Button(
                    "CSV",
                    id={"type": "csv", "name": name},
                    size="sm",
                    color="secondary",
                    outline=True,
                    className="mt-1",
                    title="download the data behind this figure",
                ),
                dcc.Download(id={"type": "csv-file", "name": name}),
            ]
        ),
        className="mb-3",
    )


@callback(
    Output({"type": "csv-file", "name": MATCH}, "data"),
    Input({"type": "csv", "name": MATCH}, "n_clicks"),
    State(figure_id(MATCH), "figure"),
    State({"type": "csv", "name": MATCH}, "id"),
    prevent_initial_call=True,
)
def download_figure_csv(_clicks, figure, button_id):
    if not figure:
        return None
    return {"content": figure_csv(figure), "filename": f"{button_id['name']}.csv", "type": "text/csv"}


def labelled(label: str, control, help_text: str | None = None) -> html.Div:
    children = [dbc.Label(label, className="mb-0 small fw-semibold"), control]
    if help_text:
        children.append(dbc.FormText(help_text))
    return html.Div(children, className="mb-2")


def serving_controls(prefix: str, stack: str | None, basis: str, price: float | None) -> dbc.Row:
    """The serving stack (`{prefix}-stack`), the cost basis (`{prefix}-basis`) and an optional own
    price per device-hour (`{prefix}-price`, empty: the basis's). A `stack` of None leaves the
    dropdown empty: the scenario's own stack."""
    stack_box = dcc.Dropdown(stack_choices(), stack, id=f"{prefix}-stack", clearable=stack is None)
    basis_box = dbc.RadioItems(
        options=[{"label": text, "value": key} for key, text in BASIS_LABELS.items()],
        value=basis,
        id=f"{prefix}-basis",
        inline=True,
    )
    price_box = dbc.Input(
        id=f"{prefix}-price", type="number", min=0, step="any", value=price, size="sm", debounce=True,
        placeholder="the basis's",
    )
    return dbc.Row(
        [
            dbc.Col(labelled("serving stack", stack_box, "roofline: the physical lower bound"), md=6),
            dbc.Col(labelled("$ / device-hour", price_box, "empty: the basis's price"), md=6),
            dbc.Col(labelled("cost basis", basis_box), width=12),
        ],
        className="g-2",
    )


def share_box(id_: str) -> dbc.InputGroup:
    """A read-only link to the page's current state, with a copy button."""
    return dbc.InputGroup(
        [
            dbc.InputGroupText("link to this view"),
            dbc.Input(id=id_, readonly=True, size="sm"),
            dbc.InputGroupText(dcc.Clipboard(target_id=id_, title="copy")),
        ],
        size="sm",
        className="mb-3",
    )


def page_url(path: str, params: dict) -> str:
    """`path?query` for the parameters that are set (a list gives a repeated key)."""
    query = urlencode({k: v for k, v in params.items() if v is not None and v != ""}, doseq=True)
    return f"{path}?{query}" if query else path


def upload_box(id_: str, text: str = "Drop a scenario YAML here, or click to choose one") -> dcc.Upload:
    return dcc.Upload(
        id=id_,
        children=html.Div(text, className="small text-muted"),
        multiple=False,
        className="border border-2 rounded p-2 mb-2 text-center",
        style={"borderStyle": "dashed"},
    )


def register_source_choice(page: str, runnable: bool = True) -> None:
    """Register the callback that fills a page's `{page}-source` store from its example dropdown or its
    upload box, so the pages that start from a scenario load and check it the same way. An upload
    passes the same checks as the CLI's scenario files (`runnable`: as `ctxsim run` takes them, else
    as `ctxsim plan` does, `dashboard.runs.parse_upload`) and is marked uploaded; a refused one
    leaves the store alone and shows its message in `{page}-source-error`."""

    @callback(
        Output(f"{page}-source", "data"),
        Output(f"{page}-source-error", "children"),
        Input(f"{page}-example", "value"),
        Input(f"{page}-upload", "contents"),
        State(f"{page}-upload", "filename"),
        prevent_initial_call=True,
    )
    def choose_source(example, contents, filename):
        try:
            if dash.ctx.triggered_id == f"{page}-upload" and contents:
                data = parse_upload(contents, filename, settings().max_upload_bytes, runnable)
                return {"label": filename, "data": data, "uploaded": True}, None
            return {"label": example, "data": read_example(settings().examples_dir, example)}, None
        except ScenarioError as exc:
            return dash.no_update, dbc.Alert(str(exc), color="danger", className="small")


def run_notes(label: str, summary: Summary) -> list[dbc.Alert]:
    """A run's overload and caveats as alerts naming the run: overload red, warnings amber, the rest
    as small print."""
    alerts = []
    if (load := overload(summary)) is not None:
        alerts.append(dbc.Alert(f"{label}: OVERLOADED, {load}", color="danger", className="small py-1"))
    colour = {"warning": "warning", "info": "light"}
    alerts += [
        dbc.Alert(f"{label}: {n.text}", color=colour[n.level], className="small py-1 mb-1")
        for n in notes(summary)
    ]
    return alerts


def verdict_colour(verdict: str) -> str:
    """A plan verdict's Bootstrap colour: meets green, borderline amber, misses red."""
    return {"meets": "success", "borderline": "warning"}.get(verdict, "danger")


def verdict_badge(verdict: str) -> dbc.Badge:
    """A plan verdict as a badge in its colour."""
    return dbc.Badge(verdict, color=verdict_colour(verdict), className="me-2")


def verdict_card_body(best: dict) -> list:
    """The chosen configuration's verdict, how many simulated requests judged it, and what
    borderline means when it is."""
    line = html.P(
        [verdict_badge(best["verdict"]), f"judged on {count(best['requests'])} simulated requests"],
        id="sizing-verdict",
        className="small mb-1",
    )
    if best["verdict"] != "borderline":
        return [line]
    return [line, dbc.Alert(BORDERLINE, color="warning", className="small py-1 mb-1")]


def job_parts(page: str) -> list:
    """A page's job: `{page}-job` holds its key in the window's session storage, so polling picks up
    again after a visit to another page, and `{page}-poll` is the timer that polls it."""
    return [
        dcc.Store(id=f"{page}-job", storage_type="session"),
        dcc.Interval(id=f"{page}-poll", interval=POLL_MS, disabled=True),
    ]


def register_job_controls(page: str) -> None:
    """Register the callbacks that make `{page}-run`, `{page}-cancel` and the poll timer follow the
    page's job: while one waits or runs, Run is off and Cancel and polling are on. Cancel asks the
    runner to stop the job; the next poll reports it."""

    @callback(
        Output(f"{page}-run", "disabled"),
        Output(f"{page}-cancel", "disabled"),
        Output(f"{page}-poll", "disabled"),
        Input(f"{page}-job", "data"),
    )
    def follow_job(job):
        return bool(job), not job, not job

    @callback(
        Output(f"{page}-cancel", "disabled", allow_duplicate=True),
        Input(f"{page}-cancel", "n_clicks"),
        State(f"{page}-job", "data"),
        prevent_initial_call=True,
    )
    def cancel_job(_clicks, job):
        if job:
            job_store().cancel(job["key"])
        return True


def job_progress(status: Status) -> tuple[float, str]:
    """(percent, text) for a job's progress bar and line."""
    if status.state == "queued":
        return 0, f"queued behind {count(status.ahead)} jobs" if status.ahead else "queued"
    report = status.progress or {}
    return report.get("percent") or 0, report.get("text") or status.state


def job_message(status: Status) -> dbc.Alert:
    """Why a job ended without an answer: failed (the error's one line), died (how its process
    ended), cancelled, or gone (expired, or the dashboard restarted)."""
    if status.state == "gone":
        text = "this job is no longer on the server (it expired, or the dashboard restarted); run it again"
        return dbc.Alert(text, color="warning", className="small")
    colour = "secondary" if status.state == "cancelled" else "danger"
    return dbc.Alert(status.message, color=colour, className="small")
