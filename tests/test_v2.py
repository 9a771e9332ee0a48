"""The Open Inference Protocol (/v2): hand-written requests for every route and error, then the real
`tritonclient[http]` client against a real server, in JSON and with the binary tensor extension."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.inference import Classifier
from app.main import create_app
from tests.conftest import running_server
from training.data import flatten_and_scale

ROOT = Path(__file__).resolve().parent.parent
SEVEN = (ROOT / "tests" / "data" / "seven.png").read_bytes()
INFER = "/v2/models/mnist-mlp/infer"


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier.load(ROOT / "models" / "mnist-mlp.keras")


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    with np.load(ROOT / "tests" / "data" / "mnist-sample.npz") as sample:
        return sample["x"][:16], sample["y"][:16]


@pytest.fixture()
def client(classifier: Classifier) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(), classifier)) as c:
        yield c


def pixels_request(x: np.ndarray, datatype: str = "FP32", shape: list[int] | None = None) -> dict[str, object]:
    data = (x / 255.0).tolist() if datatype == "FP32" else x.tolist()
    return {"inputs": [{"name": "pixels", "datatype": datatype, "shape": shape or list(x.shape), "data": data}]}


def test_server_and_model_status(client: TestClient, classifier: Classifier) -> None:
    assert client.get("/v2").json()["extensions"] == ["binary_tensor_data"]
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    for path in ("/v2/models/mnist-mlp", f"/v2/models/mnist-mlp/versions/{classifier.version}"):
        meta = client.get(path).json()
        assert meta["name"] == "mnist-mlp" and meta["versions"] == [classifier.version] and meta["platform"]
        assert {"name": "pixels", "datatype": "FP32", "shape": [-1, 784]} in meta["inputs"]
        assert {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]} in meta["outputs"]
    assert client.get("/v2/models/mnist-mlp/ready").json() == {"name": "mnist-mlp", "ready": True}
    assert client.get(f"/v2/models/mnist-mlp/versions/{classifier.version}/ready").status_code == 200


def test_not_ready_is_503() -> None:
    client = TestClient(create_app(Settings()))  # lifespan not run: no model
    assert client.get("/v2/health/ready").status_code == 503
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/models/mnist-mlp/ready").status_code == 503
    response = client.post(INFER, json=pixels_request(np.zeros((1, 784))))
    assert response.status_code == 503 and "error" in response.json()


@pytest.mark.parametrize("shape", [[16, 784], [16, 28, 28]], ids=["flat", "square"])
@pytest.mark.parametrize("datatype", ["FP32", "UINT8"])
def test_infer_pixels_equals_the_model(
    client: TestClient, classifier: Classifier, digits: tuple[np.ndarray, np.ndarray], shape: list[int], datatype: str
) -> None:
    x, _ = digits
    body = pixels_request(x.reshape(shape), datatype)
    body["id"] = "request-7"
    response = client.post(INFER, json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["id"] == "request-7" and answer["model_name"] == "mnist-mlp"
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert outputs["probabilities"]["shape"] == [16, 10] and outputs["probabilities"]["datatype"] == "FP32"
    probabilities = np.array(outputs["probabilities"]["data"]).reshape(16, 10)
    np.testing.assert_allclose(probabilities, classifier.predict_proba(flatten_and_scale(x)), atol=1e-6)
    assert outputs["digit"]["data"] == probabilities.argmax(axis=1).tolist()


def test_infer_images_and_requested_outputs(client: TestClient) -> None:
    body = {
        "inputs": [
            {"name": "image", "datatype": "BYTES", "shape": [2], "data": [base64.b64encode(SEVEN).decode()] * 2}
        ],
        "outputs": [{"name": "digit"}],
    }
    answer = client.post(INFER, json=body).json()
    assert [o["name"] for o in answer["outputs"]] == ["digit"] and answer["outputs"][0]["data"] == [7, 7]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inputs": [{"name": "pixels", "datatype": "FP64", "shape": [1, 784], "data": [0] * 784}]}, "expected FP32"),
        ({"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1, 783], "data": [0] * 783}]}, "expected [N, 784]"),
        ({"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [2, 784], "data": [0] * 784}]}, "needs 1568"),
        ({"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1, 784], "data": [2.0] * 784}]}, "in [0, 1]"),
        ({"inputs": [{"name": "pixels", "datatype": "UINT8", "shape": [1, 784], "data": [300] * 784}]}, "0 to 255"),
        ({"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1, 784], "data": ["a"] * 784}]}, "list of numbers"),
        ({"inputs": [{"name": "tensor", "datatype": "FP32", "shape": [1, 784], "data": [0] * 784}]}, "Unknown input"),
        ({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["not base64!"]}]}, "base64"),
        ({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [base64.b64encode(b"hi").decode()]}]}, "element 0"),
        ({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": [0]}]}, "expected BYTES"),
        ({"inputs": []}, "exactly one input"),
        ({"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1, 784], "data": [0] * 784}], "outputs": [{"name": "logits"}]}, "Unknown output"),
        ([1, 2], "JSON object"),
    ],
    ids=["datatype", "shape", "count", "range", "uint8-range", "not-numbers", "input-name", "base64", "not-an-image",
         "image-datatype", "no-inputs", "output-name", "not-an-object"],
)  # fmt: skip
def test_bad_requests_are_400_with_a_sentence(client: TestClient, body: object, message: str) -> None:
    response = client.post(INFER, json=body)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"} and message in response.json()["error"]


def test_unknown_model_version_and_bad_json(client: TestClient) -> None:
    assert client.get("/v2/models/other").status_code == 404
    assert client.get("/v2/models/mnist-mlp/versions/999").status_code == 404
    assert client.post("/v2/models/other/infer", json={}).json()["error"].startswith("Unknown model")
    response = client.post(INFER, content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]
    response = client.post(INFER, content=b"{}", headers={"Inference-Header-Content-Length": "99"})
    assert response.status_code == 400


# the real client ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running_server() as url:
        yield url.removeprefix("http://")


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient(server: str, classifier: Classifier, digits: tuple[np.ndarray, np.ndarray], binary: bool) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=server)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("mnist-mlp")
    meta = client.get_model_metadata("mnist-mlp")
    assert meta["name"] == "mnist-mlp" and meta["outputs"][0]["name"] == "probabilities"
    x, _ = digits
    expected = classifier.predict_proba(flatten_and_scale(x))

    for array in (flatten_and_scale(x), flatten_and_scale(x).reshape(-1, 28, 28)):
        tensor = triton.InferInput("pixels", list(array.shape), "FP32")
        tensor.set_data_from_numpy(array, binary_data=binary)
        wanted = [triton.InferRequestedOutput("probabilities", binary_data=binary)]
        result = client.infer("mnist-mlp", [tensor], outputs=wanted, request_id="r1")
        np.testing.assert_allclose(result.as_numpy("probabilities"), expected, atol=1e-6)
        assert result.get_response()["id"] == "r1"

    tensor = triton.InferInput("pixels", [len(x), 784], "UINT8")
    tensor.set_data_from_numpy(x.reshape(-1, 784), binary_data=binary)
    result = client.infer("mnist-mlp", [tensor])  # no outputs named: all of them
    assert result.as_numpy("digit").tolist() == expected.argmax(axis=1).tolist()

    files = [SEVEN, SEVEN]
    images = np.array([base64.b64encode(f) if not binary else f for f in files], dtype=np.object_)
    tensor = triton.InferInput("image", [len(files)], "BYTES")
    tensor.set_data_from_numpy(images, binary_data=binary)
    result = client.infer("mnist-mlp", [tensor], outputs=[triton.InferRequestedOutput("digit", binary_data=binary)])
    assert result.as_numpy("digit").tolist() == [7, 7]
