"""The Dash app: four pages over the same API the CLI calls.

    /          hardware designer   turn a preset's knobs, see the analytic answers move
    /sizing    cluster sizing      the planner's cheapest cluster for a load and SLOs
    /runs      scenario runs       simulate scenarios in the background and compare them
    /sweeps    sweep explorer      a sweep's results folder: Pareto front, heatmap, table

Pages live in `dashboard/pages/` and register themselves; `create_app` is the only place that
builds a `Dash`, and it is called once per process (Dash's page registry is process-wide). Long
work (simulations, plans) runs as background jobs in separate processes (`dashboard.jobs`), so a
10K-request run does not hold up the other pages; the pages poll for the answer. Every browser
window gets a session id, kept in its session storage, that names its jobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
from dash import Dash, dcc, html

from dashboard.errors import error_banner, on_callback_error
from dashboard.jobs import JobStore, new_session

PACKAGE = Path(__file__).parent
EXAMPLES = PACKAGE.parent / "examples"


@dataclass(frozen=True)
class Settings:
    """Process settings. `examples_dir` lists the scenarios offered on the runs and sizing pages;
    `data_root` bounds the folders the sweep explorer may open; `job_dir` is the folder of a running
    `dashboard.jobs.job_runner` (None: Run and Plan are refused); uploads larger than
    `max_upload_bytes` are refused; each window keeps its latest `max_runs_kept` runs."""

    examples_dir: Path = EXAMPLES
    data_root: Path = field(default_factory=Path.cwd)
    job_dir: Path | None = None
    max_upload_bytes: int = 256 * 1024
    max_runs_kept: int = 6


def create_app(settings: Settings | None = None) -> Dash:
    settings = settings or Settings()
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder=str(PACKAGE / "pages"),
        assets_folder=str(PACKAGE / "assets"),
        title="ctxsim",
        on_error=on_callback_error,
    )
    app.server.config["CTXSIM_SETTINGS"] = settings
    app.server.config["MAX_CONTENT_LENGTH"] = 4 * settings.max_upload_bytes + 1024 * 1024
    links = [
        dbc.NavItem(dbc.NavLink(page["name"], href=page["relative_path"], active="exact"))
        for page in dash.page_registry.values()
    ]
    navbar = dbc.Navbar(
        dbc.Container([dbc.NavbarBrand("ctxsim", href="/"), dbc.Nav(links, navbar=True)], fluid=True),
        color="dark",
        dark=True,
        className="mb-3",
    )

    def layout() -> html.Div:
        """A function, so each new window draws a fresh session id; the one already in a window's
        session storage wins over it, so a window keeps its id across pages and reloads."""
        return html.Div(
            [
                dcc.Store(id="session", storage_type="session", data=new_session()),
                navbar,
                dbc.Container([error_banner(), dash.page_container], fluid=True),
            ]
        )

    app.layout = layout
    return app


def settings() -> Settings:
    """The settings of the app serving the current request."""
    return dash.get_app().server.config["CTXSIM_SETTINGS"]


def job_store() -> JobStore:
    """The background jobs of the app serving the current request."""
    job_dir = settings().job_dir
    if job_dir is None:
        raise OSError("background jobs are off: serve the dashboard with `ctxsim dashboard`")
    return JobStore(job_dir)
