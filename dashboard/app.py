"""The Dash app: four pages over the same API the CLI calls.

    /          hardware designer   turn a preset's knobs, see the analytic answers move
    /sizing    cluster sizing      the planner's cheapest cluster for a load and SLOs
    /runs      scenario runs       simulate scenarios in the background and compare them
    /sweeps    sweep explorer      a sweep's results folder: Pareto front, heatmap, table

Pages live in `dashboard/pages/` and register themselves; `create_app` is the only place that
builds a `Dash`, and it is called once per process (Dash's page registry is process-wide). Long
callbacks (simulations, plans) run in worker processes through a disk-cache manager, so a 10K-request
run does not hold up the other pages.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
import diskcache
from dash import Dash, DiskcacheManager, html

from dashboard.errors import error_banner, on_callback_error

PACKAGE = Path(__file__).parent
EXAMPLES = PACKAGE.parent / "examples"


@dataclass(frozen=True)
class Settings:
    """Process settings. `examples_dir` lists the scenarios offered on the runs and sizing pages;
    `data_root` bounds the folders the sweep explorer may open; `cache_dir` holds background-job
    state (a fresh temporary folder when None); uploads larger than `max_upload_bytes` are refused."""

    examples_dir: Path = EXAMPLES
    data_root: Path = field(default_factory=Path.cwd)
    cache_dir: Path | None = None
    max_upload_bytes: int = 256 * 1024
    max_runs_kept: int = 6


def create_app(settings: Settings | None = None) -> Dash:
    settings = settings or Settings()
    cache_dir = settings.cache_dir or Path(tempfile.mkdtemp(prefix="ctxsim-dashboard-"))
    manager = DiskcacheManager(diskcache.Cache(str(cache_dir)))
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder=str(PACKAGE / "pages"),
        assets_folder=str(PACKAGE / "assets"),
        background_callback_manager=manager,
        title="ctxsim",
        on_error=on_callback_error,
    )
    app.server.config["CTXSIM_SETTINGS"] = settings
    app.server.config["MAX_CONTENT_LENGTH"] = 4 * settings.max_upload_bytes + 1024 * 1024
    links = [
        dbc.NavItem(dbc.NavLink(page["name"], href=page["relative_path"], active="exact"))
        for page in dash.page_registry.values()
    ]
    app.layout = html.Div(
        [
            dbc.Navbar(
                dbc.Container([dbc.NavbarBrand("ctxsim", href="/"), dbc.Nav(links, navbar=True)], fluid=True),
                color="dark",
                dark=True,
                className="mb-3",
            ),
            dbc.Container([error_banner(), dash.page_container], fluid=True),
        ]
    )
    return app


def settings() -> Settings:
    """The settings of the app serving the current request."""
    return dash.get_app().server.config["CTXSIM_SETTINGS"]
