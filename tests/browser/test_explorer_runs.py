"""The sweep explorer and the runs page in headless Chromium (issue 18, items 5 and 6).

Sweep explorer: colouring by hardware from the link that used to answer HTTP 500 and blank the plot;
human labels and units on axes, legend and table; log axes and point labels; the warning on a front
across loads. Runs page: placeholders before a run; two runs compared in ms and %, with SLO verdicts
and a change column; progress started again for each run; one colour per replica in both panels; a
misspelt upload refused with what it meant. No browser console errors anywhere. Screenshots of both
pages go to the screenshot folder (the README's come from there, see docs/screenshots/)."""

import json
import shutil
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

pytestmark = pytest.mark.browser

DATA = Path(__file__).resolve().parents[1] / "data" / "sweeps"
PARETO = json.dumps({"name": "sweeps-pareto", "type": "figure"}, separators=(",", ":"))
HEATMAP = json.dumps({"name": "sweeps-heatmap", "type": "figure"}, separators=(",", ":"))
LATENCY = json.dumps({"name": "runs-latency", "type": "figure"}, separators=(",", ":"))
OCCUPANCY = json.dumps({"name": "runs-occupancy", "type": "figure"}, separators=(",", ":"))
ISSUE_LINK = (
    "/sweeps?dir=sweeps/hardware-tp&x=cost_per_1m_output_tokens_usd&y=tpot_p99_s&color=hardware"
    "&rows=hardware&cols=parallelism.tp&metric=cost_per_1m_output_tokens_usd"
)
FIGURE = """
const host = document.getElementById(arguments[0]);
const gd = host && (host.classList.contains('js-plotly-plot') ? host : host.querySelector('.js-plotly-plot'));
if (!gd || !gd.data || !gd._fullLayout) return null;
return {
  traces: gd._fullData.map(t => ({name: t.name || '', n: t._length || 0, y: t.yaxis || 'y',
                             color: t.line && t.line.color, marker: t.marker && t.marker.color})),
  xtype: gd._fullLayout.xaxis.type, ytype: gd._fullLayout.yaxis.type,
  labels: Array.from(gd.querySelectorAll('.textpoint')).map(e => e.textContent).filter(t => t),
  legend: Array.from(gd.querySelectorAll('.legendtext')).map(e => e.textContent),
  notes: Array.from(gd.querySelectorAll('.annotation-text')).map(e => e.textContent),
  ticks: Array.from(gd.querySelectorAll('.ytick text')).map(e => e.textContent),
};
"""
MISSPELT = """\
name: misspelt
hardware: h100-sxm
model: llama-3.1-8b
workload:
  arrivals: {kind: poisson, rate_per_sec: 5}
  prompt_tokens: {kind: uniform, low: 100, high: 2000}
  output_tokens: {kind: uniform, low: 10, high: 200}
stop: {requests: 50}
"""


@pytest.fixture(scope="module")
def sweeps(dashboard_app):
    """The two real sweeps of tests/data/sweeps under the dashboard's data root."""
    root = dashboard_app.server.config["CTXSIM_SETTINGS"].data_root / "sweeps"
    for name in ("hardware-tp", "hbm-bandwidth"):
        if not (root / name).exists():
            shutil.copytree(DATA / name, root / name)
    return root


def figure(dash_duo, figure_id: str) -> dict | None:
    return dash_duo.driver.execute_script(FIGURE, figure_id)


def wait_figure(dash_duo, figure_id: str, check, msg: str) -> dict:
    """Wait until the figure's state satisfies `check`, and return it."""
    dash_duo._wait_for(
        lambda d: (f := figure(dash_duo, figure_id)) is not None and check(f), timeout=30, msg=msg
    )
    return figure(dash_duo, figure_id)


def no_error_banner(dash_duo) -> bool:
    return not any(e.is_displayed() for e in dash_duo.driver.find_elements(By.ID, "error-banner"))


def screenshot(dash_duo, folder: Path, name: str) -> None:
    dash_duo.wait_for_no_elements("._dash-loading", timeout=30)
    height = dash_duo.driver.execute_script("return document.body.scrollHeight")
    dash_duo.driver.set_window_size(1400, max(1000, height + 40))
    dash_duo.driver.save_screenshot(str(folder / f"{name}.png"))
    dash_duo.driver.set_window_size(1400, 1000)


def test_colour_by_hardware_draws_the_points_with_no_server_error(
    dash_duo, dashboard_app, sweeps, screenshot_dir
):
    dash_duo.start_server(dashboard_app)
    dash_duo.driver.get(dash_duo.server_url + ISSUE_LINK)
    fig = wait_figure(
        dash_duo, PARETO, lambda f: any(t["name"] == "h100-sxm" for t in f["traces"]), "points by hardware"
    )
    points = [t for t in fig["traces"] if t["name"] != "Pareto front"]
    assert sum(t["n"] for t in points) >= 2 and len({t["marker"] for t in points}) == len(points)
    assert {"h100-sxm", "h200", "Pareto front"} <= set(fig["legend"])
    dash_duo.wait_for_contains_text(
        "#sweeps-undrawn", "overloaded, so its latency is not reported", timeout=10
    )
    assert no_error_banner(dash_duo) and dash_duo.get_logs() == []

    # the same sweep by goodput: all six points, three hardware, each in its colour, labelled
    dash_duo.driver.get(
        dash_duo.server_url + ISSUE_LINK.replace("y=tpot_p99_s", "y=goodput_rps") + "&maximize=1"
    )
    fig = wait_figure(
        dash_duo, PARETO, lambda f: {"h100-sxm", "h200", "mi300x"} <= set(f["legend"]), "three hardware"
    )
    points = [t for t in fig["traces"] if t["name"] != "Pareto front"]
    assert sum(t["n"] for t in points) == 6 and len({t["marker"] for t in points}) == 3
    assert any("tp " in label for label in fig["labels"])  # point labels drawn, so PNGs carry them
    headers = [e.text for e in dash_duo.find_elements(".ag-header-cell-text")]
    assert headers[:3] == ["hardware", "tensor parallel (tp)", "cost per 1M output tokens ($)"]
    assert not any("_" in h or "parallelism." in h for h in headers)
    heat = wait_figure(dash_duo, HEATMAP, lambda f: f["ticks"], "heatmap ticks")
    assert {"h100-sxm", "h200", "mi300x"} <= set(heat["ticks"])
    screenshot(dash_duo, screenshot_dir, "sweep-colour-by-hardware")

    # log y, and the link says so
    dash_duo.driver.find_element(By.XPATH, "//label[normalize-space()='log y']").click()
    wait_figure(dash_duo, PARETO, lambda f: f["ytype"] == "log", "log y axis")
    dash_duo.wait_for_contains_text("#sweeps-link", "logy=1", timeout=10)
    dash_duo.wait_for_contains_text("#sweeps-undrawn", "zero, which a log axis cannot show", timeout=10)
    assert no_error_banner(dash_duo) and dash_duo.get_logs() == []


def test_a_front_across_loads_is_flagged_in_human_units(dash_duo, dashboard_app, sweeps, screenshot_dir):
    dash_duo.start_server(dashboard_app)
    dash_duo.driver.get(
        dash_duo.server_url
        + "/sweeps?dir=sweeps/hbm-bandwidth&color=hardware.memory.hbm.bandwidth_bytes_per_s"
    )
    dash_duo.wait_for_contains_text("#sweeps-mixed-loads", "arrival rate 6 req/s, 12 req/s", timeout=30)
    fig = wait_figure(dash_duo, PARETO, lambda f: "2 TB/s" in f["legend"], "bandwidths in TB/s")
    assert {"2 TB/s", "3.35 TB/s", "4.8 TB/s"} <= set(fig["legend"])
    assert fig["labels"] and all("e+" not in label for label in fig["labels"])
    heat = wait_figure(dash_duo, HEATMAP, lambda f: "2 TB/s" in f["ticks"], "heatmap in TB/s")
    assert "4.8 TB/s" in heat["ticks"]
    headers = [e.text for e in dash_duo.find_elements(".ag-header-cell-text")]
    assert headers[:3] == ["HBM bandwidth (TB/s)", "replicas", "arrival rate (req/s)"]
    cells = [e.text for e in dash_duo.find_elements(".ag-cell[col-id=c0]")]
    assert "3.35" in cells and not any("e+" in c or len(c) > 6 for c in cells)
    assert no_error_banner(dash_duo) and dash_duo.get_logs() == []
    screenshot(dash_duo, screenshot_dir, "sweep-explorer")


def _run(dash_duo, n: int) -> None:
    # clicked by script: the check line above the button rewraps as edits land, so the button can
    # move between WebDriver's scroll and its click
    dash_duo.driver.execute_script("arguments[0].click()", dash_duo.find_element("#runs-run"))
    dash_duo.wait_for_contains_text("#runs-progress-text", f"#{n}:", timeout=10)  # started again for #n
    dash_duo.wait_for_contains_text("#runs-progress-text", f"#{n}: 300 requests in", timeout=120)


def test_runs_page_placeholders_then_two_runs_compared(dash_duo, dashboard_app, screenshot_dir, tmp_path):
    dash_duo.start_server(dashboard_app)
    dash_duo.driver.get(dash_duo.server_url + "/runs?example=chat-h100&stop.requests=300")
    dash_duo.wait_for_contains_text("#runs-compare-empty", "no runs yet", timeout=30)
    latency = wait_figure(dash_duo, LATENCY, lambda f: f["notes"], "placeholder")
    assert latency["notes"] == ["no data yet: run a scenario"] and latency["traces"] == []
    occupancy = wait_figure(dash_duo, OCCUPANCY, lambda f: f["notes"], "placeholder")
    assert occupancy["notes"] == ["no data yet: run a scenario"]
    assert dash_duo.get_logs() == []

    # a misspelt upload: the one field, and what it meant
    upload = tmp_path / "misspelt.yaml"
    upload.write_text(MISSPELT)
    dash_duo.find_element("#runs-upload input[type=file]").send_keys(str(upload))
    dash_duo.wait_for_contains_text(
        "#runs-source-error",
        "misspelt.yaml: workload.arrivals.rate_per_sec: not a field here; did you mean 'rate_per_s'?",
        timeout=30,
    )

    dash_duo.wait_for_contains_text("#runs-check", "✓", timeout=30)
    _run(dash_duo, 1)
    replicas = dash_duo.find_element("#runs-field-cluster-replicas")
    replicas.clear()
    replicas.send_keys("3\n")
    dash_duo.wait_for_contains_text("#runs-check", "cluster.replicas=3", timeout=30)
    _run(dash_duo, 2)
    dash_duo.wait_for_contains_text("#runs-compare-table thead", "change #2 vs #1", timeout=30)
    rows = {
        r.find_element(By.TAG_NAME, "th").text: [td.text for td in r.find_elements(By.TAG_NAME, "td")]
        for r in dash_duo.find_elements("#runs-compare-table tbody tr")
    }
    assert rows["TTFT p50"][0].split(" [")[0].endswith(("ms", " s"))
    assert rows["SLO attainment"][0].endswith("%") or "%" in rows["SLO attainment"][0]
    assert rows["SLO target"][0] == "TTFT ≤ 2.00 s, TPOT ≤ 50.0 ms at p99"
    assert rows["SLO verdict"][0] in ("PASS", "not measured") or rows["SLO verdict"][0].startswith("MISS")
    assert rows["TTFT vs SLO"][0].startswith(("PASS", "MISS", "not measured"))
    assert rows["devices"][:2] == ["2", "3"] and rows["devices"][2] == "+50%"
    assert rows["cost per hour"][0].startswith("$") and rows["cost per hour"][2].startswith("+")
    toned = dash_duo.find_elements("#runs-compare-table td.text-danger, #runs-compare-table td.text-success")
    assert toned  # the change column says better or worse in colour

    occupancy = wait_figure(dash_duo, OCCUPANCY, lambda f: len(f["traces"]) == 7, "three replicas")
    by_panel = {}
    for t in occupancy["traces"]:
        by_panel.setdefault(t["y"], {})[t["name"]] = t["color"]
    assert by_panel["y"] == by_panel["y2"] and len(set(by_panel["y"].values())) == 3
    assert by_panel["y3"]["in system"] not in by_panel["y"].values()
    assert no_error_banner(dash_duo) and dash_duo.get_logs() == []
    screenshot(dash_duo, screenshot_dir, "scenario-runs")
