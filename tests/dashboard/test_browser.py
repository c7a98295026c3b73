"""The real server, driven by headless Chromium: the page loads without console errors, the Pareto plot
draws its points, a new metric redraws it, a click opens the detail, and the designer adds a candidate.
Under CI (CI=true) a missing browser fails the test instead of skipping it."""

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from lowbit.dashboard import create_app

SCREENSHOT = os.environ.get("LOWBIT_SCREENSHOT")  # where to save the README's screenshot, when set


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
        if SCREENSHOT:
            driver.execute_script("window.scrollTo(0, 0)")
            Path(SCREENSHOT).parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(SCREENSHOT)
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()
