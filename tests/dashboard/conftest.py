"""The dashboard's page modules exist only once an app has registered them, and Dash's registry is
process-wide: build one app per session (or reuse the one the browser tests built)."""

import sys
import time

import dash
import pytest


@pytest.fixture(scope="session")
def dashboard_app(tmp_path_factory, jobs):
    from dashboard.app import Settings, create_app

    if dash.page_registry:
        return dash.get_app()
    return create_app(Settings(data_root=tmp_path_factory.mktemp("data"), job_dir=jobs.root))


@pytest.fixture(scope="session")
def pages(dashboard_app):
    """Page modules by short name, e.g. pages["designer"].update_answer(...)."""
    return {name.rsplit(".", 1)[-1]: sys.modules[name] for name in dash.page_registry}


@pytest.fixture(scope="session")
def settings(dashboard_app):
    return dashboard_app.server.config["CTXSIM_SETTINGS"]


@pytest.fixture
def session():
    """A fresh browser-window session id."""
    from dashboard.jobs import new_session

    return new_session()


@pytest.fixture
def finish(jobs):
    """`finish(key)` waits for a job to leave the queue and end, and returns its status."""

    def wait(key: str, timeout_s: float = 120.0):
        deadline = time.monotonic() + timeout_s
        while (status := jobs.status(key)).state in ("queued", "running"):
            assert time.monotonic() < deadline, f"job still {status.state} after {timeout_s} s"
            time.sleep(0.05)
        return status

    return wait
