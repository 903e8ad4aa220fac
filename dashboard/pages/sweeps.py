"""Sweep explorer: open a sweep's results folder; its Pareto front, a heatmap over two parameters,
and a table that filters and sorts."""

from __future__ import annotations

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, dcc, html

from dashboard import figures
from dashboard.app import settings
from dashboard.components import figure_card, figure_id, labelled, page_url, share_box
from dashboard.sweeps import (
    SweepFolderError,
    find_sweeps,
    metric_columns,
    pareto_front,
    pivot,
    read_results,
    resolve,
)

dash.register_page(__name__, path="/sweeps", name="Sweep explorer", order=3)

DEFAULT_X = "cost_per_1m_output_tokens_usd"
DEFAULT_Y = "ttft_p99_s"
CHOICES = ["sweeps-x", "sweeps-y", "sweeps-color", "sweeps-rows", "sweeps-cols", "sweeps-metric"]
QUERY_KEYS = ["x", "y", "color", "rows", "cols", "metric"]


def layout(**query):
    folders = find_sweeps(settings().data_root)
    folder = query.get("dir") if query.get("dir") in folders else (folders[0] if folders else None)
    picks = [
        dcc.Dropdown(id=id_, value=query.get(key), clearable=key == "color")
        for id_, key in zip(CHOICES, QUERY_KEYS, strict=True)
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
    metrics = metric_columns(df, params)
    first = [*params, None, None][:2]
    values = [
        _keep(x, metrics, DEFAULT_X if DEFAULT_X in metrics else (metrics or [None])[0]),
        _keep(y, metrics, DEFAULT_Y if DEFAULT_Y in metrics else (metrics or [None])[-1]),
        _keep(color, params + metrics, None),
        _keep(rows, params, first[0]),
        _keep(cols, params, first[1] or first[0]),
        _keep(metric, metrics, DEFAULT_X if DEFAULT_X in metrics else (metrics or [None])[0]),
    ]
    options = [metrics, metrics, params + metrics, params, params, metrics]
    columns = [
        {"field": c, "headerName": c, "pinned": "left" if c in params else None}
        for c in df.columns
        if c != "point_id"
    ]
    return [*options, *values, df.to_dict("records"), columns, None]


@callback(
    Output(figure_id("sweeps-pareto"), "figure"),
    Input("sweeps-folder", "value"),
    Input("sweeps-x", "value"),
    Input("sweeps-y", "value"),
    Input("sweeps-maximize", "value"),
    Input("sweeps-color", "value"),
)
def show_pareto(folder, x, y, maximize, color):
    try:
        df, params = _load(folder)
    except (SweepFolderError, OSError, ValueError):
        return figures.empty("no sweep open")
    if x not in df or y not in df:
        return dash.no_update
    points = df[[c for c in dict.fromkeys([*params, x, y, *([color] if color in df else [])])]]
    return figures.pareto(points, x, y, pareto_front(points, x, y, "max" in (maximize or [])), color)


@callback(
    Output(figure_id("sweeps-heatmap"), "figure"),
    Input("sweeps-folder", "value"),
    Input("sweeps-rows", "value"),
    Input("sweeps-cols", "value"),
    Input("sweeps-metric", "value"),
)
def show_heatmap(folder, rows, cols, metric):
    try:
        df, _ = _load(folder)
    except (SweepFolderError, OSError, ValueError):
        return figures.empty("no sweep open")
    if not all(c in df for c in (rows, cols, metric)) or rows == cols:
        return figures.empty("choose two different parameters for the heatmap")
    return figures.heatmap(pivot(df, rows, cols, metric), metric)


@callback(
    Output("sweeps-table", "exportDataAsCsv"), Input("sweeps-export", "n_clicks"), prevent_initial_call=True
)
def export_table(_clicks):
    return True


@callback(
    Output("sweeps-link", "value"),
    Input("sweeps-folder", "value"),
    Input("sweeps-maximize", "value"),
    *[Input(i, "value") for i in CHOICES],
)
def share(folder, maximize, *values):
    params = {"dir": folder, "maximize": "1" if "max" in (maximize or []) else None}
    return page_url("/sweeps", params | dict(zip(QUERY_KEYS, values, strict=True)))
