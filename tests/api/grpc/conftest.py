"""Fixtures of the gRPC tests: a real server (`python -m app`) with gRPC on a free loopback port.

The tests' clients are tritonclient.grpc and raw calls with Triton's protos (tritonclient.grpc.service_pb2),
which are wire-compatible with the server's. The server's own stubs are never imported here: they, Triton's
and KServe's all define the protobuf package `inference`, and one process can hold only one of them (so
KServe's client runs in a process of its own, test_kserve.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

from tests.conftest import ServerURL, free_port, running_server


class GrpcServerURL(ServerURL):
    """A running server's REST base URL, which also knows its gRPC address (host:port)."""

    grpc: str


@contextmanager
def grpc_server(env: dict[str, str] | None = None) -> Iterator[GrpcServerURL]:
    """`python -m app` with gRPC on a free port; yields once /readyz answers (gRPC serves by then)."""
    port = free_port()
    with running_server({"MNIST_GRPC_PORT": str(port), **(env or {})}) as url:
        served = GrpcServerURL(url)
        served.pid, served.grpc = url.pid, f"127.0.0.1:{port}"
        yield served


@pytest.fixture(scope="package")
def server() -> Iterator[GrpcServerURL]:
    """One server for the package's tests that leave it as it was."""
    with grpc_server() as served:
        yield served


def pixels_input(x: np.ndarray, shape: list[int] | None = None) -> triton.InferInput:
    values = (x / 255.0).astype(np.float32).reshape(shape or [len(x), 784])
    tensor = triton.InferInput("pixels", list(values.shape), "FP32")
    return tensor.set_data_from_numpy(values)


def image_input(files: list[bytes]) -> triton.InferInput:
    tensor = triton.InferInput("image", [len(files)], "BYTES")
    return tensor.set_data_from_numpy(np.array(files, dtype=np.object_))


def status_of(call: Any) -> tuple[grpc.StatusCode, str]:
    """The status code and details of a call that must fail."""
    with pytest.raises((grpc.RpcError, InferenceServerException)) as caught:
        call()
    error = caught.value
    if isinstance(error, InferenceServerException):
        return getattr(grpc.StatusCode, error.status().removeprefix("StatusCode.")), error.message()
    return error.code(), error.details()  # type: ignore[attr-defined]
