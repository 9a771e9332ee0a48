"""POST /v1/read and /v1/read/batch, mostly against a real server (`python -m app`): the answer's fields,
a batch's envelope, explain, several lines, marks, the errors /v1/predict gives and the two of reading
(blank_image, too_many_digits), hostile files, a single digit read as /v1/predict reads it, the OpenAPI.

The numbers are MNIST digits pasted side by side with wide gaps: the text is asserted only for these,
which any segmentation reads; harder numbers are the reader's own tests and `make accuracy`'s."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.config import Settings
from app.main import create_app
from app.model.classifier import Classifier
from fuzz.seeds import hostile
from tests.api.test_nasty_files import CORPUS
from tests.conftest import SEVEN, load_sample, png, running_server

GAP = 28
READING_FIELDS = {"text", "confidence", "digits", "marks", "notes", "model_version"}
DIGIT_FIELDS = {"digit", "confidence", "probabilities", "digit_score", "is_digit", "box", "line"}


def spaced_canvas(lines: list[list[int]]) -> np.ndarray:
    """Sample digits (by index) pasted GAP px apart on black, a line of them per list, lines GAP px apart."""
    digits = load_sample()[0]
    width = GAP + max(map(len, lines)) * (28 + GAP)
    canvas = np.zeros((GAP + len(lines) * (28 + GAP), width), np.uint8)
    for row, line in enumerate(lines):
        for column, index in enumerate(line):
            y, x = GAP + row * (28 + GAP), GAP + column * (28 + GAP)
            canvas[y : y + 28, x : x + 28] = digits[index]
    return canvas


def spaced_number(lines: list[list[int]], dark_on_light: bool = False) -> bytes:
    """spaced_canvas() as a PNG, white on black or black on white."""
    canvas = spaced_canvas(lines)
    return png(255 - canvas if dark_on_light else canvas)


def text_of(lines: list[list[int]]) -> str:
    labels = load_sample()[1]
    return "\n".join("".join(str(labels[i]) for i in line) for line in lines)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running_server({"MNIST_ENGINE_PROCESSES": "1"}) as url:
        yield url


@pytest.fixture(scope="module")
def two_digits_at_most(classifier: Classifier) -> Iterator[TestClient]:
    """An app reading at most 2 digits per image (MNIST_MAX_DIGITS=2)."""
    with TestClient(create_app(Settings(max_digits=2, engine_processes=0), classifier)) as client:
        yield client


def read(url: str, data: bytes, **params: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/read", files={"file": ("number.png", data, "image/png")}, params=params, timeout=60)


def test_a_spaced_number_is_read_left_to_right(server: str) -> None:
    lines = [[0, 1, 2, 3]]
    response = read(server, spaced_number(lines, dark_on_light=True))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == READING_FIELDS
    assert body["text"] == text_of(lines) and body["marks"] == [] and body["notes"] == ["inverted dark-on-light"]
    model = httpx.get(f"{server}/v1/model").json()
    assert body["model_version"] == model["version"]
    assert model["reading_calibration"]["after"]["ece"] < model["reading_calibration"]["before"]["ece"]
    digits = body["digits"]
    assert [d["digit"] for d in digits] == [int(c) for c in body["text"]]
    # the committed model's reading calibration of it (app/model/reading_calibration.py): a clean number is sure
    assert 0.5 < body["confidence"] <= 1
    for column, digit in enumerate(digits):
        assert set(digit) == DIGIT_FIELDS and digit["line"] == 0 and isinstance(digit["is_digit"], bool)
        assert len(digit["probabilities"]) == 10 and sum(digit["probabilities"]) == pytest.approx(1, abs=1e-4)
        assert digit["confidence"] == max(digit["probabilities"]) and 0 <= digit["digit_score"] <= 1
        x, y, w, h = digit["box"]  # inside the digit's own 28x28 cell, in the upload's pixels
        left = GAP + column * (28 + GAP)
        assert left <= x and x + w <= left + 28 and y >= GAP and y + h <= GAP + 28 and w > 0 and h > 0


def test_the_raw_body_is_read_too(server: str) -> None:
    data = spaced_number([[0, 1]])
    response = httpx.post(f"{server}/v1/read", content=data, headers={"Content-Type": "image/png"})
    assert response.status_code == 200 and response.json()["text"] == text_of([[0, 1]])


def test_several_lines_are_joined_by_newlines(server: str) -> None:
    lines = [[0, 1, 2], [3, 4]]
    body = read(server, spaced_number(lines)).json()
    assert body["text"] == text_of(lines)
    assert [d["line"] for d in body["digits"]] == [0, 0, 0, 1, 1]
    tops = [d["box"][1] for d in body["digits"]]
    assert max(tops[:3]) < min(tops[3:])


def test_explain_adds_each_digits_28x28_image(server: str) -> None:
    data = spaced_number([[0, 1]])
    plain, explained = read(server, data).json(), read(server, data, explain="true").json()
    assert all("pixels" not in d for d in plain["digits"])
    for digit, without in zip(explained["digits"], plain["digits"], strict=True):
        pixels = np.array(digit.pop("pixels"))
        assert pixels.shape == (28, 28) and pixels.min() >= 0 and 0 < pixels.max() <= 255
        header, encoded = digit.pop("input_image").split(",", 1)
        assert header == "data:image/png;base64"  # the same image, as /v1/predict shows its own
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded)))), pixels)
        assert digit == without


def test_marks_are_listed_apart_from_the_digits(server: str) -> None:
    canvas = spaced_canvas([[0, 1]])
    dot = GAP + 28 + GAP // 2  # a decimal point between the digits, on their baseline
    canvas[GAP + 24 : GAP + 28, dot - 2 : dot + 2] = 255
    body = read(server, png(canvas)).json()
    assert body["text"] == text_of([[0, 1]]), body  # the point is no digit
    (mark,) = body["marks"]
    assert set(mark) == {"char", "box", "line"} and mark["char"] in ".,-/" and mark["line"] == 0
    x, y, w, h = mark["box"]
    assert x <= dot - 2 and dot + 2 <= x + w and y <= GAP + 24 and y + h >= GAP + 28 and w < 10 and h < 10


def test_the_batch_answers_one_reading_per_file(server: str) -> None:
    numbers = [[[0, 1, 2]], [[3]], [[4, 5], [0]]]
    files = [("files", (f"{i}.png", spaced_number(lines), "image/png")) for i, lines in enumerate(numbers)]
    response = httpx.post(f"{server}/v1/read/batch", files=files, params={"explain": "true"}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"readings", "model_version"}
    model = httpx.get(f"{server}/v1/model").json()
    assert body["model_version"] == model["version"]
    assert model["reading_calibration"]["after"]["ece"] < model["reading_calibration"]["before"]["ece"]
    assert [r["text"] for r in body["readings"]] == [text_of(lines) for lines in numbers]
    for reading in body["readings"]:
        assert set(reading) == READING_FIELDS - {"model_version"}
        assert all(np.array(d["pixels"]).shape == (28, 28) for d in reading["digits"])


def test_a_bad_file_fails_the_batch_and_is_named(server: str) -> None:
    files = [("files", ("ok.png", SEVEN, "image/png")), ("files", ("notes.txt", b"hello, world\n", "text/plain"))]
    response = httpx.post(f"{server}/v1/read/batch", files=files)
    assert response.status_code == 415
    body = response.json()
    assert body["code"] == "unsupported_media_type" and body["detail"].startswith("File 1 ('notes.txt'): ")
    assert body["file"]["index"] == 1 and body["file"]["filename"] == "notes.txt"


@pytest.mark.parametrize(
    ("request_options", "status", "code"),
    [
        pytest.param({"content": b"x", "headers": {"Content-Type": "text/plain"}}, 415, "unsupported_media_type", id="text-body"),
        pytest.param({"files": {"other": ("a.png", SEVEN, "image/png")}}, 422, "missing_file", id="no-file-field"),
        pytest.param({"files": {"file": ("a.png", b"\x89PNG\r\n", "image/png")}}, 400, "invalid_image", id="truncated"),
        pytest.param({"files": {"file": ("a.png", png(np.full((40, 90), 255, np.uint8)), "image/png")}}, 422, "blank_image", id="no-ink"),
        pytest.param({"files": {"file": ("a.png", SEVEN, "image/png")}, "params": {"explain": "maybe"}}, 422, "invalid_request", id="bad-explain"),
    ],
)  # fmt: skip
def test_the_errors_are_predicts(server: str, request_options: dict[str, Any], status: int, code: str) -> None:
    for route in ("/v1/read", "/v1/predict"):
        response = httpx.post(f"{server}{route}", **request_options)
        assert (response.status_code, response.json()["code"]) == (status, code), (route, response.text)


def test_more_digits_than_mnist_max_digits_is_422(two_digits_at_most: TestClient) -> None:
    client = two_digits_at_most
    assert client.post("/v1/read", files={"file": ("two.png", spaced_number([[0, 1]]))}).json()["text"] == "72"
    response = client.post("/v1/read", files={"file": ("three.png", spaced_number([[0, 1, 2]]))})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "too_many_digits" and "MNIST_MAX_DIGITS" in response.json()["detail"]
    files = [("files", ("two.png", spaced_number([[0, 1]]))), ("files", ("lines.png", spaced_number([[0, 1], [2]])))]
    batch = client.post("/v1/read/batch", files=files)
    assert batch.status_code == 422 and batch.json()["code"] == "too_many_digits"
    assert batch.json()["file"]["filename"] == "lines.png"


HOSTILE = {name: data for name, (data, _, _) in CORPUS.items()} | {
    f"fuzz-seed-{i}": data for i, data in enumerate(hostile(load_sample()[0][0]))
}


def test_hostile_files_get_4xx_never_5xx(server: str) -> None:
    with httpx.Client(base_url=server, timeout=60) as client:
        for name, data in HOSTILE.items():
            response = client.post("/v1/read", files={"file": (f"{name}.bin", data, "application/octet-stream")})
            assert response.status_code in (200, 400, 413, 415, 422), (name, response.text[:300])
            assert ("text" in response.json()) if response.status_code == 200 else response.json()["code"]
        assert client.post("/v1/read", files={"file": ("seven.png", SEVEN)}).json()["text"] == "7"


def test_a_single_digit_is_read_as_predict_reads_it(server: str) -> None:
    digits = load_sample()[0]
    uploads = [SEVEN, *(png(digits[i]) for i in range(20)), spaced_number([[0]], dark_on_light=True)]
    with httpx.Client(base_url=server, timeout=60) as client:
        for i, data in enumerate(uploads):
            predicted = client.post("/v1/predict", files={"file": ("d.png", data)}).json()
            reading = client.post("/v1/read", files={"file": ("d.png", data)}).json()
            assert reading["text"] == str(predicted["digit"]), i
            (digit,) = reading["digits"]
            np.testing.assert_allclose(digit["probabilities"], predicted["probabilities"], atol=1e-5)


def test_openapi_declares_both_routes(server: str) -> None:
    schema = httpx.get(f"{server}/openapi.json").json()
    for path, answer in (("/v1/read", "Reading"), ("/v1/read/batch", "BatchReading")):
        operation = schema["paths"][path]["post"]
        assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(answer)
        assert "too_many_digits" in operation["responses"]["422"]["description"]
        assert "multipart/form-data" in operation["requestBody"]["content"]
        assert [p["name"] for p in operation["parameters"]] == ["explain"]
    assert "image/*" in schema["paths"]["/v1/read"]["post"]["requestBody"]["content"]
    components = schema["components"]["schemas"]
    assert components["Reading"]["examples"] and "description" in components["ReadingDigit"]["properties"]["box"]
    assert set(components["ReadingDigit"]["required"]) == {"digit", "confidence", "probabilities", "box", "line"}
