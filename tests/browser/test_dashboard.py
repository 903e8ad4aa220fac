"""The dashboard in headless Chromium: every page loads clean, the designer's numbers are the API's,
and a scenario run from the page gives what `ctxsim run` gives on the same file."""

import json

import pytest
import yaml
from selenium.webdriver.common.keys import Keys
from typer.testing import CliRunner

from dashboard.runs import COMPARED, compare_table
from dashboard.whatif import sram_memory
from hardware import load_hardware
from sim.cost.estimate import estimate, smallest_fit
from sim.format import seconds_significant
from sim.scenario import deep_merge
from workloads import load_model

pytestmark = pytest.mark.browser

PAGES = {  # what shows the page is up, and how many plotly figures it draws
    "/": ("#designer-fits-modified", 2),
    "/sizing": ("#sizing-answer", 1),
    "/runs": ("#runs-check", 2),
    "/sweeps": ("#sweeps-link", 2),
}
TINY_RUN = """\
name: tiny-upload
seed: 3
hardware: h100-sxm
model: llama-3.1-8b
cluster: {replicas: 2}
workload:
  arrivals: {kind: poisson, rate_per_s: 20}
  prompt_tokens: {kind: uniform, low: 200, high: 4000}
  output_tokens: {kind: uniform, low: 10, high: 300}
slo: {ttft_s: 1s, tpot_s: 30ms}
stop: {requests: 400}
"""


def _graphs_drawn(dash_duo, count: int) -> None:
    dash_duo._wait_for(
        lambda d: len(d.find_elements("css selector", ".main-svg")) >= count,
        timeout=30,
        msg=f"{count} plotly figures",
    )


def _screenshot(dash_duo, folder, name: str) -> None:
    height = dash_duo.driver.execute_script("return document.body.scrollHeight")
    dash_duo.driver.set_window_size(1400, max(1000, height + 100))
    dash_duo.driver.save_screenshot(str(folder / f"{name}.png"))


def test_every_page_loads_without_console_errors(dash_duo, dashboard_app, screenshot_dir):
    dash_duo.start_server(dashboard_app)
    for path, (ready, graphs) in PAGES.items():
        dash_duo.driver.get(dash_duo.server_url + path)
        dash_duo.wait_for_element(ready, timeout=30)
        _graphs_drawn(dash_duo, graphs)
        if path == "/sweeps":
            dash_duo.wait_for_contains_text("#sweeps-link", "dir=sweeps", timeout=30)
        dash_duo.wait_for_no_elements("._dash-loading", timeout=30)
        _screenshot(dash_duo, screenshot_dir, "page-" + (path.strip("/") or "designer"))
        assert dash_duo.get_logs() == [], path
    dash_duo.driver.get(dash_duo.server_url + "/sizing?qps=8&requests=300&tp=1&tp=2&max_devices=16")
    dash_duo.find_element("#sizing-run").click()
    dash_duo.wait_for_contains_text("#sizing-cost", "per hour", timeout=120)
    _graphs_drawn(dash_duo, 1)
    _screenshot(dash_duo, screenshot_dir, "sizing-planned")
    assert dash_duo.get_logs() == []


def _cell(dash_duo, key: str) -> str:
    return dash_duo.find_element(f"#designer-{key}-modified").text


def _move(dash_duo, slider_id: str, presses: int) -> float:
    thumb = dash_duo.find_element(f"#{slider_id} [role=slider]")
    thumb.click()
    for _ in range(presses):
        thumb.send_keys(Keys.ARROW_RIGHT)
    dash_duo._wait_for(
        lambda d: thumb.get_attribute("aria-valuenow") is not None, timeout=5, msg="slider value"
    )
    return float(thumb.get_attribute("aria-valuenow"))


def test_designer_slider_gives_the_api_numbers(dash_duo, dashboard_app, screenshot_dir):
    """With stack none (the hardware file as written), as the estimate below computes it."""
    dash_duo.start_server(dashboard_app)
    dash_duo.driver.get(
        dash_duo.server_url + "/?hardware=h100-sxm&model=llama-3.1-8b&prompt=65536&output=256&stack=none"
    )
    dash_duo.wait_for_text_to_equal("#designer-fits-modified", "yes", timeout=30)
    before = _cell(dash_duo, "ttft"), _cell(dash_duo, "tpot")
    bandwidth_tb_s = _move(dash_duo, "designer-bw_tbs", 40)
    tflops = _move(dash_duo, "designer-tflops", 200)
    base = load_hardware("h100-sxm")
    hw = type(base).model_validate(
        deep_merge(
            base.model_dump(mode="json"),
            {
                "name": "what-if",
                "memory": {"hbm": {"bandwidth_bytes_per_s": bandwidth_tb_s * 1e12}},
                "peak_flops": {
                    k: v * tflops * 1e12 / base.peak_flops.bf16
                    for k, v in base.peak_flops.model_dump(exclude={"source"}).items()
                    if v is not None
                },
            },
        )
    )
    model = load_model("llama-3.1-8b")
    memory = sram_memory(hw)  # the designer places weights in on-chip SRAM first, as its knob says
    par = smallest_fit(model, hw, 65536 + 256, 1, memory, 65536)
    api = estimate(model, hw, par, 65536, 256, 1, memory)
    dash_duo.wait_for_text_to_equal("#designer-tpot-modified", seconds_significant(api.tpot_s), timeout=30)
    dash_duo.wait_for_text_to_equal("#designer-ttft-modified", seconds_significant(api.ttft_s), timeout=30)
    assert (_cell(dash_duo, "ttft"), _cell(dash_duo, "tpot")) != before
    assert dash_duo.find_element("#designer-tpot-preset").text == before[1]
    _graphs_drawn(dash_duo, 2)
    _screenshot(dash_duo, screenshot_dir, "designer-moved")
    assert dash_duo.get_logs() == []


def test_scenario_run_from_the_page_matches_ctxsim_run(dash_duo, dashboard_app, screenshot_dir, tmp_path):
    from sim.cli import app as cli

    scenario = tmp_path / "tiny-upload.yaml"
    scenario.write_text(TINY_RUN)
    dash_duo.start_server(dashboard_app)
    dash_duo.driver.get(dash_duo.server_url + "/runs")
    dash_duo.wait_for_contains_text("#runs-check", "✓", timeout=30)
    dash_duo.find_element("#runs-upload input[type=file]").send_keys(str(scenario))
    dash_duo.wait_for_contains_text("#runs-check", "tiny-upload", timeout=30)
    dash_duo.find_element("#runs-run").click()
    dash_duo.wait_for_element("#runs-compare-table", timeout=120)
    dash_duo.wait_for_contains_text("#runs-progress-text", "400 requests in", timeout=30)
    rows = {
        r.find_element("css selector", "th").text: r.find_elements("css selector", "td")[0].text
        for r in dash_duo.find_elements("#runs-compare-table tbody tr")
    }
    out = CliRunner().invoke(cli, ["run", str(scenario), "--json"])
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout)
    cells = compare_table([{"label": "cli", "summary": summary, "scenario": yaml.safe_load(TINY_RUN)}])["cli"]
    assert rows == dict(cells)  # the page's table is the CLI's summary, read in ms, % and $
    assert {label for _, label in COMPARED} < set(rows) and "measured requests" in rows
    _graphs_drawn(dash_duo, 3)
    _screenshot(dash_duo, screenshot_dir, "runs-after-upload")
    assert dash_duo.get_logs() == []
