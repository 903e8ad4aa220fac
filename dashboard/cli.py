"""`ctxsim dashboard`: serve the Dash app, on this machine only unless told otherwise."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

CPUS = os.cpu_count() or 1


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
        workers: Annotated[int, typer.Option(min=1, help="web worker processes")] = min(4, CPUS),
        threads: Annotated[int, typer.Option(min=1, help="threads per web worker")] = 4,
        jobs: Annotated[
            int, typer.Option(min=1, help="job processes: simulations and plans run at once")
        ] = max(1, CPUS // 2),
        keep_hours: Annotated[
            float, typer.Option(min=0.01, help="results unused for this long are removed")
        ] = 4.0,
        job_minutes: Annotated[
            float, typer.Option(min=0.1, help="a simulation or plan running longer is stopped")
        ] = 30.0,
        debug: Annotated[
            bool, typer.Option(help="Dash dev tools on Werkzeug's development server (one process)")
        ] = False,
    ) -> None:
        """Serve the dashboard: hardware designer, cluster sizing, scenario runs, sweep explorer."""
        from dashboard.server import serve

        serve(
            host,
            port,
            data_root.resolve(),
            workers=workers,
            threads=threads,
            jobs=jobs,
            ttl_s=keep_hours * 3600,
            timeout_s=job_minutes * 60,
            debug=debug,
        )
