"""The dashboard's error boundary: every callback's exception ends up in one banner at the top of
the page, through `sim.errors.explain` like the CLI's, instead of a traceback in the server log and
a page that silently stops updating. Callbacks still show the errors they expect next to the field
themselves; this catches what they do not."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc

from sim.errors import INPUT_ERROR, explain

BANNER_ID = "error-banner"


def error_banner() -> dbc.Alert:
    """The banner, closed until a callback fails."""
    return dbc.Alert(id=BANNER_ID, is_open=False, dismissable=True, color="danger", className="small")


def on_callback_error(exc: Exception) -> None:
    """Dash's app-wide `on_error`: show the one-line message in the banner and leave the failed
    callback's outputs as they were (returning None means no update)."""
    code, message = explain(exc)
    color = "warning" if code == INPUT_ERROR else "danger"
    dash.set_props(BANNER_ID, {"children": message, "is_open": True, "color": color})
