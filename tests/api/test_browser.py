"""End to end in headless Chromium: the demo page (draw, upload, drop, clear, errors, keyboard, phone) and the
offline API docs, against the real server.

Needs Debian's `chromium` and `chromium-driver` (.ci/run installs them). Without them the tests skip on a
developer machine and fail in CI (CI=true). Screenshots of each step go to artifacts/screenshots/.
"""

from __future__ import annotations

import base64
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver import ActionChains
from selenium.webdriver.common.actions import interaction
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.actions.pointer_input import PointerInput
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import ROOT, SEVEN, SEVEN_PNG, running_server

SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")

Driver = webdriver.Chrome
# strokes as offsets from the canvas centre, in CSS pixels (the canvas is 280x280 on every viewport here)
ONE = [(5, -95), (2, -35), (-1, 25), (-3, 95)]  # a slightly slanted vertical stroke
SEVEN_STROKE = [(-75, -90), (0, -92), (75, -90), (35, -5), (0, 95)]  # the bar, then the long diagonal
REDOCLY_BADGE = "https://cdn.redoc.ly/redoc/logo-mini.svg"
NOT_A_DIGIT = "This doesn't look like a digit; best guess: "
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}


@pytest.fixture(scope="module")
def chromium() -> tuple[str, str]:
    """The paths of chromium and chromedriver; without them, skip on a developer machine and fail in CI."""
    if CHROMIUM and CHROMEDRIVER:
        return CHROMIUM, CHROMEDRIVER
    missing = [name for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not path]
    if os.environ.get("CI"):
        pytest.fail(f"CI runs the browser tests, but {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                    "not installed (.ci/run installs chromium and chromium-driver)", pytrace=False)  # fmt: skip
    pytest.skip(f"{' and '.join(missing)} not installed: apt-get install chromium chromium-driver")


@pytest.fixture(scope="module")
def server(chromium: tuple[str, str]) -> Iterator[str]:
    with running_server() as url:
        yield url


@contextmanager
def scored_server(threshold: str) -> Iterator[str]:
    """The server, with MNIST_DIGIT_THRESHOLD=`threshold` (the committed model has a digit scorer)."""
    with running_server(env={"MNIST_DIGIT_THRESHOLD": threshold}) as url:
        served = httpx.get(f"{url}/v1/model", timeout=30).json()["digit_threshold"]
        assert served == float(threshold), "MNIST_DIGIT_THRESHOLD is the threshold served"
        yield url


@pytest.fixture(scope="module")
def strict_server(chromium: tuple[str, str]) -> Iterator[str]:
    """No image is digit-like enough: every answer has is_digit false."""
    with scored_server("1.0") as url:
        yield url


@pytest.fixture(scope="module")
def lenient_server(chromium: tuple[str, str]) -> Iterator[str]:
    """Every image is digit-like enough: every answer has is_digit true."""
    with scored_server("0.0") as url:
        yield url


@pytest.fixture(scope="module")
def browser(chromium: tuple[str, str]) -> Iterator[Driver]:
    options = webdriver.ChromeOptions()
    options.binary_location = chromium[0]
    profile = tempfile.mkdtemp(prefix="chromium-")
    # as root in a container, with no way to Google: no sandbox, no background requests, a fresh profile
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1100,900"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=chromium[1]))
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(server: str, browser: Driver) -> Driver:
    """The demo page, freshly loaded and watched."""
    return open_page(browser, server)


def open_page(browser: Driver, server: str) -> Driver:
    browser.get(server + "/")
    watch(browser)
    return browser


def watch(driver: Driver) -> None:
    """Count the answers the page renders (its result panel stops being busy once per answer) and record the
    pointerType of every pointerdown on the canvas."""
    driver.execute_script(
        "const results = document.getElementById('results');"
        "window.answers = 0; window.pointerTypes = [];"
        "new MutationObserver(() => { if (!results.hasAttribute('aria-busy')) window.answers += 1; })"
        "  .observe(results, {attributes: true, attributeFilter: ['aria-busy']});"
        "document.getElementById('pad').addEventListener('pointerdown', e => window.pointerTypes.push(e.pointerType));"
    )


def wait_for_answers(driver: Driver, count: int) -> None:
    """Until the page has rendered `count` answers of the API (results or errors) since it was loaded."""
    WebDriverWait(driver, 20, poll_frequency=0.05).until(lambda d: d.execute_script("return window.answers") >= count)


def shot(driver: Driver, name: str) -> None:
    driver.save_screenshot(str(SHOTS / name))


def draw(driver: Driver, points: Sequence[tuple[int, int]], kind: str = interaction.POINTER_MOUSE) -> None:
    """One stroke through `points` (offsets from the canvas centre) with a mouse, pen or touch pointer."""
    canvas = driver.find_element(By.ID, "pad")
    actions = ActionBuilder(driver, mouse=PointerInput(kind, kind), duration=40)
    (x, y), *rest = points
    actions.pointer_action.move_to(canvas, x, y).pointer_down()
    for x, y in rest:
        actions.pointer_action.move_to(canvas, x, y)
    actions.pointer_action.pointer_up()
    actions.perform()


def canvas_png(driver: Driver) -> bytes:
    data_url = driver.execute_script("return document.getElementById('pad').toDataURL('image/png')")
    return base64.b64decode(data_url.split(",", 1)[1])


def canvas_is_blank(driver: Driver) -> bool:
    return bool(
        driver.execute_script(
            "const c = document.getElementById('pad');"
            "return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.every(v => v === 255);"
        )
    )


def api_answer(server: str, name: str, data: bytes, content_type: str = "image/png") -> dict[str, Any]:
    response = httpx.post(f"{server}/v1/predict?explain=true", files={"file": (name, data, content_type)}, timeout=30)
    return dict(response.json())


def assert_page_shows(driver: Driver, answer: dict[str, Any]) -> None:
    """The digit, the confidence, the ten bars and the 28x28 image on the page are exactly the API's answer."""
    shown = driver.execute_script(
        "const text = id => document.getElementById(id).innerText;"
        "return {digit: text('digit'), confidence: text('confidence'), seen: document.getElementById('seen').src,"
        "  bars: [...document.querySelectorAll('#bars li')].map(li => ({"
        "    label: li.querySelector('.p').innerText, top: li.classList.contains('top'),"
        "    fill: li.querySelector('.fill').getBoundingClientRect().width,"
        "    track: li.querySelector('.track').getBoundingClientRect().width}))};"
    )
    assert shown["digit"] == str(answer["digit"])
    assert shown["confidence"] == f"{answer['confidence'] * 100:.1f}% sure"
    assert len(shown["bars"]) == 10
    assert [bar["label"] for bar in shown["bars"]] == [f"{p * 100:.1f}%" for p in answer["probabilities"]]
    for bar, p in zip(shown["bars"], answer["probabilities"], strict=True):
        assert bar["fill"] == pytest.approx(p * bar["track"], abs=1.0), "bar lengths are the probabilities"
    assert [i for i, bar in enumerate(shown["bars"]) if bar["top"]] == [answer["digit"]]
    assert shown["seen"] == answer["input_image"], "the 28x28 image shown is the one the model saw"
    # digit_score and is_digit: both absent when the model has no digit scorer, and then nothing shows
    verdict, score = page_verdict(driver), driver.find_element(By.ID, "digit-score")
    assert verdict == (NOT_A_DIGIT + str(answer["digit"]) if answer.get("is_digit") is False else "")
    if "digit_score" in answer:
        assert score.text == f"digit-likeness {answer['digit_score'] * 100:.1f}%"
    else:
        assert not score.is_displayed() and score.get_attribute("textContent") == ""


def page_verdict(driver: Driver) -> str:
    """The page's "doesn't look like a digit" message, "" when there is none (then it is not displayed)."""
    verdict = driver.find_element(By.ID, "verdict")
    text = verdict.get_attribute("textContent") or ""
    assert verdict.is_displayed() == bool(text), "the message shows exactly when it says something"
    if text:
        assert verdict.text == text
    return text


@pytest.mark.parametrize("kind", [interaction.POINTER_MOUSE, interaction.POINTER_PEN, interaction.POINTER_TOUCH])
def test_drawing_a_one_shows_the_api_answer(server: str, page: Driver, kind: str) -> None:
    if kind == interaction.POINTER_MOUSE:
        shot(page, "01-page.png")
    draw(page, ONE, kind)
    wait_for_answers(page, 1)
    shot(page, f"02-drawn-one-{kind}.png")
    assert page.execute_script("return window.pointerTypes") == [kind]
    # the same PNG, straight to the API: the page shows exactly its answer
    answer = api_answer(server, "drawing.png", canvas_png(page))
    assert answer["digit"] == 1
    assert_page_shows(page, answer)
    assert page.find_element(By.ID, "status").text.startswith("Your drawing")


def test_each_stroke_asks_again_and_clear_resets(server: str, page: Driver) -> None:
    draw(page, SEVEN_STROKE[:3])  # the bar of a 7 alone
    wait_for_answers(page, 1)
    draw(page, SEVEN_STROKE[2:])  # its diagonal: the page asks again, with both strokes
    wait_for_answers(page, 2)
    shot(page, "03-drawn-seven-two-strokes.png")
    answer = api_answer(server, "drawing.png", canvas_png(page))
    assert answer["digit"] == 7
    assert_page_shows(page, answer)
    page.find_element(By.ID, "clear").click()
    assert not page.find_element(By.ID, "result").is_displayed()
    assert canvas_is_blank(page)
    assert page.switch_to.active_element.get_attribute("id") == "pad", "Clear hands the focus back to the canvas"


def test_late_answers_never_overwrite_newer_ones(server: str, page: Driver) -> None:
    # the page's requests are held back by the given delays (ms), in order
    page.execute_script(
        "window.delays = []; window.asked = window.settled = 0; const fetchNow = window.fetch;"
        "window.fetch = async (...args) => {"
        "  window.asked += 1;"
        "  await new Promise(done => setTimeout(done, window.delays.shift() || 0));"
        "  try { return await fetchNow(...args); } finally { window.settled += 1; }"
        "};"
    )

    def settled() -> None:
        time.sleep(0.3)
        WebDriverWait(page, 20, poll_frequency=0.05).until(
            lambda d: d.execute_script("return window.asked === window.settled")
        )
        time.sleep(0.3)  # the page has had its chance to render the last answer

    page.execute_script("window.delays = [2000, 0]")
    draw(page, SEVEN_STROKE[:3])  # its answer arrives last...
    draw(page, SEVEN_STROKE[2:])
    settled()
    assert page.execute_script("return window.asked") == 2
    answer = api_answer(server, "drawing.png", canvas_png(page))
    assert answer["digit"] == 7
    assert_page_shows(page, answer)  # ...and is dropped: the page shows the answer for both strokes

    page.execute_script("window.delays = [2000]")
    draw(page, ONE)
    page.find_element(By.ID, "clear").click()  # before the answer arrives
    settled()  # (a Clear before the PNG is ready sends nothing at all)
    assert not page.find_element(By.ID, "result").is_displayed()
    assert page.find_element(By.ID, "status").text == "Draw a digit: the model's answer appears here."


def test_upload_through_the_picker(server: str, page: Driver) -> None:
    draw(page, ONE)  # a drawing first: the upload replaces it on the canvas
    wait_for_answers(page, 1)
    page.find_element(By.ID, "file").send_keys(str(SEVEN_PNG))
    wait_for_answers(page, 2)
    assert page.find_element(By.ID, "digit").text == "7"
    shot(page, "04-uploaded-seven.png")
    assert_page_shows(page, api_answer(server, "seven.png", SEVEN))
    assert page.find_element(By.ID, "status").text.startswith("seven.png")
    assert not canvas_is_blank(page), "the upload is shown on the canvas"
    draw(page, ONE)  # the next stroke starts on a clean canvas, not on top of the upload
    wait_for_answers(page, 3)
    answer = api_answer(server, "drawing.png", canvas_png(page))
    assert answer["digit"] == 1
    assert_page_shows(page, answer)


def test_drop_an_image_file(server: str, page: Driver) -> None:
    # WebDriver can't drag files from the desktop; the page sees the same events from a script
    page.execute_script(
        "const [b64, name] = arguments;"
        "const file = new File([Uint8Array.from(atob(b64), c => c.charCodeAt(0))], name, {type: 'image/png'});"
        "window.dropped = new DataTransfer(); window.dropped.items.add(file);"
        "document.getElementById('pad').dispatchEvent("
        "  new DragEvent('dragover', {bubbles: true, cancelable: true, dataTransfer: window.dropped}));",
        base64.b64encode(SEVEN).decode(),
        "seven.png",
    )
    assert "over" in (page.find_element(By.ID, "dropzone").get_attribute("class") or "")
    shot(page, "05-dragging-over.png")
    page.execute_script(
        "document.querySelector('h1').dispatchEvent("  # anywhere on the page, not only on the canvas
        "  new DragEvent('drop', {bubbles: true, cancelable: true, dataTransfer: window.dropped}));"
    )
    wait_for_answers(page, 1)
    shot(page, "06-dropped-seven.png")
    assert "over" not in (page.find_element(By.ID, "dropzone").get_attribute("class") or "")
    assert page.current_url.endswith("/"), "the browser did not navigate to the dropped file"
    assert_page_shows(page, api_answer(server, "seven.png", SEVEN))


def test_api_errors_are_shown_verbatim(server: str, page: Driver, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image at all")
    page.find_element(By.ID, "file").send_keys(str(text))
    wait_for_answers(page, 1)
    shot(page, "07-error.png")
    response = httpx.post(f"{server}/v1/predict", files={"file": ("notes.txt", text.read_bytes(), "text/plain")})
    body = response.json()
    assert page.find_element(By.ID, "error-detail").text == body["detail"]
    assert page.find_element(By.ID, "error-title").text == f"The API answered {response.status_code} ({body['code']}):"
    assert page.find_element(By.ID, "error").get_attribute("role") == "alert"
    assert page.find_element(By.ID, "status").text == "notes.txt"
    assert not page.find_element(By.ID, "result").is_displayed()


def test_keyboard_focus_and_shortcuts(page: Driver) -> None:
    focused = []
    for _ in range(6):
        page.switch_to.active_element.send_keys(Keys.TAB)
        element = page.switch_to.active_element
        focused.append(element.get_attribute("id") or (element.get_attribute("href") or "").rsplit("/", 1)[-1])
        if element.get_attribute("id") in ("pad", "clear"):
            assert element.value_of_css_property("outline-style") == "solid", "a visible focus ring"
    assert focused == ["docs", "redoc", "model", "pad", "clear", "file"]
    shot(page, "08-keyboard-focus.png")
    assert page.find_element(By.CSS_SELECTOR, ".file").value_of_css_property("outline-style") == "solid"
    # every control has an accessible name
    for element_id in ("pad", "clear", "file"):
        assert page.find_element(By.ID, element_id).accessible_name
    draw(page, ONE)
    wait_for_answers(page, 1)
    page.find_element(By.ID, "pad").send_keys(Keys.ESCAPE)
    assert canvas_is_blank(page) and not page.find_element(By.ID, "result").is_displayed()


def test_phone_viewport_with_touch(server: str, browser: Driver) -> None:
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    browser.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
    try:
        browser.get(server + "/")
        watch(browser)
        assert browser.execute_script("return document.documentElement.scrollWidth") <= PHONE["width"], (
            "no horizontal scrolling on a phone"
        )
        draw(browser, SEVEN_STROKE, interaction.POINTER_TOUCH)
        wait_for_answers(browser, 1)
        assert browser.execute_script("return window.pointerTypes") == ["touch"]
        shot(browser, "09-phone-drawn-seven.png")
        answer = api_answer(server, "drawing.png", canvas_png(browser))
        assert answer["digit"] == 7
        assert_page_shows(browser, answer)
        browser.find_element(By.ID, "file").send_keys(str(SEVEN_PNG))
        wait_for_answers(browser, 2)
        assert browser.find_element(By.ID, "status").text.startswith("seven.png")
        browser.execute_script("document.getElementById('results').scrollIntoView()")
        shot(browser, "10-phone-uploaded-seven.png")
        assert browser.execute_script("return document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        browser.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": False})
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_not_a_digit_says_so_and_keeps_the_bars(strict_server: str, browser: Driver) -> None:
    page = open_page(browser, strict_server)
    assert page_verdict(page) == ""
    draw(page, ONE)
    wait_for_answers(page, 1)
    shot(page, "13-not-a-digit.png")
    answer = api_answer(strict_server, "drawing.png", canvas_png(page))
    assert answer["is_digit"] is False, f"digit_score {answer['digit_score']} is under the threshold 1.0"
    shown = page.find_element(By.ID, "digit").text
    assert shown == str(answer["digit"])
    assert page_verdict(page) == NOT_A_DIGIT + shown, "the best guess is the digit the API answered"
    verdict = page.find_element(By.ID, "verdict")
    assert verdict.get_attribute("role") == "status" and verdict.get_attribute("aria-atomic") == "true"
    assert_page_shows(page, answer)  # the digit, its confidence and the ten bars are all still there
    assert page.find_element(By.ID, "digit-score").is_displayed()
    # the next answer updates the message: the best guess is now a 7
    page.find_element(By.ID, "file").send_keys(str(SEVEN_PNG))
    wait_for_answers(page, 2)
    answer = api_answer(strict_server, "seven.png", SEVEN)
    assert answer["is_digit"] is False and answer["digit"] == 7
    assert page_verdict(page) == NOT_A_DIGIT + "7"
    assert_page_shows(page, answer)


def test_not_a_digit_message_goes_on_clear_and_on_errors(strict_server: str, browser: Driver, tmp_path: Path) -> None:
    page = open_page(browser, strict_server)
    draw(page, SEVEN_STROKE)
    wait_for_answers(page, 1)
    assert page_verdict(page).startswith(NOT_A_DIGIT)
    page.find_element(By.ID, "clear").click()
    assert page_verdict(page) == ""
    assert not page.find_element(By.ID, "result").is_displayed()
    shot(page, "14-not-a-digit-cleared.png")
    draw(page, ONE)
    wait_for_answers(page, 2)
    assert page_verdict(page).startswith(NOT_A_DIGIT)
    text = tmp_path / "notes.txt"
    text.write_text("not an image at all")
    page.find_element(By.ID, "file").send_keys(str(text))
    wait_for_answers(page, 3)
    assert page.find_element(By.ID, "error").is_displayed()
    assert page_verdict(page) == "", "an error is no answer about the image: no message"


def test_a_digit_has_no_message(lenient_server: str, browser: Driver) -> None:
    page = open_page(browser, lenient_server)
    draw(page, ONE)
    wait_for_answers(page, 1)
    shot(page, "15-a-digit-with-digit-likeness.png")
    answer = api_answer(lenient_server, "drawing.png", canvas_png(page))
    assert answer["is_digit"] is True and answer["digit"] == 1
    assert page_verdict(page) == ""
    assert_page_shows(page, answer)
    assert page.find_element(By.ID, "digit-score").text.startswith("digit-likeness ")


# a # in four strokes, offsets from the canvas centre: a drawing that is no digit
HASH_STROKES = [[(-35, -95), (-50, 95)], [(40, -95), (25, 95)], [(-95, -35), (95, -35)], [(-100, 40), (90, 40)]]


def test_a_drawn_hash_is_not_a_digit_at_the_models_own_threshold(server: str, page: Driver) -> None:
    """With the committed model and its threshold: the 7 has no message, the # has one, with its best guess."""
    draw(page, SEVEN_STROKE)
    wait_for_answers(page, 1)
    assert api_answer(server, "seven.png", canvas_png(page))["is_digit"] is True
    assert page_verdict(page) == ""
    page.find_element(By.ID, "clear").click()
    for count, stroke in enumerate(HASH_STROKES, start=1):
        draw(page, stroke)
        wait_for_answers(page, 1 + count)
    answer = api_answer(server, "hash.png", canvas_png(page))
    shot(page, "16-a-drawn-hash.png")
    assert answer["is_digit"] is False, f"digit_score {answer['digit_score']}"
    assert page_verdict(page) == NOT_A_DIGIT + str(answer["digit"])
    assert_page_shows(page, answer)


def same_origin_only(driver: Driver, server: str) -> list[str]:
    """Every resource the page loaded that did not come from the app itself."""
    names = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    return [name for name in names if not name.startswith(server + "/")]


def test_the_page_loads_nothing_from_elsewhere(server: str, page: Driver) -> None:
    assert same_origin_only(page, server) == []
    assert "/" not in httpx.get(f"{server}/openapi.json").json()["paths"]


def test_swagger_ui_renders_offline(server: str, browser: Driver) -> None:
    browser.get(server + "/docs")
    WebDriverWait(browser, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 8)
    shot(browser, "11-docs.png")
    paths = {e.text.replace("\u200b", "") for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert {"/v1/predict", "/v1/predict/batch", "/v1/model", "/v2/models/{model_name}/infer"} <= paths
    assert same_origin_only(browser, server) == []
    scripts = [s.get_attribute("src") or "" for s in browser.find_elements(By.TAG_NAME, "script")]
    assert f"{server}/docs-assets/swagger-ui-bundle.js" in scripts


def test_redoc_renders_offline(server: str, browser: Driver) -> None:
    browser.get(server + "/redoc")
    WebDriverWait(browser, 30).until(
        lambda d: "Recognise the digit in one image" in d.find_element(By.TAG_NAME, "body").text
    )
    shot(browser, "12-redoc.png")
    # the one outside request is in the ReDoc bundle itself: its "API docs by Redocly" badge, which it drops
    # when the image fails to load (offline, nothing shows)
    assert same_origin_only(browser, server) in ([], [REDOCLY_BADGE])
    operations = browser.find_elements(By.CSS_SELECTOR, "[data-section-id^='operation/']")
    assert len(operations) >= 8


# number mode: the pad is 3:1 (840x280 pixels); Read sends it to /v1/read and the page shows the text, its
# confidence, each digit, and the boxes over the drawing


def shifted(points: Sequence[tuple[int, int]], dx: int) -> list[tuple[int, int]]:
    return [(x + dx, y) for x, y in points]


# three digits far apart, offsets from the centre of the number pad (about 815x272 CSS pixels at 1100x900)
ZERO = [(round(45 * math.sin(a / 16 * 2 * math.pi)), round(-90 * math.cos(a / 16 * 2 * math.pi))) for a in range(17)]
NUMBER_STROKES = [shifted(ONE, -280), shifted(SEVEN_STROKE, 0), shifted(ZERO, 280)]


def number_mode(driver: Driver) -> None:
    """Switch the page to number mode with the mouse, as a user would (the radio buttons look like a switch)."""
    driver.find_element(By.CSS_SELECTOR, "label:has(> input[name=mode][value=number])").click()
    assert driver.find_element(By.CSS_SELECTOR, "input[name=mode][value=number]").is_selected()


def read_answer(server: str, name: str, data: bytes, content_type: str = "image/png") -> httpx.Response:
    return httpx.post(f"{server}/v1/read", files={"file": (name, data, content_type)}, timeout=30)


def page_reading(driver: Driver) -> dict[str, Any]:
    """What the page shows of a reading: the text, the confidence, the digit chips, the marks, and each box
    drawn over the pad, in CSS pixels from the pad's top left corner."""
    return dict(
        driver.execute_script(
            "const pad = document.getElementById('pad').getBoundingClientRect();"
            "const text = id => document.getElementById(id).innerText;"
            "return {text: text('text'), confidence: text('reading-confidence'),"
            "  shown: !document.getElementById('reading').hidden,"
            "  chips: [...document.querySelectorAll('#digits li')].map(li => li.innerText.replace(/\\s+/g, ' ')),"
            "  marks: document.getElementById('marks').hidden ? '' : text('marks'),"
            "  pad: [pad.width, pad.height],"
            "  boxes: [...document.querySelectorAll('#boxes .box')].map(b => {"
            "    const r = b.getBoundingClientRect();"
            "    return {kind: b.classList.contains('mark') ? 'mark' : 'digit', tag: b.innerText, data: {...b.dataset},"
            "      box: [r.left - pad.left, r.top - pad.top, r.width, r.height]};"
            "  })};"
        )
    )


def assert_page_reads(driver: Driver, answer: dict[str, Any], frame: tuple[float, float, float] = (0, 0, 1)) -> None:
    """The page shows exactly /v1/read's `answer`: its text and confidence, a chip per digit, and the box of
    each digit and mark at its place on the pad (`frame`: where the image lies on the 840x280 pad, x, y, scale)."""
    shown = page_reading(driver)
    assert shown["shown"]
    assert shown["text"] == (answer["text"] or "no digits")
    assert shown["confidence"] == f"{answer['confidence'] * 100:.1f}% sure"
    assert shown["chips"] == [f"{d['digit']} {d['confidence'] * 100:.1f}%" for d in answer["digits"]]
    marks = answer.get("marks", [])
    assert shown["marks"] == (f"Marks, not in the text: {' '.join(m['char'] for m in marks)}" if marks else "")
    expected = [("digit", d["box"], f"{d['digit']} {d['confidence'] * 100:.0f}%") for d in answer["digits"]]
    expected += [("mark", m["box"], m["char"]) for m in marks]
    assert [(b["kind"], b["tag"]) for b in shown["boxes"]] == [(kind, tag) for kind, _, tag in expected]
    to_css = shown["pad"][0] / 840  # the pad's pixels to CSS pixels
    assert shown["pad"][1] == pytest.approx(280 * to_css, abs=1), "the pad keeps its 3:1 shape"
    x0, y0, scale = frame
    for box, (_, (x, y, w, h), _) in zip(shown["boxes"], expected, strict=True):
        place = [(x0 + x * scale) * to_css, (y0 + y * scale) * to_css, w * scale * to_css, h * scale * to_css]
        assert box["box"] == pytest.approx(place, abs=1.0), "boxes are the image's pixels, scaled to the pad"
    digit_boxes = [b for b in shown["boxes"] if b["kind"] == "digit"]
    assert [b["data"]["digit"] for b in digit_boxes] == [str(d["digit"]) for d in answer["digits"]]


def test_number_mode_reads_three_drawn_digits(server: str, page: Driver) -> None:
    assert page.find_element(By.ID, "pad").size == {"width": 280, "height": 280}
    number_mode(page)
    assert page.execute_script("const p = document.getElementById('pad'); return [p.width, p.height]") == [840, 280]
    assert page.find_element(By.ID, "draw-title").text == "Draw a number, or drop an image"
    assert page.find_element(By.ID, "result-title").text == "Reading"
    assert page.find_element(By.ID, "pad").accessible_name.startswith("Drawing area: draw a whole number")
    assert page.find_element(By.ID, "status").text == "Draw a number, then press Read: the digits read appear here."
    shot(page, "17-number-mode.png")
    for stroke in NUMBER_STROKES:
        draw(page, stroke)
    time.sleep(0.3)
    assert page.execute_script("return window.answers") == 0, "no request per stroke: a number is read on Read"
    assert page.find_element(By.ID, "status").text == "Press Read (or Enter) when the number is done."
    page.find_element(By.ID, "read").click()
    wait_for_answers(page, 1)
    shot(page, "18-number-read.png")
    response = read_answer(server, "drawing.png", canvas_png(page))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert_page_reads(page, answer)
    assert page.find_element(By.ID, "status").text.startswith("Your drawing")
    # the reader's accuracy is not this test's business, its layout is: three digits, left to right, each box
    # around its own stroke (the page's thirds), a "1" first
    assert len(answer["text"]) == 3 and answer["text"].isdigit(), answer
    assert len(answer["digits"]) == 3 and {d["line"] for d in answer["digits"]} == {0}
    assert answer["digits"][0]["digit"] == 1
    for third, digit in enumerate(answer["digits"]):
        x, _, w, _ = digit["box"]
        assert third * 280 <= x + w / 2 < (third + 1) * 280, f"digit {third} is boxed around its own stroke"
    assert 0 < answer["confidence"] <= 1
    assert not page.find_element(By.ID, "result").is_displayed(), "no single-digit answer in number mode"
    # a new stroke: the boxes no longer fit the drawing and go; the reading stays, dimmed, until the next Read
    draw(page, shifted(ONE, 380))
    assert page_reading(page)["boxes"] == []
    assert "stale" in (page.find_element(By.ID, "reading").get_attribute("class") or "")
    page.find_element(By.ID, "pad").send_keys(Keys.ENTER)  # Enter on the pad reads too
    wait_for_answers(page, 2)
    answer = read_answer(server, "drawing.png", canvas_png(page)).json()
    assert_page_reads(page, answer)
    assert len(answer["digits"]) == 4


def test_number_mode_shows_the_apis_error(server: str, page: Driver) -> None:
    number_mode(page)
    page.find_element(By.ID, "read").click()  # nothing drawn: no ink
    wait_for_answers(page, 1)
    shot(page, "19-number-blank.png")
    response = read_answer(server, "drawing.png", canvas_png(page))
    assert response.status_code == 422
    body = response.json()
    assert page.find_element(By.ID, "error-detail").text == body["detail"]
    assert page.find_element(By.ID, "error-title").text == f"The API answered 422 ({body['code']}):"
    assert not page.find_element(By.ID, "reading").is_displayed()
    assert page_reading(page)["boxes"] == []


def test_number_mode_upload_keyboard_and_back_to_digits(server: str, page: Driver) -> None:
    # the switch by keyboard: a radio group right after the file picker (the arrow keys change the mode)
    for _ in range(7):  # (not the element's send_keys: on the file input, that would be a file name)
        ActionChains(page).send_keys(Keys.TAB).perform()
    radio = page.switch_to.active_element
    assert (radio.get_attribute("name"), radio.get_attribute("value")) == ("mode", "digit")
    assert radio.accessible_name == "one digit"
    assert page.find_element(By.CSS_SELECTOR, "fieldset.mode legend").text == "Read"
    page.switch_to.active_element.send_keys(Keys.ARROW_RIGHT)
    assert page.find_element(By.CSS_SELECTOR, "input[name=mode][value=number]").is_selected()
    assert page.find_element(By.ID, "read").is_displayed()
    outline = page.find_element(By.CSS_SELECTOR, "label:has(> input[value=number])").value_of_css_property(
        "outline-style"
    )
    assert outline == "solid", "a visible focus ring on the switch"
    # a file goes to /v1/read at once; its boxes are placed over the image as fitted on the pad (28x28 -> x10)
    page.find_element(By.ID, "file").send_keys(str(SEVEN_PNG))
    wait_for_answers(page, 1)
    shot(page, "20-number-uploaded-seven.png")
    answer = read_answer(server, "seven.png", SEVEN).json()
    assert answer["text"] == "7"
    assert_page_reads(page, answer, frame=(280, 0, 10))
    # back to one digit: the square pad and /v1/predict on every stroke, as before
    page.find_element(By.CSS_SELECTOR, "label:has(> input[name=mode][value=digit])").click()
    assert page.execute_script("const p = document.getElementById('pad'); return [p.width, p.height]") == [280, 280]
    assert page.find_element(By.ID, "pad").size == {"width": 280, "height": 280}
    assert not page.find_element(By.ID, "read").is_displayed()
    assert not page.find_element(By.ID, "reading").is_displayed() and page_reading(page)["boxes"] == []
    assert page.find_element(By.ID, "status").text == "Draw a digit: the model's answer appears here."
    draw(page, ONE)
    wait_for_answers(page, 2)
    answer = api_answer(server, "drawing.png", canvas_png(page))
    assert answer["digit"] == 1
    assert_page_shows(page, answer)


def test_number_mode_on_a_phone(server: str, browser: Driver) -> None:
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    browser.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
    try:
        browser.get(server + "/")
        watch(browser)
        number_mode(browser)
        width = browser.find_element(By.ID, "pad").size["width"]
        for stroke in ([(x // 3, y // 3) for x, y in s] for s in NUMBER_STROKES):  # the pad is ~340 CSS px wide
            draw(browser, stroke, interaction.POINTER_TOUCH)
        browser.find_element(By.ID, "read").click()
        wait_for_answers(browser, 1)
        shot(browser, "21-phone-number.png")
        answer = read_answer(server, "drawing.png", canvas_png(browser)).json()
        assert_page_reads(browser, answer)
        assert width < PHONE["width"]
        assert browser.execute_script("return document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        browser.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": False})
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def placed(points: Sequence[tuple[int, int]], dx: int, dy: int, scale: float = 0.5) -> list[tuple[int, int]]:
    """A stroke made smaller and moved: two lines of digits fit the number pad."""
    return [(round(x * scale) + dx, round(y * scale) + dy) for x, y in points]


def test_number_mode_reads_two_lines(server: str, page: Driver) -> None:
    number_mode(page)
    for stroke in (placed(ONE, -120, -65), placed(SEVEN_STROKE, 60, -65), placed(ZERO, -120, 65), placed(ONE, 60, 65)):
        draw(page, stroke)
    page.find_element(By.ID, "read").click()
    wait_for_answers(page, 1)
    shot(page, "22-number-two-lines.png")
    answer = read_answer(server, "drawing.png", canvas_png(page)).json()
    assert_page_reads(page, answer)
    assert [len(line) for line in answer["text"].split("\n")] == [2, 2], answer["text"]
    assert [d["line"] for d in answer["digits"]] == [0, 0, 1, 1]
    assert page.find_element(By.ID, "text").text == answer["text"], "one line of text per line drawn"
    labels = [li.get_attribute("aria-label") for li in page.find_elements(By.CSS_SELECTOR, "#digits li")]
    assert [label.rsplit(", ", 1)[-1] for label in labels] == ["line 1", "line 1", "line 2", "line 2"]


def test_number_mode_marks_are_boxed_apart(server: str, page: Driver) -> None:
    number_mode(page)
    for stroke in (shifted(ONE, -150), [(-10, 80), (-9, 81)], shifted(SEVEN_STROKE, 130)):
        draw(page, stroke)  # 1.7: the point is a tap
    page.find_element(By.ID, "read").click()
    wait_for_answers(page, 1)
    shot(page, "23-number-with-a-point.png")
    answer = read_answer(server, "drawing.png", canvas_png(page)).json()
    assert_page_reads(page, answer)
    assert len(answer["digits"]) == 2 and len(answer["text"]) == 2, answer["text"]
    assert len(answer["marks"]) == 1, "the point is a mark, not a digit"
    (one, seven), (mark,) = [d["box"] for d in answer["digits"]], [m["box"] for m in answer["marks"]]
    assert one[0] + one[2] <= mark[0] and mark[0] + mark[2] <= seven[0], "the mark lies between the digits"
    colours = page.execute_script(
        "return ['digit', 'mark'].map(k => getComputedStyle(document.querySelector('#boxes .box.' + k)).borderTopColor)"
    )
    assert colours[0] != colours[1], "marks are boxed in their own colour"
    assert page.find_element(By.ID, "marks").text.startswith("Marks, not in the text: ")
