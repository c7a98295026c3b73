"""The real server, driven by headless Chromium: the page loads without console errors, the Pareto plot
draws its points, a new metric redraws it, a click opens the detail, and the designer adds a candidate;
then the colour and facet switches and the compare view, and a reload of the page's URL that shows the
same state. Under CI (CI=true) a missing browser fails the test instead of skipping it."""

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from lowbit.dashboard import create_app

# The README's gallery: the test saves its screenshots in docs/ (LOWBIT_SCREENSHOTS names another folder).
GALLERY = os.environ.get("LOWBIT_SCREENSHOTS") or str(Path(__file__).resolve().parents[2] / "docs")


def _browser():
    chrome = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    missing = not (chrome and driver)
    try:
        from selenium import webdriver
    except ImportError:
        missing = True
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no Chromium with chromedriver (or no selenium) was found: .ci/run installs them")
        pytest.skip("no Chromium with chromedriver on this machine")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chrome
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1300,1900",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(results):
    from werkzeug.serving import make_server

    port = _free_port()
    srv = make_server("127.0.0.1", port, create_app(results).server, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/"
    srv.shutdown()


def _wait(predicate, timeout=30.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            value = predicate()
            if value:
                return value
        except Exception:  # the page is still rendering
            pass
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the page")


def test_dashboard_in_a_real_browser(server):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = _browser()
    try:
        driver.get(server)
        points = _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#pareto-graph .scatterlayer .trace .points path"))
        assert len(points) >= 7  # the points trace, then the front's markers

        def y_title():
            return driver.find_element(By.CSS_SELECTOR, "#pareto-graph .g-ytitle").text

        assert _wait(lambda: y_title() == "QSNR (dB)")
        driver.find_element(By.ID, "metric-select").click()
        option = _wait(lambda: [o for o in driver.find_elements(By.CSS_SELECTOR, "[role=option]") if o.text == "MSE"])
        option[0].click()
        assert _wait(lambda: y_title() == "MSE")  # the plot redrew for the new metric

        first = _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#pareto-graph .scatterlayer .trace .points path"))
        ActionChains(driver).move_to_element(first[0]).pause(0.5).click().perform()  # a real mouse click
        assert _wait(lambda: " on normal" in driver.find_element(By.ID, "detail-title").text), driver.find_element(
            By.ID, "detail-title"
        ).text
        assert _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#value-grid-graph .scatterlayer .points path"))

        element = driver.find_element(By.ID, "design-element")
        element.send_keys(Keys.CONTROL, "a")
        element.send_keys(Keys.BACKSPACE)
        element.send_keys("e3m2")
        driver.find_element(By.ID, "design-add").click()

        def designed():
            return "Candidate e3m2" in driver.find_element(By.ID, "design-message").text

        try:
            _wait(designed)
        except AssertionError:
            raise AssertionError(driver.find_element(By.ID, "design-message").text) from None
        assert _wait(lambda: any("candidate: e3m2" in t.text for t in
                                 driver.find_elements(By.CSS_SELECTOR, "#pareto-graph .legendtext")))  # fmt: skip
        driver.execute_script("window.scrollTo(0, 0)")
        Path(GALLERY).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(GALLERY) / "dashboard_designer.png"))
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()


def _pick(driver, dropdown_id: str, text: str) -> None:
    """Choose the option `text` of a dropdown as a user does: open it, type to narrow it, click."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, dropdown_id).click()
    for box in driver.find_elements(By.CSS_SELECTOR, f"#{dropdown_id} input, input[type=search]"):
        if box.is_displayed():
            box.send_keys(text)
            break
    option = _wait(lambda: [o for o in driver.find_elements(By.CSS_SELECTOR, "[role=option]") if o.text == text])
    option[0].click()
    driver.find_element(By.TAG_NAME, "h2").click()  # close it


def _state_shown(driver) -> dict:
    """What the page shows of its state: legend entries, panel titles, the detail title, whether the
    compare graph is drawn."""
    from selenium.webdriver.common.by import By

    def texts(css):
        return sorted({e.text for e in driver.find_elements(By.CSS_SELECTOR, css)})

    compare = driver.find_elements(By.CSS_SELECTOR, "#compare-graph .main-svg")
    return {"legend": texts("#pareto-graph .legendtext"), "panels": texts("#pareto-graph .annotation-text"),
            "detail": driver.find_element(By.ID, "detail-title").text, "compare": bool(compare)}  # fmt: skip


def test_switches_compare_and_a_link_that_restores_them(server):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    shots = Path(GALLERY)
    shots.mkdir(parents=True, exist_ok=True)
    driver = _browser()
    try:
        driver.get(server)
        assert _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#pareto-graph .scatterlayer .trace .points path"))
        assert _wait(lambda: driver.find_element(By.ID, "detail-title").text == "Click a point to see its detail.")
        assert not driver.find_element(By.ID, "detail-body").is_displayed()  # a prompt, no empty axes
        legend = _wait(lambda: _state_shown(driver)["legend"])
        assert "MX (E8M0 scale)" in legend and "Pareto front" in legend and "int element" in legend
        driver.save_screenshot(str(shots / "dashboard_explorer.png"))

        first = driver.find_elements(By.CSS_SELECTOR, "#pareto-graph .scatterlayer .trace .points path")
        ActionChains(driver).move_to_element(first[0]).pause(0.3).click().perform()
        assert _wait(lambda: " on normal" in driver.find_element(By.ID, "detail-title").text)
        assert _wait(lambda: driver.find_element(By.ID, "detail-body").is_displayed())
        _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#cost-breakdown-graph .barlayer .point"))
        driver.execute_script("arguments[0].scrollIntoView()", driver.find_element(By.ID, "detail"))
        driver.save_screenshot(str(shots / "dashboard_detail.png"))

        _pick(driver, "color-by", "element type")
        assert _wait(lambda: "float" in _state_shown(driver)["legend"])
        _pick(driver, "facet-by", "workload")
        assert _wait(lambda: _state_shown(driver)["panels"] == ["laplace", "normal"])
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(str(shots / "dashboard_panels.png"))
        _pick(driver, "compare-select", "mxfp4")
        _pick(driver, "compare-select", "nvfp4")
        assert _wait(lambda: _state_shown(driver)["compare"])
        _wait(lambda: "compare=nvfp4" in driver.current_url)
        driver.execute_script("arguments[0].scrollIntoView()", driver.find_element(By.ID, "compare-graph"))
        driver.save_screenshot(str(shots / "dashboard_compare.png"))

        before, url = _state_shown(driver), driver.current_url
        assert "color=element+type" in url and "facet=workload" in url and "point=" in url
        driver.get(url)  # a reload of the link
        assert _wait(lambda: _state_shown(driver) == before), (_state_shown(driver), before)
        assert driver.current_url == url
        driver.get(server + "?color=purple&metric=nope")  # garbage: a message and the defaults
        message = _wait(lambda: driver.find_element(By.ID, "url-message").text)
        assert "color: 'purple' is not one of" in message and "metric 'nope' is not in this table" in message
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()
