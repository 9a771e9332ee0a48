"""End to end in headless Chromium: the demo page (draw, upload, errors) and the offline API docs.

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them). Without them the tests skip
on a developer machine and fail in CI (CI=true). Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import running_server

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")

if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("CI"):
        pytest.fail(
            "CI needs chromium and chromium-driver for the browser tests (.ci/run installs them)", pytrace=False
        )
    pytest.skip(
        "chromium / chromium-driver not installed (apt-get install chromium chromium-driver)", allow_module_level=True
    )

from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running_server() as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    profile = tempfile.mkdtemp(prefix="chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1100,900"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for_result(driver: webdriver.Chrome) -> None:
    WebDriverWait(driver, 20).until(ec.visibility_of_element_located((By.ID, "result")))


def test_drawing_a_one_shows_the_api_answer(server: str, browser: webdriver.Chrome) -> None:
    browser.get(server + "/")
    browser.save_screenshot(str(SHOTS / "1-page.png"))
    canvas = browser.find_element(By.ID, "pad")
    ActionChains(browser).move_to_element_with_offset(canvas, 5, -95).click_and_hold().move_by_offset(
        -3, 60
    ).move_by_offset(-3, 60).move_by_offset(-2, 60).release().perform()  # a slightly slanted vertical stroke: a "1"
    wait_for_result(browser)
    browser.save_screenshot(str(SHOTS / "2-drawn-one.png"))
    digit = browser.find_element(By.ID, "digit").text
    confidence = browser.find_element(By.ID, "confidence").text
    bars = browser.find_elements(By.CSS_SELECTOR, "#bars li")
    assert digit == "1"
    assert len(bars) == 10 and bars[1].get_attribute("class") == "top"
    # the same image, straight to the API: the page shows exactly its answer
    data_url = browser.execute_script("return document.getElementById('pad').toDataURL('image/png')")
    png = base64.b64decode(data_url.split(",", 1)[1])
    answer = httpx.post(f"{server}/v1/predict", files={"file": ("drawing.png", png, "image/png")}).json()
    assert digit == str(answer["digit"])
    assert confidence == f"{answer['confidence'] * 100:.1f}% sure"
    seen = browser.find_element(By.ID, "seen").get_attribute("src") or ""
    assert seen.startswith("data:image/png;base64,")


def test_upload_through_the_picker(server: str, browser: webdriver.Chrome) -> None:
    browser.get(server + "/")
    browser.find_element(By.ID, "file").send_keys(str(ROOT / "tests" / "data" / "seven.png"))
    wait_for_result(browser)
    browser.save_screenshot(str(SHOTS / "3-uploaded-seven.png"))
    assert browser.find_element(By.ID, "digit").text == "7"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#bars li")) == 10


def test_api_errors_are_shown_verbatim(server: str, browser: webdriver.Chrome, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image at all")
    browser.get(server + "/")
    browser.find_element(By.ID, "file").send_keys(str(text))
    error = WebDriverWait(browser, 20).until(ec.visibility_of_element_located((By.ID, "error")))
    browser.save_screenshot(str(SHOTS / "4-error.png"))
    expected = httpx.post(f"{server}/v1/predict", files={"file": ("notes.txt", text.read_bytes(), "text/plain")}).json()
    assert error.text == expected["detail"]


def test_phone_viewport(server: str, browser: webdriver.Chrome) -> None:
    browser.set_window_size(390, 844)
    try:
        browser.get(server + "/")
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390, "no horizontal scrolling on a phone"
        browser.find_element(By.ID, "file").send_keys(str(ROOT / "tests" / "data" / "seven.png"))
        wait_for_result(browser)
        browser.save_screenshot(str(SHOTS / "5-phone.png"))
    finally:
        browser.set_window_size(1100, 900)


def test_swagger_ui_renders_offline(server: str, browser: webdriver.Chrome) -> None:
    browser.get(server + "/docs")
    WebDriverWait(browser, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 8)
    browser.save_screenshot(str(SHOTS / "6-docs.png"))
    summaries = " ".join(e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path"))
    assert "/v1/predict" in summaries and "/v2/models/{model_name}/infer" in summaries


def test_redoc_renders_offline(server: str, browser: webdriver.Chrome) -> None:
    browser.get(server + "/redoc")
    WebDriverWait(browser, 30).until(
        lambda d: "Recognise the digit in one image" in d.find_element(By.TAG_NAME, "body").text
    )
    browser.save_screenshot(str(SHOTS / "7-redoc.png"))
