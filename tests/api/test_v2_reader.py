"""The reader on /v2 (`mnist-reader`, issue 34 item 4): metadata, readiness, the repository, inference in
JSON and in Triton's binary extension, requested outputs and errors, by hand and with the real
`tritonclient[http]` against a real server.

Segmentation is still being tuned, so exact text is asserted only for easy numbers: MNIST digits the
model reads right, side by side with wide gaps. Everything else asserts structure."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from typing import Any

import httpx2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.answers import ReadDigit, Reading
from app.api.v2.routes import reading_results
from app.config import Settings
from app.contract import flatten_and_scale
from app.main import create_app
from app.model.classifier import Classifier
from tests.conftest import SEVEN, png, running_server

READER = "/v2/models/mnist-reader"
INFER = f"{READER}/infer"
OUTPUTS = [
    {"name": "text", "datatype": "BYTES", "shape": [-1]},
    {"name": "confidence", "datatype": "FP32", "shape": [-1]},
    {"name": "digits", "datatype": "INT64", "shape": [-1, -1]},
]


def number(digits: np.ndarray, gap: int = 28) -> bytes:
    """MNIST digits (K, 28, 28) side by side, `gap` pixels apart, dark on light, as a PNG."""
    count = len(digits)
    canvas = np.zeros((28 + 2 * gap, count * 28 + (count + 1) * gap), np.uint8)
    for k, pixels in enumerate(digits):
        left = gap + k * (28 + gap)
        canvas[gap : gap + 28, left : left + 28] = pixels
    return png(255 - canvas)


@pytest.fixture(scope="module")
def numbers(sample: tuple[np.ndarray, np.ndarray], classifier: Classifier) -> list[tuple[bytes, str]]:
    """Two easy numbers of different lengths (3 and 5 digits) and their text: sample digits that the
    model classifies right and confidently, so that only the cutting is tested."""
    x, y = sample
    probabilities = classifier.predict_proba(flatten_and_scale(x[:200]))
    easy = [i for i in range(200) if probabilities[i].argmax() == y[i] and probabilities[i].max() > 0.99]
    picks = [easy[:3], easy[3:8]]
    return [(number(x[i]), "".join(str(y[j]) for j in i)) for i in map(np.array, picks)]


@pytest.fixture(scope="module")
def client(classifier: Classifier) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(), classifier)) as c:
        yield c


def image_request(files: list[bytes], **extra: Any) -> dict[str, Any]:
    data = [base64.b64encode(f).decode() for f in files]
    return {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [len(files)], "data": data}], **extra}


def unpack_bytes(raw: bytes) -> list[bytes]:
    """Triton's BYTES serialisation, read independently of the server's codec."""
    elements, offset = [], 0
    while offset < len(raw):
        (length,) = struct.unpack_from("<I", raw, offset)
        elements.append(raw[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return elements


def outputs_of(response: httpx2.Response) -> dict[str, Any]:
    """Each output by name: `text` as a list of str, the others as arrays, from JSON or binary data."""
    assert response.status_code == 200, response.text
    length = response.headers.get("inference-header-content-length")
    header = json.loads(response.content[: int(length)] if length else response.content)
    tail, out = response.content[int(length) :] if length else b"", {}
    for output in header["outputs"]:
        size = (output.get("parameters") or {}).get("binary_data_size")
        if output["datatype"] == "BYTES":
            out[output["name"]] = (
                [e.decode() for e in unpack_bytes(tail[:size])] if size is not None else output["data"]
            )
        else:
            dtype = {"FP32": np.float32, "INT64": np.int64}[output["datatype"]]
            values = np.frombuffer(tail[:size], dtype) if size is not None else np.array(output["data"], dtype)
            out[output["name"]] = values.reshape(output["shape"])
        tail = tail[size or 0 :]
    return out


def check_readings(outputs: dict[str, Any], texts: list[str]) -> None:
    """The three outputs agree with each other and read `texts`; `digits` is -1 padded."""
    assert outputs["text"] == texts
    width = max(len(t) for t in texts)
    assert outputs["digits"].shape == (len(texts), width) and outputs["digits"].dtype == np.int64
    for row, text in zip(outputs["digits"].tolist(), texts, strict=True):
        assert row == [int(c) for c in text] + [-1] * (width - len(text))
    assert outputs["confidence"].shape == (len(texts),) and outputs["confidence"].dtype == np.float32
    assert np.all((outputs["confidence"] > 0.5) & (outputs["confidence"] <= 1.0))


def reading(lines: list[str]) -> Reading:
    """A Reading of `lines`, its digits listed bottom line first (the outputs must not depend on that order)."""
    digits = [
        ReadDigit(int(c), 0.9, np.full(10, 0.1, np.float32), None, None, (10 * i, 30 * n, 8, 20), n, None)
        for n, line in reversed(list(enumerate(lines)))
        for i, c in enumerate(line)
    ]
    return Reading("\n".join(lines), 0.9 ** len(digits), digits, [], [], "v")


@pytest.mark.parametrize(
    ("lines", "texts", "rows"),
    [
        ([["12", "345"], ["6"]], ["12\n345", "6"], [[1, 2, 3, 4, 5], [6, -1, -1, -1, -1]]),
        ([[], []], ["", ""], [[], []]),  # no digits at all (only marks): D is 0
    ],
    ids=["lines-flattened-and-padded", "no-digits"],
)
def test_reading_results(lines: list[list[str]], texts: list[str], rows: list[list[int]]) -> None:
    results = reading_results([reading(line) for line in lines])
    assert results["text"].tolist() == [t.encode() for t in texts] and results["text"].dtype == np.object_
    assert results["digits"].tolist() == rows and results["digits"].shape == (len(rows), len(rows[0]))
    assert results["confidence"].dtype == np.float32


# status, metadata and the repository --------------------------------------------------------------


def test_metadata_and_readiness(client: TestClient, classifier: Classifier) -> None:
    for path in (READER, f"{READER}/versions/{classifier.version}"):
        meta = client.get(path).json()
        assert meta["name"] == "mnist-reader" and meta["versions"] == [classifier.version] and meta["platform"]
        assert meta["inputs"] == [{"name": "image", "datatype": "BYTES", "shape": [-1]}]
        assert meta["outputs"] == OUTPUTS
        assert meta["loaded_at"] == client.get("/v2/models/mnist-mlp").json()["loaded_at"]
    assert client.get(f"{READER}/ready").json() == {"name": "mnist-reader", "ready": True}
    assert client.get(f"{READER}/versions/{classifier.version}/ready").status_code == 200
    for response in (
        client.get(f"{READER}/versions/999"),
        client.get(f"{READER}/versions/999/ready"),
        client.post(f"{READER}/versions/999/infer", json=image_request([SEVEN])),
    ):
        assert response.status_code == 404 and "'mnist-reader'" in response.json()["error"], response.text


def test_not_ready_is_503() -> None:
    client = TestClient(create_app(Settings()))  # the lifespan never runs: no model
    ready = client.get(f"{READER}/ready")
    assert ready.status_code == 503 and ready.json() == {"name": "mnist-reader", "ready": False}
    for response in (client.get(READER), client.post(INFER, json=image_request([SEVEN]))):
        assert response.status_code == 503 and set(response.json()) == {"error"}, response.text


def test_the_repository_lists_both_models_with_one_version(client: TestClient, classifier: Classifier) -> None:
    entries = [
        {"name": name, "version": classifier.version, "state": "READY", "reason": ""}
        for name in ("mnist-mlp", "mnist-reader")
    ]
    assert client.post("/v2/repository/index").json() == entries
    assert client.post("/v2/repository/index", json={"ready": True}).json() == entries
    # the reader shares the classifier's weights: loading it reloads them (the same files: nothing to do)
    assert client.post("/v2/repository/models/mnist-reader/load").status_code == 200
    assert client.post("/v2/repository/models/mnist-reader/load", content=b"{}").status_code == 200  # tritonclient's
    assert client.post("/v2/repository/index").json() == entries


# inference ----------------------------------------------------------------------------------------


def test_infer_reads_numbers_of_different_lengths(
    client: TestClient, classifier: Classifier, numbers: list[tuple[bytes, str]]
) -> None:
    files, texts = [f for f, _ in numbers], [t for _, t in numbers]
    response = client.post(f"{READER}/versions/{classifier.version}/infer", json=image_request(files, id="r-1"))
    answer = response.json()
    assert answer["model_name"] == "mnist-reader" and answer["model_version"] == classifier.version
    assert answer["id"] == "r-1" and [o["name"] for o in answer["outputs"]] == ["text", "confidence", "digits"]
    assert answer["outputs"][2]["shape"] == [2, 5] and answer["outputs"][0]["datatype"] == "BYTES"
    check_readings(outputs_of(response), texts)
    single = outputs_of(client.post(INFER, json=image_request([SEVEN])))
    assert single["text"] == ["7"] and single["digits"].tolist() == [[7]]


@pytest.mark.parametrize(
    ("wanted", "names"),
    [
        ([{"name": "text"}], ["text"]),
        ([{"name": "digits"}, {"name": "confidence"}], ["digits", "confidence"]),
        ([], ["text", "confidence", "digits"]),  # an empty list means all of them
    ],
    ids=["text", "two-in-their-order", "empty"],
)
def test_requested_outputs_are_honoured(
    client: TestClient, numbers: list[tuple[bytes, str]], wanted: list[dict[str, str]], names: list[str]
) -> None:
    response = client.post(INFER, json=image_request([numbers[0][0]], outputs=wanted))
    assert [o["name"] for o in response.json()["outputs"]] == names


def test_binary_input_and_outputs(client: TestClient, numbers: list[tuple[bytes, str]]) -> None:
    files, texts = [f for f, _ in numbers], [t for _, t in numbers]
    raw = b"".join(struct.pack("<I", len(f)) + f for f in files)
    header = {
        "inputs": [{"name": "image", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": len(raw)}}],
        "outputs": [
            {"name": "text", "parameters": {"binary_data": True}},
            {"name": "digits"},
            {"name": "confidence", "parameters": {"binary_data": True}},
        ],
    }
    head = json.dumps(header).encode()
    response = client.post(
        INFER,
        content=head + raw,
        headers={"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(head))},
    )
    assert response.headers["content-type"] == "application/octet-stream"
    answer = json.loads(response.content[: int(response.headers["inference-header-content-length"])])
    assert "data" not in answer["outputs"][0] and "data" in answer["outputs"][1]  # text binary, digits JSON
    check_readings(outputs_of(response), texts)
    every = {"parameters": {"binary_data_output": True}}  # the request's default for all outputs
    check_readings(outputs_of(client.post(INFER, json=image_request(files, **every))), texts)


def test_gzip_answers(client: TestClient, numbers: list[tuple[bytes, str]]) -> None:
    response = client.post(INFER, json=image_request([numbers[0][0]]), headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip" and outputs_of(response)["text"] == [numbers[0][1]]


BLANK = png(np.full((64, 64), 255, np.uint8))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["%%%"]}]}, "not valid base64"),
        (image_request([b"not an image at all"]), "Input 'image' element 0:"),
        (image_request([SEVEN, BLANK]), "Input 'image' element 1:"),
        (image_request([SEVEN] * 65), "at most 64"),
        ({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": [1.0]}]}, "expected BYTES"),
        ({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2], "data": ["AA=="]}]}, "needs 2"),
        (
            {"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1, 784], "data": [0.0] * 784}]},
            "expected 'image' (BYTES [N])",
        ),
        (
            image_request([SEVEN], outputs=[{"name": "probabilities"}]),
            "expected one of 'text', 'confidence', 'digits'",
        ),
        ({"inputs": []}, "exactly one input"),
    ],
    ids=[
        "bad-base64",
        "garbage-bytes",
        "blank-image",
        "too-many",
        "datatype",
        "count",
        "pixels",
        "classifier-output",
        "no-input",
    ],
)
def test_bad_requests_are_400_with_an_error(client: TestClient, body: dict[str, Any], message: str) -> None:
    response = client.post(INFER, json=body)
    assert response.status_code == 400 and set(response.json()) == {"error"}, response.text
    assert message in response.json()["error"]


def test_unknown_models_are_404_with_an_error(client: TestClient) -> None:
    for response in (
        client.get("/v2/models/mnist-readers"),
        client.get("/v2/models/reader/ready"),
        client.post("/v2/models/reader/infer", json=image_request([SEVEN])),
        client.post("/v2/repository/models/reader/load"),
    ):
        assert response.status_code == 404 and set(response.json()) == {"error"}, response.text
    assert "'mnist-mlp' and 'mnist-reader'" in client.get("/v2/models/reader").json()["error"]


# the real client against a real server --------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running_server() as url:
        yield url.removeprefix("http://")


def test_tritonclient_status_metadata_and_repository(server: str, classifier: Classifier) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(url=server)
    assert client.is_model_ready("mnist-reader") and client.is_model_ready("mnist-reader", classifier.version)
    assert not client.is_model_ready("mnist-reader", "999")
    meta = client.get_model_metadata("mnist-reader")
    assert meta["name"] == "mnist-reader" and meta["versions"] == [classifier.version]
    assert meta["inputs"] == [{"name": "image", "datatype": "BYTES", "shape": [-1]}] and meta["outputs"] == OUTPUTS
    index = client.get_model_repository_index()
    assert {(e["name"], e["state"]) for e in index} == {("mnist-mlp", "READY"), ("mnist-reader", "READY")}
    client.load_model("mnist-reader")  # the same files: nothing to do, 200
    with pytest.raises(InferenceServerException) as error:
        client.get_model_metadata("reader")
    assert error.value.status() == "404" and "Unknown model 'reader'" in error.value.message()


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_infer(
    server: str, classifier: Classifier, numbers: list[tuple[bytes, str]], binary: bool
) -> None:
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    client = triton.InferenceServerClient(url=server)
    files, texts = [f for f, _ in numbers], [t for _, t in numbers]
    # raw bytes in binary form; in JSON tritonclient sends str(bytes, "utf-8"), so base64 text
    images = np.array([f if binary else base64.b64encode(f) for f in files], dtype=np.object_)
    tensor = triton.InferInput("image", [len(files)], "BYTES")
    tensor.set_data_from_numpy(images, binary_data=binary)

    result = client.infer("mnist-reader", [tensor], request_id="r1")  # no outputs named: all, in binary
    assert result.get_response()["model_version"] == classifier.version and result.get_response()["id"] == "r1"
    outputs = {
        "text": [t.decode() for t in result.as_numpy("text").tolist()],
        "confidence": result.as_numpy("confidence"),
        "digits": result.as_numpy("digits"),
    }
    check_readings(outputs, texts)

    wanted = [triton.InferRequestedOutput(name, binary_data=binary) for name in ("text", "digits")]
    result = client.infer("mnist-reader", [tensor], outputs=wanted, model_version=classifier.version)
    text = result.as_numpy("text")
    assert text is not None and text.dtype == np.object_
    assert [t.decode() if binary else t for t in text.tolist()] == texts  # JSON BYTES come back as str
    assert result.as_numpy("digits").shape == (2, 5) and result.as_numpy("confidence") is None

    garbage = np.array([b"garbage" if binary else base64.b64encode(b"garbage")], dtype=np.object_)
    tensor = triton.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(garbage, binary_data=binary)
    with pytest.raises(InferenceServerException) as error:
        client.infer("mnist-reader", [tensor])
    assert error.value.status() == "400" and "Input 'image' element 0" in error.value.message()
    with pytest.raises(InferenceServerException) as error:
        client.infer("reader", [tensor])
    assert error.value.status() == "404"
