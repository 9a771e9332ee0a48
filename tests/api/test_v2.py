"""The Open Inference Protocol (/v2): hand-written requests for every route and error, in JSON and in
Triton's binary tensor extension, then the real `tritonclient[http]` client against a real server."""

from __future__ import annotations

import base64
import gzip
import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.api.v2.codec import MAX_JSON_ROWS, MAX_ROWS
from app.config import Settings
from app.contract import flatten_and_scale
from app.main import create_app
from app.model.classifier import Classifier
from app.preprocessing import preprocess
from tests.conftest import SEVEN, png, running_server

INFER = "/v2/models/mnist-mlp/infer"
ROUTES = [
    "/v2",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/models/{model_name}",
    "/v2/models/{model_name}/versions/{version}",
    "/v2/models/{model_name}/ready",
    "/v2/models/{model_name}/versions/{version}/ready",
    "/v2/models/{model_name}/infer",
    "/v2/models/{model_name}/versions/{version}/infer",
]


@pytest.fixture(scope="module")
def digits(sample: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The first 16 committed MNIST test digits: (16, 28, 28) uint8 and their labels."""
    return sample[0][:16], sample[1][:16]


@pytest.fixture(scope="module")
def pngs(digits: tuple[np.ndarray, np.ndarray]) -> list[bytes]:
    """The 16 digits as PNG files (what a client sends as a BYTES `image` input)."""
    return [png(pixels) for pixels in digits[0]]


@pytest.fixture(scope="module")
def client(classifier: Classifier) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(), classifier)) as c:
        yield c


def pixels_request(x: np.ndarray, datatype: str = "FP32", shape: list[int] | None = None) -> dict[str, Any]:
    data = (x / 255.0).tolist() if datatype == "FP32" else x.tolist()
    return {"inputs": [{"name": "pixels", "datatype": datatype, "shape": shape or list(x.shape), "data": data}]}


def image_request(files: list[bytes]) -> dict[str, Any]:
    data = [base64.b64encode(f).decode() for f in files]
    return {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [len(files)], "data": data}]}


def binary_body(header: dict[str, Any], *tensors: bytes) -> tuple[bytes, dict[str, str]]:
    """A request in the binary tensor extension: the JSON header, then the tensors' raw bytes."""
    head = json.dumps(header).encode()
    return head + b"".join(tensors), {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(head)),
    }


def outputs_of(response: httpx.Response) -> dict[str, np.ndarray]:
    """Each output as an array, whether it came as JSON data or as binary data after the header."""
    assert response.status_code == 200, response.text
    length = response.headers.get("inference-header-content-length")
    header = json.loads(response.content[: int(length)] if length else response.content)
    tail, offset, arrays = response.content[int(length) if length else len(response.content) :], 0, {}
    for output in header["outputs"]:
        dtype = {"FP32": np.float32, "INT64": np.int64, "BOOL": np.bool_}[output["datatype"]]
        if "data" in output:
            arrays[output["name"]] = np.array(output["data"], dtype=dtype).reshape(output["shape"])
        else:
            size = output["parameters"]["binary_data_size"]
            arrays[output["name"]] = np.frombuffer(tail[offset : offset + size], dtype).reshape(output["shape"])
            offset += size
    assert offset == len(tail)
    return arrays


def expected_for_images(classifier: Classifier, files: list[bytes]) -> np.ndarray:
    return classifier.predict_proba(np.concatenate([preprocess(f).model_input for f in files]))


# status and metadata --------------------------------------------------------------------------------


def test_server_and_model_status(client: TestClient, classifier: Classifier) -> None:
    server = client.get("/v2").json()
    assert server["name"] == "mnist-service" and server["extensions"] == ["binary_tensor_data"]
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    for path in ("/v2/models/mnist-mlp", f"/v2/models/mnist-mlp/versions/{classifier.version}"):
        meta = client.get(path).json()
        assert meta["name"] == "mnist-mlp" and meta["versions"] == [classifier.version] and meta["platform"]
        assert meta["inputs"] == [
            {"name": "pixels", "datatype": "FP32", "shape": [-1, 784]},
            {"name": "image", "datatype": "BYTES", "shape": [-1]},
        ]
        assert meta["outputs"] == [
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
            {"name": "digit", "datatype": "INT64", "shape": [-1]},
            {"name": "digit_score", "datatype": "FP32", "shape": [-1]},
            {"name": "is_digit", "datatype": "BOOL", "shape": [-1]},
        ]
    assert client.get("/v2/models/mnist-mlp/ready").json() == {"name": "mnist-mlp", "ready": True}
    assert client.get(f"/v2/models/mnist-mlp/versions/{classifier.version}/ready").status_code == 200


def test_every_route_is_in_the_docs_beside_v1(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(ROUTES) <= set(paths) and "/v1/predict" in paths
    assert "application/octet-stream" in paths["/v2/models/{model_name}/infer"]["post"]["requestBody"]["content"]
    assert client.get("/docs").status_code == 200


def test_not_ready_is_503_with_an_error() -> None:
    client = TestClient(create_app(Settings()))  # the lifespan never runs: no model
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2").status_code == 200
    ready = client.get("/v2/health/ready")
    assert ready.status_code == 503 and ready.json() == {"ready": False}
    model_ready = client.get("/v2/models/mnist-mlp/ready")
    assert model_ready.status_code == 503 and model_ready.json() == {"name": "mnist-mlp", "ready": False}
    for response in (
        client.get("/v2/models/mnist-mlp"),
        client.get("/v2/models/mnist-mlp/versions/1"),
        client.post(INFER, json=pixels_request(np.zeros((1, 784)))),
    ):
        assert response.status_code == 503 and set(response.json()) == {"error"}, response.text
    assert client.get("/v2/models/other/ready").status_code == 404  # the name is known without the model


def test_unknown_model_or_version_is_404(client: TestClient) -> None:
    body = pixels_request(np.zeros((1, 784)))
    for response in (
        client.get("/v2/models/other"),
        client.get("/v2/models/other/ready"),
        client.post("/v2/models/other/infer", json=body),
        client.get("/v2/models/mnist-mlp/versions/999"),
        client.get("/v2/models/mnist-mlp/versions/999/ready"),
        client.post("/v2/models/mnist-mlp/versions/999/infer", json=body),
    ):
        assert response.status_code == 404 and set(response.json()) == {"error"}, response.text
    assert "served version is" in client.get("/v2/models/mnist-mlp/versions/999").json()["error"]


def test_unknown_v2_paths_and_methods_answer_the_protocol_error_shape(client: TestClient) -> None:
    for response in (
        client.get("/v2/nowhere"),
        client.post("/v2"),
        client.delete("/v2/models/mnist-mlp"),
        client.get("/v2/models/mnist-mlp/infer"),
        client.post("/v2/models/mnist-mlp/infer", content=b"{}", headers={"Content-Type": "application/json"}),
    ):
        assert response.status_code in (400, 404, 405, 422) and set(response.json()) == {"error"}, response.text
    assert set(client.get("/v1/nowhere").json()) == {"detail", "code"}


# inference in JSON ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [[16, 784], [16, 28, 28]], ids=["flat", "square"])
@pytest.mark.parametrize("datatype", ["FP32", "UINT8"])
def test_infer_pixels_equals_the_model(
    client: TestClient, classifier: Classifier, digits: tuple[np.ndarray, np.ndarray], shape: list[int], datatype: str
) -> None:
    x, y = digits
    body = pixels_request(x.reshape(shape), datatype)
    body["id"] = "request-7"
    response = client.post(f"/v2/models/mnist-mlp/versions/{classifier.version}/infer", json=body)
    answer = response.json()
    assert answer["id"] == "request-7" and answer["model_name"] == "mnist-mlp"
    assert answer["model_version"] == classifier.version
    outputs = outputs_of(response)
    assert outputs["probabilities"].shape == (16, 10) and outputs["probabilities"].dtype == np.float32
    np.testing.assert_allclose(outputs["probabilities"], classifier.predict_proba(flatten_and_scale(x)), atol=1e-6)
    assert outputs["digit"].tolist() == outputs["probabilities"].argmax(axis=1).tolist()
    assert (outputs["digit"] == y).mean() >= 0.9


def test_infer_flat_data_for_a_nested_shape(client: TestClient, classifier: Classifier, digits: Any) -> None:
    x = digits[0][:2]
    body = pixels_request(x.reshape(2, 784), "UINT8", shape=[2, 28, 28])  # data flat, shape [N, 28, 28]
    got = outputs_of(client.post(INFER, json=body))["probabilities"]
    np.testing.assert_allclose(got, classifier.predict_proba(flatten_and_scale(x)), atol=1e-6)


def test_infer_images_equals_v1_and_the_model(client: TestClient, classifier: Classifier, pngs: list[bytes]) -> None:
    files = [SEVEN, *pngs[:5]]
    response = client.post(INFER, json=image_request(files))
    probabilities = outputs_of(response)["probabilities"]
    np.testing.assert_allclose(probabilities, expected_for_images(classifier, files), atol=1e-6)
    v1 = client.post("/v1/predict/batch", files=[("files", (f"{i}.png", f, "image/png")) for i, f in enumerate(files)])
    np.testing.assert_allclose(probabilities, [p["probabilities"] for p in v1.json()["predictions"]], atol=1e-6)
    assert probabilities[0].argmax() == 7
    data_url = "data:image/png;base64," + base64.b64encode(SEVEN).decode()  # a data: URL is accepted too
    body = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [data_url]}]}
    assert outputs_of(client.post(INFER, json=body))["digit"].tolist() == [7]


@pytest.mark.parametrize(
    ("outputs", "names"),
    [
        ([{"name": "digit"}], ["digit"]),
        ([{"name": "probabilities"}], ["probabilities"]),
        ([{"name": "digit"}, {"name": "probabilities"}], ["digit", "probabilities"]),
        ([{"name": "is_digit"}, {"name": "digit"}], ["is_digit", "digit"]),
        ([], ["probabilities", "digit", "digit_score", "is_digit"]),
        (None, ["probabilities", "digit", "digit_score", "is_digit"]),
    ],
    ids=["digit", "probabilities", "both-in-order", "scorer-first", "empty-list", "absent"],
)
def test_requested_outputs_are_honoured(client: TestClient, outputs: Any, names: list[str]) -> None:
    body = image_request([SEVEN])
    if outputs is not None:
        body["outputs"] = outputs
    answer = client.post(INFER, json=body).json()
    assert [o["name"] for o in answer["outputs"]] == names and "id" not in answer


# the binary tensor extension --------------------------------------------------------------------------


@pytest.mark.parametrize("datatype", ["FP32", "UINT8"])
def test_binary_pixels_in_binary_and_json_out(
    client: TestClient, classifier: Classifier, digits: Any, datatype: str
) -> None:
    x = digits[0]
    raw = flatten_and_scale(x).tobytes() if datatype == "FP32" else x.tobytes()
    header = {
        "id": "b1",
        "inputs": [
            {
                "name": "pixels",
                "datatype": datatype,
                "shape": [16, 28, 28],
                "parameters": {"binary_data_size": len(raw)},
            }
        ],
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}, {"name": "digit"}],
    }
    content, headers = binary_body(header, raw)
    response = client.post(INFER, content=content, headers=headers)
    assert response.headers["content-type"] == "application/octet-stream"
    assert json.loads(response.content[: int(response.headers["inference-header-content-length"])])["id"] == "b1"
    outputs = outputs_of(response)
    np.testing.assert_allclose(outputs["probabilities"], classifier.predict_proba(flatten_and_scale(x)), atol=1e-6)
    assert outputs["digit"].tolist() == outputs["probabilities"].argmax(axis=1).tolist()


def test_binary_images_and_binary_data_output(client: TestClient, classifier: Classifier, pngs: list[bytes]) -> None:
    files = [SEVEN, *pngs[:3]]
    raw = b"".join(struct.pack("<I", len(f)) + f for f in files)  # BYTES: 4-byte little-endian length, then bytes
    header = {
        "inputs": [{"name": "image", "datatype": "BYTES", "shape": [4], "parameters": {"binary_data_size": len(raw)}}],
        "parameters": {"binary_data_output": True},  # every output in binary ...
        "outputs": [{"name": "probabilities"}, {"name": "digit", "parameters": {"binary_data": False}}],  # ... but this
    }
    content, headers = binary_body(header, raw)
    response = client.post(INFER, content=content, headers=headers)
    head = json.loads(response.content[: int(response.headers["inference-header-content-length"])])
    assert "data" not in head["outputs"][0] and head["outputs"][1]["data"][0] == 7
    outputs = outputs_of(response)
    np.testing.assert_allclose(outputs["probabilities"], expected_for_images(classifier, files), atol=1e-6)


def test_json_input_with_binary_output(client: TestClient, digits: Any) -> None:
    body = pixels_request(digits[0][:2])
    body["outputs"] = [{"name": "digit", "parameters": {"binary_data": True}}]
    response = client.post(INFER, json=body)
    assert int(response.headers["inference-header-content-length"]) == len(response.content) - 16
    assert outputs_of(response)["digit"].tolist() == digits[1][:2].tolist()


def test_row_caps_json_and_binary(client: TestClient, classifier: Classifier) -> None:
    """The largest tensors accepted: MAX_JSON_ROWS rows as JSON, MAX_ROWS rows in binary form."""
    x = np.random.default_rng(0).integers(0, 256, (MAX_ROWS, 28, 28), dtype=np.uint8)
    expected = classifier.predict_proba(flatten_and_scale(x))
    as_json = outputs_of(client.post(INFER, json=pixels_request(x[:MAX_JSON_ROWS])))["probabilities"]
    np.testing.assert_allclose(as_json, expected[:MAX_JSON_ROWS], atol=1e-6)
    raw = flatten_and_scale(x).tobytes()
    header = binary_pixels(len(raw), shape=[MAX_ROWS, 784]) | {
        "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}]
    }
    content, headers = binary_body(header, raw)
    np.testing.assert_allclose(
        outputs_of(client.post(INFER, content=content, headers=headers))["probabilities"], expected, atol=1e-6
    )


# compression --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "compress",
    [lambda b: gzip.compress(b), lambda b: zlib.compress(b), lambda b: zlib.compress(b)[2:-4]],
    ids=["gzip", "deflate", "raw-deflate"],
)
def test_compressed_requests(client: TestClient, classifier: Classifier, digits: Any, compress: Any) -> None:
    encoding = "gzip" if compress(b"x")[:2] == b"\x1f\x8b" else "deflate"
    content = compress(json.dumps(pixels_request(digits[0])).encode())
    response = client.post(INFER, content=content, headers={"Content-Encoding": encoding})
    expected = classifier.predict_proba(flatten_and_scale(digits[0]))
    np.testing.assert_allclose(outputs_of(response)["probabilities"], expected, atol=1e-6)


@pytest.mark.parametrize(
    ("accept", "encoding"),
    [("gzip", "gzip"), ("deflate", "deflate"), ("gzip;q=0, deflate", "deflate"), ("identity", None), ("br", None)],
)
def test_compressed_answers(client: TestClient, digits: Any, accept: str, encoding: str | None) -> None:
    response = client.post(INFER, json=pixels_request(digits[0][:1]), headers={"Accept-Encoding": accept})
    assert response.headers.get("content-encoding") == encoding  # and httpx has decoded the body by it:
    assert "accept-encoding" in response.headers["vary"].lower()
    assert response.json()["outputs"][1]["data"] == digits[1][:1].tolist()


# errors: 400 with a sentence that says what was expected -------------------------------------------------

PIXELS = {"name": "pixels", "datatype": "FP32", "shape": [1, 784], "data": [0] * 784}


def with_pixels(**changes: Any) -> dict[str, Any]:
    return {"inputs": [{**PIXELS, **changes}]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (with_pixels(datatype="FP64"), "expected FP32 (values in [0, 1]) or UINT8"),
        (with_pixels(shape=[1, 783], data=[0] * 783), "expected [N, 784] or [N, 28, 28]"),
        (with_pixels(shape=[784], data=[0] * 784), "expected [N, 784] or [N, 28, 28]"),
        (with_pixels(shape=[1, 28, 28, 1]), "expected [N, 784] or [N, 28, 28]"),
        (with_pixels(shape=[0, 784], data=[]), f"expected 1 to {MAX_ROWS}"),
        (with_pixels(shape=[MAX_ROWS + 1, 784]), f"expected 1 to {MAX_ROWS}"),
        (with_pixels(shape=[MAX_JSON_ROWS + 1, 784]), f"at most {MAX_JSON_ROWS} rows of pixels as JSON"),
        (with_pixels(shape=[MAX_JSON_ROWS + 1, 784], data=[0] * 784 * (MAX_JSON_ROWS + 1)), f"or up to {MAX_ROWS} in binary form"),
        (with_pixels(shape=[1, -784]), "list of non-negative integers"),
        (with_pixels(shape="1x784"), "list of non-negative integers"),
        (with_pixels(shape=[2, 784]), "holds 784 numbers; its shape needs 1568"),
        (with_pixels(data=[[0] * 700, [0] * 84]), "list of numbers"),  # ragged
        (with_pixels(data=[2.0] * 784), "values in [0, 1]"),
        (with_pixels(data=[-0.1] * 784), "values in [0, 1]"),
        (with_pixels(data=[0, 255, *[0] * 782]), "scale 0-255 pixels by 1/255 or send UINT8"),
        (with_pixels(datatype="UINT8", data=[300] * 784), "integers from 0 to 255"),
        (with_pixels(datatype="UINT8", data=[0.5] * 784), "integers from 0 to 255"),
        (with_pixels(data=["a"] * 784), "list of numbers"),
        (with_pixels(data=None), "list of 784 numbers"),
        (with_pixels(name="input0"), "Unknown input 'input0'; expected 'pixels' (FP32 [N, 784]) or 'image'"),
        (with_pixels(parameters=[1]), "Input 'pixels': 'parameters' must be an object"),
        ({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["not base64!"]}]}, "element 0 is not valid base64"),
        (image_request([b"hello"]), "element 0: The file is text, not an image"),
        (image_request([SEVEN, b""]), "element 1: The file is empty"),
        ({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": [0]}]}, "expected BYTES"),
        ({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1, 1], "data": ["AA=="]}]}, "expected [N]"),
        ({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2], "data": [base64.b64encode(SEVEN).decode()]}]}, "holds 1 elements; its shape [2] needs 2"),
        ({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": [7]}]}, "list of base64-encoded image files"),
        (image_request([SEVEN] * 65), "at most 64 are accepted"),
        ({"inputs": []}, "exactly one input tensor: 'pixels' or 'image'"),
        ({"inputs": [PIXELS, PIXELS]}, "exactly one input tensor"),
        ({}, "exactly one input tensor"),
        (with_pixels() | {"outputs": [{"name": "logits"}]}, "Unknown output 'logits'; expected one of 'probabilities', 'digit', 'digit_score', 'is_digit'"),
        (with_pixels() | {"outputs": [{"name": "digit", "parameters": {"classification": 3}}]}, "classification extension is not supported"),
        (with_pixels() | {"outputs": [{"name": "digit", "parameters": "binary"}]}, "Output 'digit': 'parameters' must be an object"),
        (with_pixels() | {"outputs": {"name": "digit"}}, "'outputs' must be a list"),
        (with_pixels() | {"parameters": []}, "The request: 'parameters' must be an object"),
        (with_pixels() | {"id": 42}, "'id' must be a string"),
        ([1, 2], "must be a JSON object"),
    ],
    ids=["datatype", "shape", "shape-1d", "shape-4d", "zero-rows", "too-many-rows", "json-rows", "json-values", "negative-dim", "shape-string",
         "count", "ragged", "over-1", "negative", "0-255-as-fp32", "uint8-range", "uint8-fraction", "not-numbers",
         "no-data", "input-name", "input-parameters", "base64", "not-an-image", "empty-image", "image-datatype",
         "image-shape", "image-count", "image-not-strings", "too-many-images", "no-inputs", "two-inputs",
         "empty-object", "output-name", "classification", "output-parameters", "outputs-not-list",
         "request-parameters", "id-not-string", "not-an-object"],
)  # fmt: skip
def test_bad_requests_are_400_with_a_sentence(client: TestClient, body: object, message: str) -> None:
    response = client.post(INFER, json=body)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"} and message in response.json()["error"], response.json()


RAW = np.zeros((1, 784), np.float32).tobytes()


def binary_pixels(size: Any, shape: list[int] | None = None, datatype: str = "FP32") -> dict[str, Any]:
    tensor = {
        "name": "pixels",
        "datatype": datatype,
        "shape": shape or [1, 784],
        "parameters": {"binary_data_size": size},
    }
    return {"inputs": [tensor]}


@pytest.mark.parametrize(
    ("header", "tail", "message"),
    [
        (binary_pixels(len(RAW) + 4), RAW, f"binary_data_size {len(RAW) + 4} does not fit the {len(RAW)} bytes left"),
        (binary_pixels(len(RAW)), RAW + b"xx", "2 bytes after the JSON header belong to no input"),
        (binary_pixels(len(RAW)), RAW[:-4], "does not fit"),
        (binary_pixels(len(RAW) - 4), RAW[:-4], "3132 bytes of binary data; shape [1, 784] of FP32 needs 3136"),
        (binary_pixels(784, datatype="UINT8"), b"\0" * 783 + b"\0", None),  # the right size for UINT8: fine
        (binary_pixels(len(RAW)), np.full((1, 784), 3.0, np.float32).tobytes(), "values in [0, 1]"),
        (binary_pixels(len(RAW)), np.full((1, 784), np.nan, np.float32).tobytes(), "values in [0, 1]"),
        (binary_pixels("3136"), RAW, "binary_data_size must be a non-negative integer, not '3136'"),
        ({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 3}}]}, b"\x05\0\0", "ends inside an element's length prefix"),
        ({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 6}}]}, b"\x05\0\0\0ab", "longer than the binary data that is left"),
        ({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": 6}}]}, b"\x02\0\0\0ab", "holds 1 elements; its shape [2] needs 2"),
    ],
    ids=["size-over-tail", "trailing-bytes", "short-tail", "wrong-byte-count", "uint8-ok", "out-of-range", "nan",
         "size-not-int", "bytes-cut-prefix", "bytes-cut-element", "bytes-count"],
)  # fmt: skip
def test_bad_binary_requests_are_400(
    client: TestClient, header: dict[str, Any], tail: bytes, message: str | None
) -> None:
    content, headers = binary_body(header, tail)
    response = client.post(INFER, content=content, headers=headers)
    if message is None:
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"} and message in response.json()["error"], response.json()


@pytest.mark.parametrize(
    ("content", "headers", "status", "message"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400, "not valid JSON"),
        (b"\xff\xfe", {}, 400, "not valid JSON"),
        (b"", {}, 400, "not valid JSON"),
        (b"{}", {"Inference-Header-Content-Length": "99"}, 400, "must be between 1 and the body size (2)"),
        (b"{}", {"Inference-Header-Content-Length": "-1"}, 400, "must be between 1 and the body size"),
        (b"{}", {"Content-Encoding": "br"}, 400, "Content-Encoding 'br' is not supported; send gzip, deflate"),
        (b"not gzip", {"Content-Encoding": "gzip"}, 400, "not complete gzip data"),
        (gzip.compress(b"{}")[:-6], {"Content-Encoding": "gzip"}, 400, "not complete gzip data"),
        (gzip.compress(b" " * 40_000_000), {"Content-Encoding": "gzip"}, 413, "over the 33,554,432-byte limit once decompressed"),
    ],
    ids=["malformed", "not-utf8", "empty", "header-too-long", "header-negative", "unknown-encoding", "not-gzip",
         "truncated-gzip", "gzip-bomb"],
)  # fmt: skip
def test_malformed_bodies(
    client: TestClient, content: bytes, headers: dict[str, str], status: int, message: str
) -> None:
    response = client.post(INFER, content=content, headers=headers)
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"} and message in response.json()["error"], response.json()


def test_body_over_the_cap_is_413_with_an_error(classifier: Classifier) -> None:
    with TestClient(create_app(Settings(max_batch_body_bytes=10_000), classifier)) as small:
        response = small.post(INFER, json=pixels_request(np.zeros((8, 784))))
    assert response.status_code == 413 and set(response.json()) == {"error"}


# the real client against a real server --------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running_server() as url:
        yield url.removeprefix("http://")


def test_tritonclient_status_and_metadata(server: str, classifier: Classifier) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(url=server)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("mnist-mlp") and client.is_model_ready("mnist-mlp", classifier.version)
    assert not client.is_model_ready("other") and not client.is_model_ready("mnist-mlp", "999")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    meta = client.get_model_metadata("mnist-mlp")
    assert meta["name"] == "mnist-mlp" and meta["versions"] == [classifier.version]
    assert meta["outputs"][0] == {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}
    assert meta["outputs"][3] == {"name": "is_digit", "datatype": "BOOL", "shape": [-1]}
    assert client.get_model_metadata("mnist-mlp", classifier.version) == meta
    with pytest.raises(InferenceServerException) as error:
        client.get_model_metadata("other")
    assert error.value.status() == "404" and "Unknown model 'other'" in error.value.message()


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_infer(
    server: str, classifier: Classifier, digits: tuple[np.ndarray, np.ndarray], pngs: list[bytes], binary: bool
) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(url=server)
    x, y = digits
    expected = classifier.predict_proba(flatten_and_scale(x))

    for array in (flatten_and_scale(x), flatten_and_scale(x).reshape(-1, 28, 28)):
        tensor = triton.InferInput("pixels", list(array.shape), "FP32")
        tensor.set_data_from_numpy(array, binary_data=binary)
        wanted = [triton.InferRequestedOutput("probabilities", binary_data=binary)]
        result = client.infer("mnist-mlp", [tensor], outputs=wanted, request_id="r1")
        np.testing.assert_allclose(result.as_numpy("probabilities"), expected, atol=1e-6)
        assert result.get_response()["id"] == "r1" and result.as_numpy("digit") is None  # only what was asked
        assert result.get_response()["model_version"] == classifier.version

    tensor = triton.InferInput("pixels", [len(x), 784], "UINT8")
    tensor.set_data_from_numpy(x.reshape(-1, 784), binary_data=binary)
    result = client.infer("mnist-mlp", [tensor], model_version=classifier.version)  # no outputs named: all, in binary
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, atol=1e-6)
    assert result.as_numpy("digit").tolist() == expected.argmax(axis=1).tolist()
    assert (result.as_numpy("digit") == y).mean() >= 0.9
    _, scores = classifier.predict(flatten_and_scale(x))  # the digit scorer's outputs, as the metadata lists them
    np.testing.assert_allclose(result.as_numpy("digit_score"), scores, atol=1e-6)  # type: ignore[arg-type]
    assert result.as_numpy("is_digit").dtype == np.bool_
    assert result.as_numpy("is_digit").tolist() == classifier.is_digit(scores).tolist()  # type: ignore[union-attr]

    # images: raw bytes in binary form; in JSON tritonclient sends str(bytes, "utf-8"), so base64 text
    files = [SEVEN, *pngs]
    images = np.array([f if binary else base64.b64encode(f) for f in files], dtype=np.object_)
    tensor = triton.InferInput("image", [len(files)], "BYTES")
    tensor.set_data_from_numpy(images, binary_data=binary)
    wanted = [triton.InferRequestedOutput(name, binary_data=binary) for name in ("digit", "probabilities")]
    result = client.infer("mnist-mlp", [tensor], outputs=wanted)
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected_for_images(classifier, files), atol=1e-6)
    v1 = httpx.post(
        f"http://{server}/v1/predict/batch",
        files=[("files", (f"{i}.png", f, "image/png")) for i, f in enumerate(files)],
    )
    assert result.as_numpy("digit").tolist() == [p["digit"] for p in v1.json()["predictions"]]
    assert result.as_numpy("digit")[0] == 7

    tensor = triton.InferInput("pixels", [1, 783], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 783), np.float32), binary_data=binary)
    with pytest.raises(InferenceServerException) as error:
        client.infer("mnist-mlp", [tensor])
    assert error.value.status() == "400" and "expected [N, 784] or [N, 28, 28]" in error.value.message()


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_tritonclient_compression(server: str, classifier: Classifier, digits: Any, algorithm: str) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=server)
    tensor = triton.InferInput("pixels", [16, 784], "FP32")
    tensor.set_data_from_numpy(flatten_and_scale(digits[0]))
    result = client.infer(
        "mnist-mlp", [tensor], request_compression_algorithm=algorithm, response_compression_algorithm=algorithm
    )
    np.testing.assert_allclose(
        result.as_numpy("probabilities"), classifier.predict_proba(flatten_and_scale(digits[0])), atol=1e-6
    )


# hostile JSON: 400 with the protocol's {error}, never a 500 -----------------------------------------

DEEP_OBJECT = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
DEEP_DATA = (
    b'{"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1, 784], "data": '
    + b"[" * 5000
    + b"]" * 5000
    + b"}]}"
)


def pixels_with_raw_data(values: str) -> bytes:
    """A pixels request whose `data` is the JSON text `values` (what json.dumps can't write)."""
    return (
        b'{"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1, 784], "data": [' + values.encode() + b"]}]}"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (DEEP_OBJECT, "not valid JSON (recursion limit exceeded"),
        (DEEP_DATA, "not valid JSON (recursion limit exceeded"),
        (b'{"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1], "parameters": ' + b'{"a":' * 300 + b"1" + b"}" * 300 + b"}]}", "not valid JSON"),
        (pixels_with_raw_data("1" * 400 + ", 0" * 783), "'data' must be a list of finite numbers"),
        (pixels_with_raw_data("1e400" + ", 0" * 783), "'data' must be a list of finite numbers"),
        (pixels_with_raw_data("-1e400" + ", 0" * 783), "'data' must be a list of finite numbers"),
        (pixels_with_raw_data("NaN" + ", 0" * 783), "'data' must be a list of finite numbers"),
        (pixels_with_raw_data("Infinity" + ", 0" * 783), "'data' must be a list of finite numbers"),
        (pixels_with_raw_data("true" + ", 0" * 783), "'data' must be a list of finite numbers"),
        (pixels_with_raw_data("null" + ", 0" * 783), "'data' must be a list of finite numbers"),
        (pixels_with_raw_data("{}" + ", 0" * 783), "'data' must be a list of finite numbers"),
        (pixels_with_raw_data("[[[[0]]]]" + ", 0" * 783), "'data' must be a list of finite numbers"),
        (pixels_with_raw_data("1e300" + ", 0" * 783), "values in [0, 1]"),
        (b'{"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1, ' + b"9" * 400 + b'], "data": [0]}]}', "expected [N, 784]"),
        (b'{"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [' + b"9" * 400 + b', 784]}]}', "expected 1 to 4096"),
        (b'{"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [true, 784], "data": [0]}]}', "'shape' must be a list of non-negative integers"),
        (b'{"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1.0, 784], "data": [0]}]}', "'shape' must be a list of non-negative integers"),
        (b'{"inputs": [{"name": 7, "datatype": "FP32", "shape": [1, 784]}]}', "'name' must be a string"),
        (b'{"inputs": [{"name": "pixels", "datatype": ["FP32"], "shape": [1, 784]}]}', "'datatype' must be a string"),
        (b'{"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1, 784], "parameters": {"binary_data_size": 1e3}}]}', "binary_data_size must be a non-negative integer"),
        (b'{"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1, 784], "parameters": {"binary_data_size": true}}]}', "binary_data_size must be a non-negative integer"),
        (b'{"inputs": "pixels"}', "'inputs' must list exactly one input tensor"),
        (b'{"inputs": [7]}', "'inputs' must list exactly one input tensor"),
        (b'{"inputs": null}', "'inputs' must list exactly one input tensor"),
        (b'{"id": ["x"], "inputs": []}', "'id' must be a string"),
        (b'"just a string"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b"12", "must be a JSON object"),
    ],
    ids=["object-50000-deep", "data-5000-deep", "parameters-300-deep", "integer-400-digits", "1e400", "-1e400", "NaN",
         "Infinity", "true-as-fp32", "null-as-fp32", "object-as-fp32", "data-too-deep-for-a-shape", "1e300-as-fp32",
         "huge-dimension", "huge-rows", "bool-dimension", "float-dimension", "name-not-string", "datatype-not-string",
         "binary-size-float", "binary-size-bool", "inputs-string", "inputs-number", "inputs-null", "id-list",
         "string-body", "null-body", "number-body"],
)  # fmt: skip
def test_hostile_json_is_400_with_an_error(client: TestClient, content: bytes, message: str) -> None:
    response = client.post(INFER, content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text[:500]
    assert set(response.json()) == {"error"} and message in response.json()["error"], response.json()


def test_hostile_json_in_binary_requests_and_compressed_bodies_is_400(client: TestClient) -> None:
    _, headers = binary_body({"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1, 784]}]}, RAW)
    deep = DEEP_OBJECT + RAW
    headers["Inference-Header-Content-Length"] = str(len(DEEP_OBJECT))
    response = client.post(INFER, content=deep, headers=headers)
    assert response.status_code == 400 and "recursion limit exceeded" in response.json()["error"]
    response = client.post(INFER, content=gzip.compress(DEEP_DATA), headers={"Content-Encoding": "gzip"})
    assert response.status_code == 400 and "recursion limit exceeded" in response.json()["error"]
