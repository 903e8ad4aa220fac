"""The designer's serving stack and own price in headless Chromium: typing a $ / device-hour changes
every dollar figure by hand-computable amounts and the basis label says the price is the user's;
picking the roofline stack drops TTFT to the physical lower bound. No console errors."""

import pytest
from selenium.webdriver.common.keys import Keys

from dashboard.designer_view import answer_cells
from dashboard.whatif import answer, cost_assumptions, served
from hardware import load_hardware
from workloads import load_model

pytestmark = pytest.mark.browser

QUERY = "/?hardware=h100-sxm&model=llama-3.1-8b&prompt=8000&output=256"


def _expected(stack: str, price) -> dict:
    """The answer's cells for llama-3.1-8b on an H100 as the API gives them (8,000 in, 256 out)."""
    hw, profile = served(load_hardware("h100-sxm"), stack)
    return answer_cells(
        answer(load_model("llama-3.1-8b"), hw, 8000, 256, 1, None, cost_assumptions("cloud", price), profile)
    )


def test_own_price_and_roofline_stack_on_the_designer(dash_duo, dashboard_app):
    dash_duo.start_server(dashboard_app)
    dash_duo.driver.get(dash_duo.server_url + QUERY)
    dash_duo.wait_for_text_to_equal("#designer-fits-modified", "yes", timeout=30)
    typical = _expected("typical", None)
    dash_duo.wait_for_text_to_equal("#designer-cost_request-modified", typical["cost_request"][0], timeout=30)
    assert "cloud on-demand" in dash_duo.find_element("#designer-cost-basis").text

    box = dash_duo.find_element("#designer-price")
    box.send_keys("30", Keys.ENTER)
    mine = _expected("typical", 30)
    assert mine["cost_request"][1] > typical["cost_request"][1]  # $30 is above the H100's cloud price
    dash_duo.wait_for_text_to_equal("#designer-cost_request-modified", mine["cost_request"][0], timeout=30)
    dash_duo.wait_for_contains_text("#designer-cost-basis", "user-set: $30/device-hour", timeout=30)

    dash_duo.select_dcc_dropdown("#designer-stack", value="roofline")
    dash_duo.find_element("body").send_keys(Keys.ESCAPE)
    bound = _expected("roofline", 30)
    assert bound["ttft"][1] < mine["ttft"][1]
    dash_duo.wait_for_text_to_equal("#designer-ttft-modified", bound["ttft"][0], timeout=30)
    dash_duo.wait_for_contains_text("#designer-cost-basis", "stack roofline", timeout=30)
    link = dash_duo.find_element("#designer-link").get_attribute("value")
    assert "stack=roofline" in link and "price=30" in link and "basis=cloud" in link
    assert dash_duo.get_logs() == []
