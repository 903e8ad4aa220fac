"""How `ctxsim dashboard` serves a team: gunicorn's worker processes for the pages, and a job
runner for simulations and plans (`dashboard.jobs`), sharing one temporary job folder that lives
exactly as long as the server.

    ctxsim dashboard            gunicorn's master: starts the rest, cleans up when it stops
     ├─ web worker x N          pages and callbacks, T threads each; queue jobs, read answers
     └─ job runner              one process handing jobs to J job processes, one job each at a time

Order matters. The job runner is started, the app built and warmed (numba's kernels compiled,
Dash's setup done: a first user would otherwise wait a second or more per worker); gunicorn then
forks the web workers from a process with no other threads (its control socket, which would add
one, is off), so a fork never copies a lock some thread held. Ctrl+C or SIGTERM stops the
workers, then the runner (which kills its job processes), then removes the folder. `--debug` serves
the same app and jobs from Werkzeug's development server in this one process, with Dash's dev
tools and no reloading (a reload would orphan the job runner it started).
"""

from __future__ import annotations

from pathlib import Path

from gunicorn.app.base import BaseApplication

from dashboard.app import Settings, create_app
from dashboard.jobs import job_runner
from dashboard.whatif import warm_up


class _Gunicorn(BaseApplication):
    """gunicorn over an app built in this process, with settings given here rather than read from
    the command line or a config file."""

    def __init__(self, app, options: dict):
        self.application, self.options = app, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.application


def serve(
    host: str,
    port: int,
    data_root: Path,
    *,
    workers: int,
    threads: int,
    jobs: int,
    ttl_s: float,
    timeout_s: float,
    debug: bool = False,
) -> None:
    """Serve the dashboard until interrupted (see the module docstring for the processes)."""
    with job_runner(jobs, ttl_s, timeout_s) as store:
        app = create_app(Settings(data_root=data_root, job_dir=store.root))
        warm_up()
        if debug:
            print(f"ctxsim dashboard (development server) on http://{host}:{port}; jobs in {store.root}")
            app.run(host=host, port=port, debug=True, use_reloader=False)
            return
        app.server.test_client().get("/")  # Dash's once-per-process setup, done before the fork
        print(
            f"ctxsim dashboard on http://{host}:{port}: {workers} web workers x {threads} threads, "
            f"{jobs} job processes; jobs in {store.root}",
            flush=True,
        )
        options = {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": "gthread",
            "threads": threads,
            "graceful_timeout": 5,
            "control_socket_disable": True,
            "proc_name": "ctxsim-dashboard",
            "loglevel": "warning",
        }
        _Gunicorn(app.server, options).run()
