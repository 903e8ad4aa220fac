"""`ctxsim dashboard` as a team runs it: gunicorn web workers and the job runner as real processes
on a free port (and `--debug`'s development server). A run started through one web worker is polled
through any; Ctrl+C (to the whole process group, as a terminal sends it) or SIGTERM (to the server
alone, as a service manager may) stops every process, frees the port and removes the job folder."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests
from dash_client import Page

from dashboard.runs import form_values, read_example
from sim.scenario import scenario_from_dict


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ctrl_c_reaches_it() -> None:
    """Ctrl+C at its default in the server, as a terminal starts it: a test run started in the
    background of a non-interactive shell (`cmd &`) inherits SIGINT ignored, and Python then keeps
    ignoring it, so the development server would never stop."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def start_server():
    """`start_server(*options)` serves the dashboard in a process group of its own and returns
    (process, base URL, job folder); whatever is still running at the end is killed."""
    started = []

    def start(*options: str):
        port = free_port()
        command = [sys.executable, "-c", "from sim.cli import app; app()", "dashboard", "--port", str(port)]
        process = subprocess.Popen(
            [*command, *options],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            start_new_session=True,
            preexec_fn=_ctrl_c_reaches_it,
        )
        started.append(process)
        folder = Path(process.stdout.readline().rsplit(" ", 1)[-1].strip())
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(base, timeout=5).status_code == 200:
                    return process, base, folder
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "the server did not come up"
            time.sleep(0.2)

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run_over_http(base: str, values: dict) -> Page:
    """Press Run on the runs page and poll until the run is kept, as the browser would."""
    http = requests.Session()

    def post_json(path: str, body: str) -> tuple[int, dict]:
        reply = http.post(base + path, data=body, headers={"Content-Type": "application/json"}, timeout=30)
        return reply.status_code, reply.json()

    page = Page(lambda path: http.get(base + path, timeout=30).json(), post_json, values)
    page.post("runs-job.data...runs-run-error")
    deadline, ticks = time.monotonic() + 120, 0
    while page.values["runs-job.data"]:
        assert time.monotonic() < deadline, page.values.get("runs-progress-text.children")
        ticks += 1
        page.values["runs-poll.n_intervals"] = ticks
        page.post("runs-kept.data...runs-progress.value")
        time.sleep(0.1)
    return page


GUNICORN = ("--workers", "2", "--threads", "2", "--jobs", "1")


@pytest.mark.parametrize(
    ("options", "stop", "processes"),
    [
        (GUNICORN, "ctrl-c", 5),  # the server, 2 web workers, the job runner, its job process
        (GUNICORN, "sigterm", 5),
        (("--debug",), "ctrl-c", 3),  # Werkzeug's server, the job runner, its job process
    ],
)
def test_the_server_runs_jobs_and_stops_clean(
    start_server, pages, settings, session, options, stop, processes
):
    process, base, folder = start_server(*options)
    family = [process, *psutil.Process(process.pid).children(recursive=True)]
    assert len(family) >= processes
    data = read_example(settings.examples_dir, "chat-h100")
    form = form_values(scenario_from_dict(data))
    form[7] = 300  # requests
    page = run_over_http(
        base,
        {
            "session.data": session,
            "runs-source.data": {"label": "chat-h100", "data": data},
            "runs-kept.data": [],
            "runs-run.n_clicks": 1,
            **{f"{i}.value": v for i, v in zip(pages["runs"].FORM_IDS, form, strict=True)},
        },
    )
    assert page.values["runs-run-error.children"] is None
    assert page.values["runs-progress-text.children"].startswith("#1: 300 requests in")
    assert [k["label"] for k in page.values["runs-kept.data"]] == ["#1 chat-h100 (2x1 h100-sxm)"]
    assert folder.is_dir()
    if stop == "ctrl-c":
        os.killpg(process.pid, signal.SIGINT)
    else:
        process.send_signal(signal.SIGTERM)
    process.wait(30)
    _gone, alive = psutil.wait_procs(family, timeout=15)
    assert alive == [] and not folder.exists()
    with socket.socket() as s:  # a restarted server could listen on the port again
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", int(base.rsplit(":", 1)[1])))
        s.listen()
