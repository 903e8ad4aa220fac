"""Sweep explorer: open a sweep's results folder; its Pareto front, a heatmap over two parameters,
and a table that filters and sorts. Every name and value on the page reads through `sim.report.labels`
(human labels, units, '2 TB/s'); the link carries every choice, log axes and point labels included."""

from __future__ import annotations

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import numpy as np
import pandas as pd
from dash import Input, Output, State, callback, dcc, html

from dashboard import figures
from dashboard.app import settings
from dashboard.components import figure_card, figure_id, labelled, page_url, share_box
from dashboard.sweeps import (
    SweepFolderError,
    find_sweeps,
    is_discrete,
    metric_columns,
    mixed_loads,
    options,
    pareto_front,
    pivot,
    read_results,
    resolve,
    table,
)
from sim.report import labels

dash.register_page(__name__, path="/sweeps", name="Sweep explorer", order=3)

DEFAULT_X = "cost_per_1m_output_tokens_usd"
DEFAULT_Y = "ttft_p99_s"
CHOICES = ["sweeps-x", "sweeps-y", "sweeps-color", "sweeps-rows", "sweeps-cols", "sweeps-metric"]
QUERY_KEYS = ["x", "y", "color", "rows", "cols", "metric"]
DISPLAY = [("log x", "logx"), ("log y", "logy"), ("label points", "labels")]
"""The Pareto plot's display switches, as (text, value); each travels in the link as value=1 or 0."""


def _display(query: dict) -> list[str]:
    """The switches on: log axes when the link asks for them, point labels unless it says labels=0."""
    on = [v for _, v in DISPLAY if v != "labels" and query.get(v) == "1"]
    return [*on, *(["labels"] if query.get("labels") != "0" else [])]


def layout(**query):
    folders = find_sweeps(settings().data_root)
    folder = query.get("dir") if query.get("dir") in folders else (folders[0] if folders else None)
    try:  # each dropdown starts with its options, so the value the link gives shows at once
        choices, values = _choices(*_load(folder), *(query.get(key) for key in QUERY_KEYS))
    except (SweepFolderError, OSError, ValueError):
        choices, values = [[]] * len(CHOICES), [query.get(key) for key in QUERY_KEYS]
    picks = [
        dcc.Dropdown(options, value, id=id_, clearable=id_ == "sweeps-color")
        for id_, options, value in zip(CHOICES, choices, values, strict=True)
    ]
    controls = dbc.Card(
        dbc.CardBody(
            [
                labelled(
                    "results folder",
                    dcc.Dropdown(folders, folder, id="sweeps-folder", clearable=False),
                    help_text=f"sweeps found under {settings().data_root}",
                ),
                html.Div(id="sweeps-error"),
                html.H6("Pareto plot", className="mt-2"),
                labelled("x (lower is better)", picks[0]),
                labelled("y", picks[1]),
                dbc.Checklist(
                    options=[{"label": "higher y is better", "value": "max"}],
                    id="sweeps-maximize",
                    value=["max"] if query.get("maximize") == "1" else [],
                ),
                labelled("colour by", picks[2]),
                dbc.Checklist(
                    options=[{"label": text, "value": value} for text, value in DISPLAY],
                    id="sweeps-display",
                    value=_display(query),
                    inline=True,
                    className="small mb-2",
                ),
                html.H6("heatmap", className="mt-2"),
                labelled("rows", picks[3]),
                labelled("columns", picks[4]),
                labelled("value", picks[5]),
            ]
        )
    )
    return dbc.Row(
        [
            dbc.Col(controls, md=3),
            dbc.Col(
                [
                    share_box("sweeps-link"),
                    html.Div(id="sweeps-pareto-note"),
                    figure_card("sweeps-pareto"),
                    figure_card("sweeps-heatmap"),
                    html.Div(
                        [
                            html.H5("points", className="d-inline me-2"),
                            dbc.Button(
                                "CSV of the filtered rows", id="sweeps-export", size="sm", outline=True
                            ),
                        ]
                    ),
                    dag.AgGrid(
                        id="sweeps-table",
                        rowData=[],
                        columnDefs=[],
                        className="mt-2",
                        defaultColDef={
                            "filter": True,
                            "sortable": True,
                            "floatingFilter": True,
                            "resizable": True,
                        },
                        dashGridOptions={
                            "pagination": True,
                            "paginationPageSize": 20,
                            "suppressFieldDotNotation": True,
                        },
                        csvExportParams={"fileName": "sweep-points.csv"},
                        style={"height": "560px"},
                    ),
                ],
                md=9,
            ),
        ]
    )


def _load(folder: str | None) -> tuple[pd.DataFrame, list[str]]:
    if not folder:
        raise SweepFolderError(
            "no sweep results found; run `ctxsim sweep SWEEP.yaml --out DIR` below this folder"
        )
    return read_results(resolve(settings().data_root, folder))


def _keep(value, options: list[str], fallback: str | None) -> str | None:
    return value if value in options else fallback


@callback(
    [Output(i, "options") for i in CHOICES]
    + [Output(i, "value") for i in CHOICES]
    + [
        Output("sweeps-table", "rowData"),
        Output("sweeps-table", "columnDefs"),
        Output("sweeps-error", "children"),
    ],
    Input("sweeps-folder", "value"),
    *[State(i, "value") for i in CHOICES],
)
def open_folder(folder, x, y, color, rows, cols, metric):
    """Read the folder and offer its metrics and parameters, keeping choices that still apply."""
    try:
        df, params = _load(folder)
    except (SweepFolderError, OSError, ValueError) as exc:
        empty = [[]] * len(CHOICES) + [None] * len(CHOICES)
        return [*empty, [], [], dbc.Alert(str(exc), color="warning", className="small")]
    choices, values = _choices(df, params, x, y, color, rows, cols, metric)
    columns, records = table(df, params)
    return [*choices, *values, records, columns, None]


def _choices(df: pd.DataFrame, params: list[str], x, y, color, rows, cols, metric) -> tuple[list, list]:
    """(options, value) of each dropdown for a sweep's table: its metrics and parameters under their
    human labels, keeping the choices given that still apply."""
    metrics = metric_columns(df, params)
    first = [*params, None, None][:2]
    default_metric = DEFAULT_X if DEFAULT_X in metrics else (metrics or [None])[0]
    values = [
        _keep(x, metrics, default_metric),
        _keep(y, metrics, DEFAULT_Y if DEFAULT_Y in metrics else (metrics or [None])[-1]),
        _keep(color, params + metrics, None),
        _keep(rows, params, first[0]),
        _keep(cols, params, first[1] or first[0]),
        _keep(metric, metrics, default_metric),
    ]
    choices = [options(c) for c in (metrics, metrics, params + metrics, params, params, metrics)]
    return choices, values


@callback(
    Output(figure_id("sweeps-pareto"), "figure"),
    Output("sweeps-pareto-note", "children"),
    Input("sweeps-folder", "value"),
    Input("sweeps-x", "value"),
    Input("sweeps-y", "value"),
    Input("sweeps-maximize", "value"),
    Input("sweeps-color", "value"),
    Input("sweeps-display", "value"),
)
def show_pareto(folder, x, y, maximize, color, display=("labels",)):
    """The Pareto plot, and a warning when its front mixes loads (different arrival rates)."""
    try:
        df, params = _load(folder)
    except (SweepFolderError, OSError, ValueError):
        return figures.empty("no sweep open"), None
    if x not in df or y not in df:
        return dash.no_update, dash.no_update
    color = color if color in df else None
    points = df[list(dict.fromkeys([*params, x, y, *([color] if color else [])]))]
    front = pareto_front(points, x, y, "max" in (maximize or []))
    display = display or []
    fig = figures.pareto(
        points,
        x,
        y,
        front,
        color,
        params=params,
        discrete=bool(color) and is_discrete(points, color, params),
        log_x="logx" in display,
        log_y="logy" in display,
        point_labels="labels" in display,
    )
    undrawn = _undrawn_note(df, params, x, y, "logx" in display, "logy" in display)
    notes = [n for n in (_mixed_load_note(mixed_loads(points, params, front)), undrawn) if n is not None]
    return fig, notes or None


def _undrawn_note(
    df: pd.DataFrame, params: list[str], x: str, y: str, log_x: bool = False, log_y: bool = False
) -> dbc.Alert | None:
    """Which points the plot leaves out, and why: the point failed, its run was overloaded (latency
    is then not reported), the value was not measured, or it is zero on a log axis."""
    missing = df[x].isna() | df[y].isna()
    off_log = (df[x].fillna(1) <= 0) & log_x | (df[y].fillna(1) <= 0) & log_y
    if not (missing | off_log).any():
        return None
    names = figures.point_names(df, params)
    why = []
    for i in np.flatnonzero((missing | off_log).to_numpy()):
        row = df.iloc[i]
        error = row.get("error")
        if not missing.iloc[i]:
            reason = "zero, which a log axis cannot show"
        elif isinstance(error, str) and error:
            reason = f"failed: {error}"
        elif bool(row.get("overloaded", False)):
            reason = "overloaded, so its latency is not reported"
        else:
            reason = "not measured"
        why.append(f"{names[i]} ({reason})")
    axes = [labels.label(c) for c in (x, y) if df.loc[missing, c].isna().any()]
    what = f"have no {' or '.join(dict.fromkeys(axes))} and " if axes else ""
    listed = "; ".join(why[:6]) + (f"; and {len(why) - 6} more" if len(why) > 6 else "")
    return dbc.Alert(
        f"{len(why)} of {len(df)} points {what}are not drawn: {listed}.",
        color="light",
        className="small py-1 mb-2",
        id="sweeps-undrawn",
    )


def _mixed_load_note(mixed: dict[str, list]) -> dbc.Alert | None:
    """Why a front across loads misleads, naming the loads it mixes."""
    if not mixed:
        return None
    loads = "; ".join(
        f"{labels.label(p)} {', '.join(labels.text(p, v) for v in values)}" for p, values in mixed.items()
    )
    return dbc.Alert(
        [
            html.B("This front mixes loads "),
            f"({loads}). A point run at a lighter load looks cheaper or faster without being a better "
            "configuration: colour by the load, or compare the points of one load in the table.",
        ],
        color="warning",
        className="small py-2 mb-2",
        id="sweeps-mixed-loads",
    )


@callback(
    Output(figure_id("sweeps-heatmap"), "figure"),
    Input("sweeps-folder", "value"),
    Input("sweeps-rows", "value"),
    Input("sweeps-cols", "value"),
    Input("sweeps-metric", "value"),
)
def show_heatmap(folder, rows, cols, metric):
    try:
        df, params = _load(folder)
    except (SweepFolderError, OSError, ValueError):
        return figures.empty("no sweep open")
    if not all(c in df for c in (rows, cols, metric)) or rows == cols:
        return figures.empty("choose two different parameters for the heatmap")
    others = [p for p in params if p not in (rows, cols) and df[p].astype(str).nunique() > 1]
    return figures.heatmap(pivot(df, rows, cols, metric), metric, others)


@callback(
    Output("sweeps-table", "exportDataAsCsv"), Input("sweeps-export", "n_clicks"), prevent_initial_call=True
)
def export_table(_clicks):
    return True


@callback(
    Output("sweeps-link", "value"),
    Input("sweeps-folder", "value"),
    Input("sweeps-maximize", "value"),
    Input("sweeps-display", "value"),
    *[Input(i, "value") for i in CHOICES],
)
def share(folder, maximize, display, *values):
    display = display or []
    params = {
        "dir": folder,
        "maximize": "1" if "max" in (maximize or []) else None,
        "logx": "1" if "logx" in display else None,
        "logy": "1" if "logy" in display else None,
        "labels": None if "labels" in display else "0",
    }
    return page_url("/sweeps", params | dict(zip(QUERY_KEYS, values, strict=True)))
