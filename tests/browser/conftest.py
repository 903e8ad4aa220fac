"""Headless Chromium for dash_duo, and one app per session (Dash's page registry is process-wide).

Run with `pytest tests/browser --headless -m browser`. Screenshots go to $CTXSIM_SCREENSHOT_DIR
when set, else to the session's temporary folder; the path is printed either way."""

import os
from pathlib import Path

import pandas as pd
import pytest
from selenium.webdriver.chrome.options import Options


def pytest_setup_options():
    options = Options()
    for arg in (
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-extensions",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    return options


def _sweep(folder: Path) -> None:
    """A small finished sweep over HBM bandwidth x replicas, in the layout `ctxsim sweep` writes."""
    rows = []
    for i, (bw, replicas) in enumerate((b, r) for b in (2e12, 3.35e12, 5e12) for r in (1, 2, 4)):
        ttft = 2.0 / (bw / 1e12) / replicas
        rows.append(
            {
                "point_id": f"p{i}",
                "point": i,
                "label": f"bw={bw:g}, replicas={replicas}",
                "hardware.memory.hbm.bandwidth_bytes_per_s": bw,
                "cluster.replicas": replicas,
                "error": None,
                "ttft_p99_s": ttft,
                "tpot_p99_s": ttft / 40,
                "throughput_rps": 5.0 * replicas,
                "cost_per_1m_output_tokens_usd": 0.5 * replicas * (1 + bw / 1e13),
                "devices": replicas,
            }
        )
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(folder / "results.parquet", index=False)
    (folder / "sweep.json").write_text(
        '{"name": "bw-x-replicas", "params": '
        '["hardware.memory.hbm.bandwidth_bytes_per_s", "cluster.replicas"]}'
    )


@pytest.fixture(scope="session")
def dashboard_app(tmp_path_factory, jobs):
    import dash

    from dashboard.app import Settings, create_app

    if dash.page_registry:  # the unit tests' app, in a run that mixes both
        app = dash.get_app()
    else:
        app = create_app(Settings(data_root=tmp_path_factory.mktemp("data"), job_dir=jobs.root))
    sweep = app.server.config["CTXSIM_SETTINGS"].data_root / "sweeps" / "bw-x-replicas"
    if not sweep.exists():
        _sweep(sweep)
    return app


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory):
    folder = Path(os.environ.get("CTXSIM_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots in {folder}")
    return folder
