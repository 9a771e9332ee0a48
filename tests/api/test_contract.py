"""The /v1 HTTP contract: routes, fields, status codes and error bodies, against the committed model."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.contract import flatten_and_scale
from app.main import create_app
from app.model.classifier import Classifier
from app.schemas import BatchPrediction, ErrorResponse, Prediction
from tests.conftest import SEVEN, png


@pytest.fixture()
def client(classifier: Classifier) -> Iterator[TestClient]:
    with TestClient(
        create_app(Settings(max_body_bytes=200_000, max_pixels=1_000_000, max_batch_files=8), classifier)
    ) as c:
        yield c


def assert_prediction(body: dict[str, object]) -> None:
    Prediction.model_validate(body)  # the documented schema
    probabilities = body["probabilities"]
    assert isinstance(probabilities, list) and len(probabilities) == 10
    assert abs(sum(probabilities) - 1.0) < 1e-4
    assert body["digit"] == int(np.argmax(probabilities))
    assert body["confidence"] == pytest.approx(max(probabilities))


def test_predict_multipart_and_raw_body_agree(client: TestClient) -> None:
    multipart = client.post("/v1/predict", files={"file": ("seven.png", SEVEN, "image/png")})
    raw = client.post("/v1/predict", content=SEVEN, headers={"Content-Type": "image/png"})
    octet = client.post("/v1/predict", content=SEVEN, headers={"Content-Type": "application/octet-stream"})
    for response in (multipart, raw, octet):
        assert response.status_code == 200, response.text
        assert_prediction(response.json())
        assert response.json()["digit"] == 7
    assert multipart.json()["probabilities"] == raw.json()["probabilities"] == octet.json()["probabilities"]


def test_predict_matches_the_model_in_process(
    client: TestClient, classifier: Classifier, sample: tuple[np.ndarray, np.ndarray]
) -> None:
    x, _ = sample
    for i in range(5):
        body = client.post("/v1/predict", content=png(x[i]), headers={"Content-Type": "image/png"}).json()
        expected = classifier.predict_proba(flatten_and_scale(x[i : i + 1]))[0]
        np.testing.assert_allclose(body["probabilities"], expected, atol=1e-6)


def test_simple_mode_and_explain(client: TestClient) -> None:
    response = client.post(
        "/v1/predict?preprocess=simple&explain=true", files={"file": ("seven.png", SEVEN, "image/png")}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["preprocess"] == "simple" and body["digit"] == 7
    assert body["input_image"].startswith("data:image/png;base64,")
    assert "input_image" not in client.post("/v1/predict", files={"file": ("s.png", SEVEN, "image/png")}).json()


def test_batch_keeps_upload_order(
    client: TestClient, sample: tuple[np.ndarray, np.ndarray], classifier: Classifier
) -> None:
    x, _ = sample
    files = [("files", (f"d{i}.png", png(x[i]), "image/png")) for i in range(8)]
    response = client.post("/v1/predict/batch", files=files)
    assert response.status_code == 200, response.text
    predictions = BatchPrediction.model_validate(response.json()).model_dump()["predictions"]
    expected = classifier.predict_proba(flatten_and_scale(x[:8])).argmax(axis=1)
    assert [p["digit"] for p in predictions] == expected.tolist()


def test_batch_bad_file_names_index_and_filename(client: TestClient) -> None:
    files = [("files", ("ok.png", SEVEN, "image/png")), ("files", ("notes.txt", b"hello there", "text/plain"))]
    response = client.post("/v1/predict/batch", files=files)
    assert response.status_code == 415
    body = ErrorResponse.model_validate(response.json())
    assert "File 1" in body.detail and "notes.txt" in body.detail and body.code == "unsupported_media_type"
    # the same, for programs: which file, and the error about it alone
    assert body.file is not None and (body.file.index, body.file.filename) == (1, "notes.txt")
    assert body.detail.endswith(body.file.detail) and "File 1" not in body.file.detail


def test_a_text_field_among_a_batch_is_named_as_the_file_it_should_be(client: TestClient) -> None:
    parts = [("files", ("ok.png", SEVEN, "image/png")), ("files", (None, b"just text"))]
    response = client.post("/v1/predict/batch", files=parts)
    assert response.status_code == 422 and response.json()["code"] == "missing_file"
    assert response.json()["file"] == {
        "index": 1,
        "filename": None,
        "detail": "The field `files` holds text, not a file.",
    }


def test_errors_not_about_one_file_of_a_batch_have_no_file_field(client: TestClient) -> None:
    response = client.post("/v1/predict", files={"file": ("notes.txt", b"hello there", "text/plain")})
    assert response.status_code == 415 and "file" not in response.json()
    response = client.post("/v1/predict/batch", files=[("files", (f"{i}.png", SEVEN, "image/png")) for i in range(9)])
    assert response.status_code == 422 and "file" not in response.json()


def test_batch_limits(client: TestClient) -> None:
    too_many = [("files", (f"{i}.png", SEVEN, "image/png")) for i in range(9)]
    response = client.post("/v1/predict/batch", files=too_many)
    assert response.status_code == 422 and response.json()["code"] == "too_many_files"
    response = client.post("/v1/predict/batch", files={"other": ("a.png", SEVEN, "image/png")})
    assert response.status_code == 422 and response.json()["code"] == "missing_file"


def uniform(value: int) -> bytes:
    return png(np.full((40, 40), value, dtype=np.uint8))


def transparent() -> bytes:
    return png(np.zeros((40, 40, 4), dtype=np.uint8), "RGBA")


def truncated_png() -> bytes:
    return SEVEN[: len(SEVEN) // 2]


def bomb() -> bytes:
    return png(np.zeros((2000, 2000), dtype=np.uint8))  # 4 MP, over the test's 1 MP cap; compresses to ~4 KB


BAD_UPLOADS = [
    (b"", 400, "invalid_image"),
    (os.urandom(512).replace(b"\x00", b"\x01"), 400, "invalid_image"),
    (truncated_png(), 400, "invalid_image"),
    (b"just some text, not an image", 415, "unsupported_media_type"),
    (b"<html><body>hi</body></html>", 415, "unsupported_media_type"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>', 415, "unsupported_media_type"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", 415, "unsupported_media_type"),
    (uniform(255), 422, "blank_image"),
    (uniform(0), 422, "blank_image"),
    (transparent(), 422, "blank_image"),
    (bomb(), 413, "image_too_large"),
]


@pytest.mark.parametrize(
    ("data", "status", "code"),
    BAD_UPLOADS,
    ids=[
        "empty",
        "random",
        "truncated-png",
        "text",
        "html",
        "svg",
        "pdf",
        "white",
        "black",
        "transparent",
        "pixel-cap",
    ],
)
def test_bad_uploads_get_their_documented_error(client: TestClient, data: bytes, status: int, code: str) -> None:
    response = client.post("/v1/predict", files={"file": ("upload.bin", data, "application/octet-stream")})
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert body["detail"].endswith(".") and len(body["detail"]) > 10
    assert client.get("/healthz").status_code == 200


def test_body_cap_with_and_without_content_length(client: TestClient) -> None:
    big = b"\x89PNG" + b"\x00" * 300_000
    response = client.post("/v1/predict", content=big, headers={"Content-Type": "image/png"})
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"\x00" * 10_000

    response = client.post("/v1/predict", content=chunks(), headers={"Content-Type": "image/png"})
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"


def test_request_shape_errors(client: TestClient) -> None:
    response = client.post("/v1/predict", content=b"{}", headers={"Content-Type": "application/json"})
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"
    response = client.post("/v1/predict", files={"wrong": ("a.png", SEVEN, "image/png")})
    assert response.status_code == 422 and response.json()["code"] == "missing_file"
    for query in ("preprocess=fancy", "explain=maybe", "preprocess=MNIST"):
        for path in ("/v1/predict", "/v1/predict/batch"):
            field = "files" if path.endswith("batch") else "file"
            response = client.post(f"{path}?{query}", files={field: ("a.png", SEVEN, "image/png")})
            assert response.status_code == 422 and response.json()["code"] == "invalid_request", (path, query)
            assert query.split("=")[0] in response.json()["detail"]
    for value in ("true", "True", "1", "yes", "on"):  # booleans as FastAPI (pydantic) reads them
        response = client.post(f"/v1/predict?explain={value}", files={"file": ("a.png", SEVEN, "image/png")})
        assert "input_image" in response.json()
    response = client.post("/v1/predict?explain=off", files={"file": ("a.png", SEVEN, "image/png")})
    assert "input_image" not in response.json()


def test_model_health_and_readiness(client: TestClient, classifier: Classifier) -> None:
    info = client.get("/v1/model").json()
    assert info["name"] == "mnist-mlp" and info["sha256"] == classifier.sha256
    assert set(info["preprocessing_modes"]) == {"mnist", "simple"}
    assert info["input"]["shape"] == [-1, 784] and info["metadata"]["metrics"]["test"]["accuracy"] >= 0.99
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_not_ready_before_the_model_is_loaded() -> None:
    client = TestClient(create_app(Settings()))  # no `with`: the lifespan has not run, no model
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["code"] == "not_ready"
    response = client.post("/v1/predict", content=SEVEN, headers={"Content-Type": "image/png"})
    assert response.status_code == 503


def test_startup_fails_on_a_bad_model(tmp_path: Path) -> None:
    missing = Settings(model_path=tmp_path / "nope.keras")
    with pytest.raises(Exception, match="does not exist"), TestClient(create_app(missing)):
        pass
    corrupt = tmp_path / "m.keras"
    corrupt.write_bytes(b"not a zip")
    (tmp_path / "m.json").write_text('{"sha256": "0000"}')
    with pytest.raises(Exception, match="sha256"), TestClient(create_app(Settings(model_path=corrupt))):
        pass


def test_docs_are_served_offline(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "/docs-assets/" in html and "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        response = client.get(f"/docs-assets/{asset}")
        assert response.status_code == 200 and len(response.content) > 10_000
    spec = client.get("/openapi.json").json()
    for path in ("/v1/predict", "/v1/predict/batch"):
        operation = spec["paths"][path]["post"]
        assert operation["summary"] and operation["description"]
        assert {"200", "400", "413", "415", "422"} <= set(operation["responses"])
        assert "multipart/form-data" in operation["requestBody"]["content"]


def test_request_id_is_echoed_or_made(client: TestClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"}).headers["x-request-id"]
    assert made != "bad id with spaces" and len(made) == 32


def test_metrics_count_predictions(client: TestClient) -> None:
    client.post("/v1/predict", content=SEVEN, headers={"Content-Type": "image/png"})
    text = client.get("/metrics").text
    assert 'mnist_predictions_total{digit="7"}' in text
    assert 'mnist_http_requests_total{method="POST",protocol="rest",route="/v1/predict",status="200"}' in text
    assert "mnist_model_info{" in text and "mnist_inference_batch_size_bucket" in text


def test_http_accuracy_on_the_committed_sample_equals_in_process(
    client: TestClient, classifier: Classifier, sample: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = sample
    digits: list[int] = []
    for start in range(0, len(x), 8):
        files = [("files", (f"{i}.png", png(x[i]), "image/png")) for i in range(start, min(start + 8, len(x)))]
        response = client.post("/v1/predict/batch", files=files)
        digits += [p["digit"] for p in response.json()["predictions"]]
    in_process = classifier.predict_proba(flatten_and_scale(x)).argmax(axis=1)
    agreement = float(np.mean(np.array(digits) == in_process))
    assert agreement >= 0.999, agreement
    assert abs(float(np.mean(np.array(digits) == y)) - float(np.mean(in_process == y))) <= 0.001


def test_one_json_log_line_per_request(classifier: Classifier, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    with TestClient(create_app(Settings(), classifier)) as client:
        capsys.readouterr()
        client.post("/v1/predict", content=SEVEN, headers={"Content-Type": "image/png", "X-Request-ID": "log-test-1"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "log-test-1" in line]
    assert len(lines) == 1
    entry = lines[0]
    assert entry["route"] == "/v1/predict" and entry["status"] == 200 and entry["method"] == "POST"
    assert entry["digit"] == 7 and 0 < entry["confidence"] <= 1 and entry["latency_ms"] > 0 and entry["time"]


@pytest.mark.skipif(
    not os.environ.get("MNIST_NPZ"),
    reason="MNIST_NPZ is not set: this test needs the full MNIST .npz (../shared/data/mnist.npz); .ci/run sets it",
)
def test_all_10000_test_digits_over_http_score_as_in_process(classifier: Classifier) -> None:
    with np.load(os.environ["MNIST_NPZ"]) as data:
        x, y = data["x_test"], data["y_test"]
    in_process = float(np.mean(classifier.predict_proba(flatten_and_scale(x)).argmax(axis=1) == y))
    digits: list[int] = []
    with TestClient(create_app(Settings(), classifier)) as client:
        for start in range(0, len(x), 64):
            files = [("files", (f"{i}.png", png(x[i]), "image/png")) for i in range(start, min(start + 64, len(x)))]
            digits += [p["digit"] for p in client.post("/v1/predict/batch", files=files).json()["predictions"]]
    over_http = float(np.mean(np.array(digits) == y))
    print(f"10,000 MNIST test digits: over HTTP {over_http:.4f}, in process {in_process:.4f}")
    assert abs(over_http - in_process) <= 0.001
