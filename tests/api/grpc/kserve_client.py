"""KServe's InferenceGRPCClient against a real server. Run by test_kserve.py in a pytest process of its
own (this file's name keeps the main run from collecting it): KServe's protos define the protobuf package
`inference`, as tritonclient's do, and one process can hold only one of them. The server's gRPC address
is in MNIST_TEST_GRPC, its REST base URL in MNIST_TEST_URL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import httpx
import numpy as np
import pytest
from kserve import InferenceGRPCClient, InferInput, InferRequest, InferResponse
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

from tests.conftest import SEVEN, load_sample, png

ADDRESS = os.environ.get("MNIST_TEST_GRPC", "")
URL = os.environ.get("MNIST_TEST_URL", "")
T = TypeVar("T")
pytestmark = pytest.mark.skipif(not ADDRESS, reason="run by test_kserve.py, with a server")


def run(call: Callable[[InferenceGRPCClient], Awaitable[T]]) -> T:
    """`call` with a client of its own, on an event loop of its own (KServe's client is grpc.aio's)."""

    async def main() -> T:
        client = InferenceGRPCClient(ADDRESS, timeout=30, retries=0)
        try:
            return await call(client)
        finally:
            await client.close()

    return asyncio.run(main())


def infer(model: str, tensor: InferInput) -> InferResponse:
    return run(lambda client: client.infer(InferRequest(model_name=model, infer_inputs=[tensor])))


def outputs(response: InferResponse) -> dict[str, np.ndarray]:
    return {output.name: output.as_numpy() for output in response.outputs}


def test_status() -> None:
    assert run(lambda client: client.is_server_live())
    assert run(lambda client: client.is_server_ready())
    assert run(lambda client: client.is_model_ready("mnist-mlp"))
    assert run(lambda client: client.is_model_ready("mnist-reader"))


def test_metadata_and_load_with_kserve_protos() -> None:
    version = httpx.get(f"{URL}/v2/models/mnist-mlp").json()["versions"][0]
    with grpc.insecure_channel(ADDRESS) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        assert stub.ServerMetadata(pb.ServerMetadataRequest()).name == "mnist-service"
        meta = stub.ModelMetadata(pb.ModelMetadataRequest(name="mnist-mlp"))
        assert list(meta.versions) == [version]
        loaded = stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="mnist-reader"))  # field 1
        assert loaded.model_name == "mnist-reader" and loaded.isLoaded
        with pytest.raises(grpc.RpcError) as caught:
            stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="nope"))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]


@pytest.mark.parametrize("binary", [True, False], ids=["raw", "typed"])
def test_pixels(binary: bool) -> None:
    x, y = load_sample()
    rows = (x[:8].reshape(8, 784) / 255.0).astype(np.float32)
    if binary:
        tensor = InferInput("pixels", [8, 784], "FP32")
        tensor.set_data_from_numpy(rows, binary_data=True)
    else:
        tensor = InferInput("pixels", [8, 784], "FP32", data=rows.ravel().tolist())
    answer = outputs(infer("mnist-mlp", tensor))
    assert answer["digit"].tolist() == y[:8].tolist()
    assert answer["probabilities"].shape == (8, 10) and answer["is_digit"].dtype == np.bool_


@pytest.mark.parametrize("binary", [True, False], ids=["raw", "typed"])
def test_images_and_the_reader(binary: bool) -> None:
    x, y = load_sample()
    files = [SEVEN, png(x[0])]
    if binary:
        tensor = InferInput("image", [2], "BYTES")
        tensor.set_data_from_numpy(np.array(files, dtype=np.object_), binary_data=True)
    else:
        tensor = InferInput("image", [2], "BYTES", data=files)
    assert outputs(infer("mnist-mlp", tensor))["digit"].tolist() == [7, y[0]]
    read = outputs(infer("mnist-reader", tensor))
    assert [bytes(t) for t in read["text"].tolist()] == [b"7", str(y[0]).encode()]


@pytest.mark.parametrize(
    ("model", "tensor", "code"),
    [
        ("nope", InferInput("pixels", [1, 784], "FP32", data=[0.0] * 784), grpc.StatusCode.NOT_FOUND),
        ("mnist-mlp", InferInput("pixels", [1, 783], "FP32", data=[0.0] * 783), grpc.StatusCode.INVALID_ARGUMENT),
        ("mnist-mlp", InferInput("image", [1], "BYTES", data=[b"no image"]), grpc.StatusCode.INVALID_ARGUMENT),
    ],
    ids=["unknown model", "bad shape", "undecodable image"],
)
def test_errors(model: str, tensor: InferInput, code: Any) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        infer(model, tensor)
    assert caught.value.code() == code  # type: ignore[attr-defined]
