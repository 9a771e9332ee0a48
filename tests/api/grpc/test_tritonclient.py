"""The Open Inference Protocol over gRPC against a real server: tritonclient.grpc for every call, and
Triton's own protos (tritonclient.grpc.service_pb2) for what the client does not send: typed `contents`,
malformed messages. Answers are checked against the model and against REST /v2."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from app.model.classifier import Classifier
from app.preprocessing import preprocess
from tests.api.grpc.conftest import GrpcServerURL, image_input, pixels_input, status_of
from tests.conftest import SEVEN, png

Code = grpc.StatusCode


@pytest.fixture(scope="module")
def client(server: GrpcServerURL) -> Iterator[triton.InferenceServerClient]:
    with triton.InferenceServerClient(server.grpc) as c:
        yield c


@pytest.fixture(scope="module")
def stub(server: GrpcServerURL) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(server.grpc) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


@pytest.fixture(scope="module")
def digits(sample: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return sample[0][:8], sample[1][:8]


# status and metadata ------------------------------------------------------------------------------


def test_status_and_metadata(client: triton.InferenceServerClient, classifier: Classifier) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("mnist-mlp") and client.is_model_ready("mnist-reader", classifier.version)
    server = client.get_server_metadata(as_json=True)
    assert server["name"] == "mnist-service" and "binary_tensor_data" in server["extensions"]
    meta = client.get_model_metadata("mnist-mlp", as_json=True)
    assert meta["versions"] == [classifier.version] and meta["platform"] == "keras_numpy"
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [
        ("pixels", "FP32", ["-1", "784"]),
        ("image", "BYTES", ["-1"]),
    ]
    assert [t["name"] for t in meta["outputs"]] == ["probabilities", "digit", "digit_score", "is_digit"]
    reader = client.get_model_metadata("mnist-reader", classifier.version, as_json=True)
    assert [t["name"] for t in reader["outputs"]] == ["text", "confidence", "digits"]


def test_metadata_equals_rest(client: triton.InferenceServerClient, server: GrpcServerURL) -> None:
    for name in ("mnist-mlp", "mnist-reader"):
        rest = httpx.get(f"{server}/v2/models/{name}").json()
        meta = client.get_model_metadata(name, as_json=True)
        assert meta["versions"] == rest["versions"]  # (`properties`, with loaded_at, is not in Triton's proto)
        for kind in ("inputs", "outputs"):
            grpc_tensors = [(t["name"], t["datatype"], [int(d) for d in t["shape"]]) for t in meta[kind]]
            assert grpc_tensors == [(t["name"], t["datatype"], t["shape"]) for t in rest[kind]]


def test_repository_index_and_load(client: triton.InferenceServerClient, classifier: Classifier) -> None:
    index = client.get_model_repository_index(as_json=True)["models"]
    assert {(m["name"], m["version"], m["state"]) for m in index} == {
        ("mnist-mlp", classifier.version, "READY"),
        ("mnist-reader", classifier.version, "READY"),
    }
    client.load_model("mnist-reader")  # the files already served: nothing to do, and no error
    assert client.is_model_ready("mnist-mlp", classifier.version)


# inference ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [None, [-1, 28, 28]], ids=["N,784", "N,28,28"])
def test_pixels_equal_the_model(
    client: triton.InferenceServerClient, classifier: Classifier, digits: Any, shape: list[int] | None
) -> None:
    x, y = digits
    result = client.infer("mnist-mlp", [pixels_input(x, shape and [len(x), 28, 28])], request_id="r1")
    expected = classifier.predict_proba(x.reshape(len(x), 784).astype(np.float32) / 255)
    assert np.allclose(result.as_numpy("probabilities"), expected, atol=1e-5)
    assert result.as_numpy("digit").tolist() == y.tolist()
    assert result.as_numpy("is_digit").dtype == np.bool_ and result.as_numpy("digit_score").shape == (len(x),)
    response = result.get_response()
    assert response.id == "r1" and response.model_version == classifier.version


def test_images_equal_rest_and_the_model(
    client: triton.InferenceServerClient, server: GrpcServerURL, classifier: Classifier, digits: Any
) -> None:
    files = [png(pixels) for pixels in digits[0]] + [SEVEN]
    result = client.infer("mnist-mlp", [image_input(files)], outputs=[triton.InferRequestedOutput("probabilities")])
    expected = classifier.predict_proba(np.concatenate([preprocess(f).model_input for f in files]))
    assert np.allclose(result.as_numpy("probabilities"), expected, atol=1e-5)
    assert result.as_numpy("digit") is None  # only what was asked for
    rest = httpx.post(f"{server}/v1/predict/batch", files=[("files", f) for f in files]).json()
    assert [p["digit"] for p in rest["predictions"]] == expected.argmax(axis=1).tolist()


def test_reader(client: triton.InferenceServerClient, server: GrpcServerURL) -> None:
    result = client.infer("mnist-reader", [image_input([SEVEN, SEVEN])])
    assert result.as_numpy("text").tolist() == [b"7", b"7"]
    assert result.as_numpy("digits").tolist() == [[7], [7]]
    rest = httpx.post(f"{server}/v1/read", files={"file": SEVEN}).json()
    assert np.isclose(result.as_numpy("confidence")[0], rest["confidence"], atol=1e-5)


def infer_request(tensor: pb.ModelInferRequest.InferInputTensor, **fields: Any) -> pb.ModelInferRequest:
    return pb.ModelInferRequest(model_name=fields.pop("model_name", "mnist-mlp"), inputs=[tensor], **fields)


def outputs_of(response: pb.ModelInferResponse) -> dict[str, np.ndarray]:
    """Each output as an array, from typed contents (the server's default when the input was typed)."""
    assert not response.raw_output_contents
    arrays = {}
    for output in response.outputs:
        contents = output.contents
        values = {
            "FP32": contents.fp32_contents, "INT64": contents.int64_contents, "BOOL": contents.bool_contents,
            "BYTES": contents.bytes_contents,
        }[output.datatype]  # fmt: skip
        arrays[output.name] = np.array(list(values)).reshape(list(output.shape))
    return arrays


def test_typed_contents_in_and_out(stub: Any, classifier: Classifier, digits: Any) -> None:
    x, y = digits
    rows = x.reshape(len(x), 784)
    fp32 = pb.InferTensorContents(fp32_contents=(rows / 255.0).astype(np.float32).ravel().tolist())
    tensor = pb.ModelInferRequest.InferInputTensor(name="pixels", datatype="FP32", shape=[len(x), 784], contents=fp32)
    arrays = outputs_of(stub.ModelInfer(infer_request(tensor, id="typed")))
    assert np.allclose(arrays["probabilities"], classifier.predict_proba(rows.astype(np.float32) / 255), atol=1e-5)
    assert arrays["digit"].tolist() == y.tolist()
    uint8 = pb.InferTensorContents(uint_contents=rows.ravel().tolist())
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="pixels", datatype="UINT8", shape=[len(x), 28, 28], contents=uint8
    )
    assert outputs_of(stub.ModelInfer(infer_request(tensor)))["digit"].tolist() == y.tolist()
    images = pb.InferTensorContents(bytes_contents=[SEVEN, png(x[0])])
    tensor = pb.ModelInferRequest.InferInputTensor(name="image", datatype="BYTES", shape=[2], contents=images)
    assert outputs_of(stub.ModelInfer(infer_request(tensor)))["digit"].tolist() == [7, y[0]]
    read = outputs_of(stub.ModelInfer(infer_request(tensor, model_name="mnist-reader")))
    assert read["text"].tolist() == [b"7", str(y[0]).encode()]


def test_binary_output_is_asked_for_or_follows_the_input(stub: Any, digits: Any) -> None:
    rows = (digits[0].reshape(-1, 784) / 255.0).astype(np.float32)
    typed = pb.ModelInferRequest.InferInputTensor(
        name="pixels",
        datatype="FP32",
        shape=[len(rows), 784],
        contents=pb.InferTensorContents(fp32_contents=rows.ravel()),
    )
    raw = pb.ModelInferRequest.InferInputTensor(name="pixels", datatype="FP32", shape=[len(rows), 784])
    asked = infer_request(typed)
    asked.parameters["binary_data_output"].bool_param = True
    answer = stub.ModelInfer(asked)
    assert len(answer.raw_output_contents) == 4 and not answer.outputs[0].contents.fp32_contents
    digits_out = np.frombuffer(answer.raw_output_contents[1], np.int64)
    assert digits_out.tolist() == digits[1].tolist()
    from_raw = stub.ModelInfer(infer_request(raw, raw_input_contents=[rows.tobytes()]))
    assert from_raw.raw_output_contents == answer.raw_output_contents
    refused = infer_request(raw, raw_input_contents=[rows.tobytes()])
    refused.parameters["binary_data_output"].bool_param = False
    assert outputs_of(stub.ModelInfer(refused))["digit"].tolist() == digits[1].tolist()


# errors -------------------------------------------------------------------------------------------


def raw_pixels(shape: list[int], data: bytes, datatype: str = "FP32", **fields: Any) -> pb.ModelInferRequest:
    tensor = pb.ModelInferRequest.InferInputTensor(name="pixels", datatype=datatype, shape=shape)
    return infer_request(tensor, raw_input_contents=[data], **fields)


ZEROS = np.zeros((1, 784), np.float32).tobytes()
BAD_REQUESTS = {
    "unknown model": (pb.ModelInferRequest(model_name="nope"), Code.NOT_FOUND, "Unknown model 'nope'"),
    "unknown version": (raw_pixels([1, 784], ZEROS, model_version="0"), Code.NOT_FOUND, "Unknown version '0'"),
    "no input": (pb.ModelInferRequest(model_name="mnist-mlp"), Code.INVALID_ARGUMENT, "exactly one input"),
    "two inputs": (
        pb.ModelInferRequest(model_name="mnist-mlp", inputs=[raw_pixels([1, 784], ZEROS).inputs[0]] * 2),
        Code.INVALID_ARGUMENT,
        "exactly one input",
    ),
    "unknown input": (
        infer_request(pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[1])),
        Code.INVALID_ARGUMENT,
        "Unknown input 'x'",
    ),
    "bad shape": (raw_pixels([1, 783], ZEROS), Code.INVALID_ARGUMENT, "expected [N, 784] or [N, 28, 28]"),
    "negative shape": (raw_pixels([-1, 784], ZEROS), Code.INVALID_ARGUMENT, "non-negative"),
    "shape disagrees with the data": (raw_pixels([2, 784], ZEROS), Code.INVALID_ARGUMENT, "needs 6272"),
    "bad datatype": (raw_pixels([1, 784], ZEROS, "INT32"), Code.INVALID_ARGUMENT, "datatype 'INT32'"),
    "out of range": (
        raw_pixels([1, 784], np.full((1, 784), 255, np.float32).tobytes()),
        Code.INVALID_ARGUMENT,
        "values in [0, 1]",
    ),
    "NaN": (raw_pixels([1, 784], np.full((1, 784), np.nan, np.float32).tobytes()), Code.INVALID_ARGUMENT, "[0, 1]"),
    "too many raw contents": (
        pb.ModelInferRequest(
            model_name="mnist-mlp", inputs=raw_pixels([1, 784], ZEROS).inputs, raw_input_contents=[ZEROS] * 2
        ),
        Code.INVALID_ARGUMENT,
        "raw_input_contents",
    ),
    "typed values in the wrong field": (
        infer_request(
            pb.ModelInferRequest.InferInputTensor(
                name="pixels", datatype="FP32", shape=[1, 784], contents=pb.InferTensorContents(int_contents=[0] * 784)
            )
        ),
        Code.INVALID_ARGUMENT,
        "contents.fp32_contents",
    ),
    "typed count disagrees": (
        infer_request(
            pb.ModelInferRequest.InferInputTensor(
                name="pixels", datatype="FP32", shape=[2, 784], contents=pb.InferTensorContents(fp32_contents=[0] * 784)
            )
        ),
        Code.INVALID_ARGUMENT,
        "needs 1568",
    ),
    "undecodable image": (
        infer_request(
            pb.ModelInferRequest.InferInputTensor(
                name="image", datatype="BYTES", shape=[1], contents=pb.InferTensorContents(bytes_contents=[b"GIF89a"])
            )
        ),
        Code.INVALID_ARGUMENT,
        "Input 'image' element 0",
    ),
    "truncated BYTES": (
        infer_request(
            pb.ModelInferRequest.InferInputTensor(name="image", datatype="BYTES", shape=[1]),
            raw_input_contents=[b"\xff\x00\x00\x00abc"],
        ),
        Code.INVALID_ARGUMENT,
        "longer than the binary data",
    ),
    "pixels to the reader": (
        raw_pixels([1, 784], ZEROS, model_name="mnist-reader"),
        Code.INVALID_ARGUMENT,
        "Unknown input",
    ),
    "unknown output": (
        raw_pixels([1, 784], ZEROS, outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="logits")]),
        Code.INVALID_ARGUMENT,
        "Unknown output 'logits'",
    ),
}


@pytest.mark.parametrize(("request_", "code", "message"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_requests_get_their_status_code(stub: Any, request_: Any, code: Code, message: str) -> None:
    got, details = status_of(lambda: stub.ModelInfer(request_))
    assert got == code and message in details, details


def test_unknown_models_in_every_call(client: triton.InferenceServerClient) -> None:
    for call in (
        lambda: client.is_model_ready("nope"),
        lambda: client.get_model_metadata("nope"),
        lambda: client.get_model_metadata("mnist-mlp", "0"),
        lambda: client.load_model("nope"),
    ):
        assert status_of(call)[0] == Code.NOT_FOUND


def call_raw(server: GrpcServerURL, method: str, message: bytes, timeout: float = 30) -> tuple[Code, str]:
    """Send `message` as it is (not necessarily a valid protobuf message) to `method`."""
    with grpc.insecure_channel(server.grpc, options=[("grpc.max_send_message_length", -1)]) as channel:
        call = channel.unary_unary(f"/inference.GRPCInferenceService/{method}")
        return status_of(lambda: call(message, timeout=timeout))


def test_malformed_and_oversized_messages(server: GrpcServerURL) -> None:
    whole = raw_pixels([1, 784], ZEROS).SerializeToString()
    assert call_raw(server, "ModelInfer", whole[:-7])[0] == Code.INVALID_ARGUMENT  # truncated
    assert call_raw(server, "ModelInfer", b"\xff" * 64)[0] == Code.INVALID_ARGUMENT
    big = raw_pixels([1, 784], b"\0" * (32 * 1024 * 1024 + 1)).SerializeToString()  # over MNIST_MAX_BATCH_BODY_BYTES
    assert call_raw(server, "ModelInfer", big)[0] == Code.RESOURCE_EXHAUSTED
    with triton.InferenceServerClient(server.grpc) as client:
        assert client.is_server_live()  # still up


def test_many_tiny_tensors_are_refused(server: GrpcServerURL) -> None:
    tensor = pb.ModelInferRequest.InferInputTensor(name="pixels", datatype="FP32", shape=[1])
    request = pb.ModelInferRequest(model_name="mnist-mlp", inputs=[tensor] * 200_000)
    assert call_raw(server, "ModelInfer", request.SerializeToString())[0] == Code.INVALID_ARGUMENT


# observability ------------------------------------------------------------------------------------


def test_request_id_is_echoed_and_calls_are_counted(server: GrpcServerURL, stub: Any) -> None:
    _, call = stub.ServerMetadata.with_call(pb.ServerMetadataRequest(), metadata=[("x-request-id", "abc-123")])
    assert ("x-request-id", "abc-123") in call.trailing_metadata()
    _, call = stub.ServerMetadata.with_call(pb.ServerMetadataRequest(), metadata=[("x-request-id", "bad id!")])
    given = dict(call.trailing_metadata())["x-request-id"]
    assert len(given) == 32 and given != "bad id!"  # replaced, never echoed raw
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(pb.ModelInferRequest(model_name="nope"), metadata=[("x-request-id", "e-1")])
    assert ("x-request-id", "e-1") in caught.value.trailing_metadata()  # type: ignore[attr-defined]
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(httpx.get(f"{server}/metrics").text)
        for sample in family.samples
    }
    route = "/inference.GRPCInferenceService"

    def counted(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted({"protocol": "grpc", **labels}.items()))), 0.0)

    assert counted("mnist_http_requests_total", method="POST", route=f"{route}/ServerMetadata", status="OK") >= 2
    assert counted("mnist_http_requests_total", method="POST", route=f"{route}/ModelInfer", status="NOT_FOUND") >= 1
    assert counted("mnist_http_requests_in_flight") == 0
