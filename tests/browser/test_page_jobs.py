"""Background jobs as users meet them in Chromium: two windows pressing Run with the same inputs
each get their own run, and a run whose process is killed half way is reported on the page."""

import json
import os
import signal

import pytest

pytestmark = pytest.mark.browser


def _stored(dash_duo, store_id: str):
    """What a `storage_type="session"` store holds in the current window."""
    text = dash_duo.driver.execute_script(f"return window.sessionStorage.getItem('{store_id}')")
    return json.loads(text) if text else None


def _headers(dash_duo) -> list[str]:
    return [th.text for th in dash_duo.find_elements("#runs-compare-table thead th")]


def test_two_windows_pressing_run_with_the_same_inputs_both_get_their_run(dash_duo, dashboard_app):
    dash_duo.start_server(dashboard_app)
    url = dash_duo.server_url + "/runs?example=chat-h100&stop.requests=300"
    driver = dash_duo.driver
    windows = []
    for opened in range(2):
        if opened:
            driver.switch_to.new_window("window")
        driver.get(url)
        dash_duo.wait_for_contains_text("#runs-check", "✓", timeout=30)
        windows.append(driver.current_window_handle)
    for window in windows:
        driver.switch_to.window(window)
        dash_duo.find_element("#runs-run").click()
    sessions = []
    for window in windows:
        driver.switch_to.window(window)
        dash_duo.wait_for_element("#runs-compare-table", timeout=120)
        dash_duo.wait_for_contains_text("#runs-progress-text", "300 requests in", timeout=30)
        assert _headers(dash_duo) == ["", "#1 chat-h100 (2x1 h100-sxm)"]
        kept = _stored(dash_duo, "runs-kept")
        sessions.append(_stored(dash_duo, "session"))
        assert len(kept) == 1 and kept[0]["key"].startswith(sessions[-1])
        assert dash_duo.get_logs() == []
    assert sessions[0] != sessions[1]


def test_a_run_whose_process_is_killed_is_reported_on_the_page(dash_duo, dashboard_app, jobs):
    dash_duo.start_server(dashboard_app)
    dash_duo.driver.get(dash_duo.server_url + "/runs?example=chat-h100&stop.requests=200000")
    dash_duo.wait_for_contains_text("#runs-check", "✓", timeout=30)
    dash_duo.find_element("#runs-run").click()
    dash_duo.wait_for_contains_text("#runs-progress-text", "/ 200,000 requests", timeout=60)
    assert dash_duo.find_element("#runs-run").get_attribute("disabled") is not None
    folder = jobs.folder(_stored(dash_duo, "runs-job")["key"])
    os.kill(json.loads((folder / "running.json").read_text())["pid"], signal.SIGKILL)
    dash_duo.wait_for_contains_text("#runs-run-error", "was killed by SIGKILL before answering", timeout=30)
    dash_duo.wait_for_text_to_equal("#runs-progress-text", "", timeout=10)
    assert dash_duo.find_element("#runs-run").get_attribute("disabled") is None
    assert _stored(dash_duo, "runs-job") is None
    assert dash_duo.get_logs() == []
