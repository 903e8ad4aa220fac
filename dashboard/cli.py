"""`ctxsim dashboard`: serve the Dash app, on this machine only unless told otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def dashboard(
        host: Annotated[
            str, typer.Option(help="address to listen on; 0.0.0.0 exposes it to the network")
        ] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=1, max=65535)] = 8050,
        data_root: Annotated[
            Path, typer.Option(help="folder the sweep explorer looks for results in")
        ] = Path("."),
        debug: Annotated[bool, typer.Option(help="Dash dev tools and reloading")] = False,
    ) -> None:
        """Serve the dashboard: hardware designer, cluster sizing, scenario runs, sweep explorer."""
        from dashboard.app import Settings, create_app

        create_app(Settings(data_root=data_root.resolve())).run(host=host, port=port, debug=debug)
