"""digit_score and is_digit (issue 14): on /v1 (single and batch), on /v2 as two more outputs listed in
the metadata, the threshold from the model's metadata or MNIST_DIGIT_THRESHOLD, and a model without a
scorer answering as before. Against the committed model and its scorer (models/mnist-mlp.digit.keras)."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from app.config import Settings
from app.contract import flatten_and_scale
from app.main import create_app
from app.model.classifier import Classifier
from app.model.keras_file import ModelLoadError
from tests.conftest import DATA, MODEL, SEVEN, encode


def drawing(strokes: list[list[tuple[int, int]]], size: int = 280, pen: int = 18) -> bytes:
    """Dark strokes on a white canvas, as the demo page sends them."""
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    for line in strokes:
        draw.line(line, fill=0, width=pen, joint="curve")
    return encode(image)


HASH = (DATA / "hash.png").read_bytes()  # the README's example: a # drawn as the demo page sends it
STAR = drawing([[(140, 30), (200, 240), (30, 100), (250, 100), (80, 240), (140, 30)]])


def client_for(**settings: object) -> TestClient:
    return TestClient(create_app(Settings(engine_processes=0, **settings)))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with client_for() as client:
        yield client


def predict(client: TestClient, body: bytes) -> dict[str, object]:
    response = client.post("/v1/predict", content=body, headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_committed_model_has_a_scorer_at_its_metadatas_threshold(client: TestClient) -> None:
    metadata = json.loads(MODEL.with_suffix(".json").read_text())
    assert metadata["digit_score"]["file"] == "mnist-mlp.digit.keras" and metadata["digit_score"]["threshold"] == 0.5
    info = client.get("/v1/model").json()
    assert info["digit_threshold"] == 0.5 and info["metadata"]["digit_score"]["sha256"]


def test_a_digit_is_a_digit_and_drawings_that_are_none_are_not(client: TestClient) -> None:
    seven = predict(client, SEVEN)
    assert seven["digit"] == 7 and seven["is_digit"] is True and 0.5 <= seven["digit_score"] <= 1  # type: ignore[operator]
    for body in (HASH, STAR):
        answer = predict(client, body)
        assert answer["is_digit"] is False and 0 <= answer["digit_score"] < 0.5, answer  # type: ignore[operator]
        # still answered: the best guess and all ten probabilities
        assert 0 <= answer["digit"] <= 9 and len(answer["probabilities"]) == 10  # type: ignore[arg-type, operator]


def test_the_batch_answers_both_fields_for_each_file(client: TestClient) -> None:
    files = [("files", ("seven.png", SEVEN, "image/png")), ("files", ("hash.png", HASH, "image/png"))]
    predictions = client.post("/v1/predict/batch", files=files).json()["predictions"]
    assert [p["is_digit"] for p in predictions] == [True, False]
    assert all(isinstance(p["digit_score"], float) for p in predictions)


def test_the_threshold_can_be_overridden(client: TestClient) -> None:
    score = predict(client, SEVEN)["digit_score"]
    with client_for(digit_threshold=1.0) as strict:
        assert strict.get("/v1/model").json()["digit_threshold"] == 1.0
        answer = predict(strict, SEVEN)
        assert answer["is_digit"] is False and answer["digit_score"] == score  # the score itself is the model's
    with client_for(digit_threshold=0.0) as lenient:
        assert predict(lenient, HASH)["is_digit"] is True


def infer(client: TestClient, request: dict[str, object]) -> dict[str, object]:
    response = client.post("/v2/models/mnist-mlp/infer", json=request)
    assert response.status_code == 200, response.text
    return response.json()


def images(*bodies: bytes) -> dict[str, object]:
    data = [base64.b64encode(body).decode() for body in bodies]
    return {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [len(data)], "data": data}]}


def test_v2_lists_and_answers_the_two_outputs(client: TestClient) -> None:
    outputs = client.get("/v2/models/mnist-mlp").json()["outputs"]
    assert {o["name"]: (o["datatype"], o["shape"]) for o in outputs} == {
        "probabilities": ("FP32", [-1, 10]),
        "digit": ("INT64", [-1]),
        "digit_score": ("FP32", [-1]),
        "is_digit": ("BOOL", [-1]),
    }
    answer = {o["name"]: o for o in infer(client, images(SEVEN, HASH))["outputs"]}  # type: ignore[union-attr]
    assert answer["is_digit"]["data"] == [True, False] and answer["is_digit"]["shape"] == [2]
    v1 = [predict(client, body)["digit_score"] for body in (SEVEN, HASH)]
    np.testing.assert_allclose(answer["digit_score"]["data"], v1, atol=1e-6)


def test_v2_pixels_answer_the_same_scores_as_the_classifier(
    client: TestClient, sample: tuple[np.ndarray, np.ndarray]
) -> None:
    x = flatten_and_scale(sample[0][:5])
    request = {
        "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [5, 784], "data": x.ravel().tolist()}],
        "outputs": [{"name": "digit_score"}, {"name": "is_digit", "parameters": {"binary_data": True}}],
    }
    response = client.post("/v2/models/mnist-mlp/infer", json=request)
    assert response.status_code == 200, response.text
    header_length = int(response.headers["inference-header-content-length"])
    header = json.loads(response.content[:header_length])
    flags = np.frombuffer(response.content[header_length:], dtype=np.bool_)
    _, expected = Classifier.load(MODEL).predict(x)
    assert expected is not None
    assert [o["name"] for o in header["outputs"]] == ["digit_score", "is_digit"]
    np.testing.assert_allclose(header["outputs"][0]["data"], expected, atol=1e-6)
    assert header["outputs"][1]["parameters"]["binary_data_size"] == 5 and list(flags) == list(expected >= 0.5)


@pytest.fixture(scope="module")
def unscored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed classifier with metadata that names no scorer: a model from before issue 14."""
    folder = tmp_path_factory.mktemp("unscored")
    shutil.copy(MODEL, folder / MODEL.name)
    metadata = json.loads(MODEL.with_suffix(".json").read_text())
    del metadata["digit_score"]
    (folder / "mnist-mlp.json").write_text(json.dumps(metadata))
    return folder / MODEL.name


def test_a_model_without_a_scorer_answers_as_before(unscored: Path) -> None:
    with client_for(model_path=unscored) as old:
        answer = predict(old, SEVEN)
        assert "digit_score" not in answer and "is_digit" not in answer and answer["digit"] == 7
        assert old.get("/v1/model").json()["digit_threshold"] is None
        assert [o["name"] for o in old.get("/v2/models/mnist-mlp").json()["outputs"]] == ["probabilities", "digit"]
        assert [o["name"] for o in infer(old, images(SEVEN))["outputs"]] == ["probabilities", "digit"]  # type: ignore[union-attr]
        response = old.post("/v2/models/mnist-mlp/infer", json=images(SEVEN) | {"outputs": [{"name": "is_digit"}]})
        assert response.status_code == 400 and "no digit scorer" in response.json()["error"]


def test_a_scorer_that_is_missing_or_changed_is_refused(tmp_path: Path) -> None:
    for name in (MODEL.name, MODEL.with_suffix(".json").name):
        shutil.copy(MODEL.with_name(name), tmp_path / name)
    with pytest.raises(ModelLoadError, match=r"mnist-mlp\.digit\.keras does not exist"):
        Classifier.load(tmp_path / MODEL.name)
    scorer = tmp_path / "mnist-mlp.digit.keras"
    scorer.write_bytes(MODEL.with_name("mnist-mlp.digit.keras").read_bytes() + b"\0")
    with pytest.raises(ModelLoadError, match="sha256"):
        Classifier.load(tmp_path / MODEL.name)
