"""The planner's answer as Dash components, for the sizing page: the question it answers, the best
configuration with its p99s against the targets (headroom, thin headroom, ties), the best on each
hardware type, and the candidates as a sortable table's rows. The reading itself is
`dashboard.sizing`'s; here it is only laid out."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html
from dash.dash_table.Format import Format, Scheme, Symbol

from dashboard.components import verdict_card_body, verdict_colour
from dashboard.sizing import (
    THIN_HEADROOM,
    candidates_table,
    cost_basis_text,
    layout_text,
    per_hardware,
    slo_rows,
    thin_headroom,
    tie_notes,
)
from sim.format import count, percent, seconds, usd

MONEY = Format(precision=4, scheme=Scheme.decimal_or_exponent, symbol=Symbol.yes, symbol_prefix="$")
SECONDS = Format(precision=4, scheme=Scheme.decimal_or_exponent)
SHARE = Format(precision=0, scheme=Scheme.percentage)
THIN = "text-warning-emphasis fw-semibold"


def asked_text(asked: dict, verb: str) -> list:
    """The question in words: the model as a heading, then the workload, load and targets, search."""
    return [
        html.H5([f"{verb} ", html.Span(asked["model"], className="fw-bold")], className="card-title mb-1"),
        html.Div(
            [
                html.Div(["workload: ", asked["workload"]]),
                html.Div(["load: ", asked["load"]]),
                html.Div(["serving: ", asked["serving"]]) if "serving" in asked else None,
                html.Div(["search: ", asked["search"]], className="text-muted"),
            ],
            className="small",
        ),
    ]


def best_card(best: dict, plan_dict: dict, asked: dict) -> dbc.Card:
    """The cheapest configuration, what it answers, its cost, verdict, targets and flags."""
    slos = plan_dict["slos"]
    warnings = [
        dbc.Alert(f"thin headroom: {w}", color="warning", className="small py-1 mb-1")
        for w in thin_headroom(best, slos)
    ]
    ties = [dbc.Alert(t, color="info", className="small py-1 mb-1") for t in tie_notes(best, plan_dict)]
    return dbc.Card(
        dbc.CardBody(
            [
                html.Div(
                    [
                        html.Div(f"best for {asked['model']} · {asked['load']}"),
                        html.Div(asked["workload"]),
                    ],
                    className="small text-muted mb-1",
                    id="sizing-answer-for",
                ),
                html.H5(f"{layout_text(best)}: {best['devices']} devices", className="card-title"),
                html.P(
                    [
                        f"{usd(best['cost_per_hour_usd'])} per hour · ",
                        f"{usd(best['cost_per_1m_output_tokens_usd'])} per 1M output tokens · ",
                        f"{usd(best['cost_per_1m_input_tokens_usd'])} per 1M input tokens",
                        html.Div(cost_basis_text(best), className="small text-muted", id="sizing-cost-basis"),
                    ],
                    id="sizing-cost",
                ),
                *verdict_card_body(best),
                slo_table(best, slos),
                *warnings,
                *ties,
            ]
        ),
        color=verdict_colour(best["verdict"]),
        outline=True,
    )


def slo_table(c: dict, slos: list[dict]) -> dbc.Table:
    """Each target's limit, the achieved p99 and the headroom, thin headroom in amber."""
    rows = [
        html.Tr(
            [
                html.Td(r["target"]),
                html.Td(seconds(r["limit_s"])),
                html.Td(seconds(r["achieved_s"])),
                html.Td(
                    percent(r["headroom"], 0),
                    className=THIN if r["thin"] else "text-success",
                ),
            ]
        )
        for r in slo_rows(c, slos)
    ]
    head = html.Thead(html.Tr([html.Th(h) for h in ("target", "limit", "achieved", "headroom")]))
    return dbc.Table([head, html.Tbody(rows)], size="sm", className="mb-2 mt-2", id="sizing-slos")


def _headroom_cell(c: dict, slos: list[dict]) -> list:
    out = []
    for r in slo_rows(c, slos):
        style = THIN if r["thin"] else ""
        out.append(
            html.Div(
                f"{r['target']} {seconds(r['achieved_s'])} ({percent(r['headroom'], 0)})", className=style
            )
        )
    return out


def per_hardware_card(plan_dict: dict) -> dbc.Card:
    """The cheapest configuration on each hardware type searched, or why there is none."""
    slos = plan_dict["slos"]
    body = []
    for row in per_hardware(plan_dict):
        c = row["candidate"]
        if c is None:
            body.append(
                html.Tr(
                    [
                        html.Td(row["hardware"], className="fw-semibold"),
                        html.Td(
                            f"none within {count(plan_dict['max_devices'])} devices: {row['why']}",
                            colSpan=4,
                            className="small text-muted",
                        ),
                    ]
                )
            )
            continue
        notes = [*tie_notes(c, plan_dict), *(f"thin headroom: {w}" for w in thin_headroom(c, slos))]
        best = plan_dict["best"] is not None and c == plan_dict["best"]
        body.append(
            html.Tr(
                [
                    html.Td(
                        [
                            row["hardware"],
                            dbc.Badge("best", color="success", className="ms-1") if best else None,
                        ],
                        className="fw-semibold",
                    ),
                    html.Td(layout_text(c)),
                    html.Td([usd(c["cost_per_hour_usd"]), "/h"]),
                    html.Td(_headroom_cell(c, slos), className="small"),
                    html.Td([html.Div(n) for n in notes], className="small"),
                ]
            )
        )
    head = html.Thead(
        html.Tr(
            [html.Th(h) for h in ("hardware", "cheapest configuration", "cost", "p99 (headroom)", "notes")]
        )
    )
    return dbc.Card(
        dbc.CardBody(
            [
                html.H5("best per hardware type", className="card-title"),
                dbc.Table(
                    [head, html.Tbody(body)],
                    size="sm",
                    hover=True,
                    className="mb-0",
                    id="sizing-per-hardware-table",
                ),
                html.Div(
                    [
                        html.Div(f"{c['hardware']}: {cost_basis_text(c)}")
                        for c in plan_dict.get("per_hardware", ())
                    ],
                    className="small text-muted mt-1",
                ),
            ]
        )
    )


def candidates_data(plan_dict: dict) -> tuple[list[dict], list[dict], list[dict]]:
    """The candidates as a DataTable's rows, columns (numbers formatted, so they sort as numbers)
    and conditional styles: borderline rows shaded amber, thin headroom in amber."""
    frame = candidates_table(plan_dict)
    frame = frame.astype(object).where(frame.notna(), None)
    columns = []
    for name in frame.columns:
        column = {"name": name, "id": name}
        if name.startswith("$"):
            column |= {"type": "numeric", "format": MONEY}
        elif name.endswith("(s)"):
            column |= {"type": "numeric", "format": SECONDS}
        elif name.endswith("headroom"):
            column |= {"type": "numeric", "format": SHARE}
        columns.append(column)
    styles = [{"if": {"filter_query": '{verdict} = "borderline"'}, "backgroundColor": "#fff3cd"}]
    styles += [
        {
            "if": {"filter_query": f"{{{name}}} < {THIN_HEADROOM}", "column_id": name},
            "color": "#997404",
            "fontWeight": "600",
        }
        for name in frame.columns
        if name.endswith("headroom")
    ]
    return frame.to_dict("records"), columns, styles
