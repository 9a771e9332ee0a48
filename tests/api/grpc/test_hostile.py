"""The issue's hostile messages against a real server of its own: truncated protobuf, wrong types, shapes
that disagree with the data, 10^6 tiny tensors, a 64 MiB string. Each gets a clean status code (never
UNKNOWN or INTERNAL), the server stays up and answers, and its RSS stays flat over rounds of them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from tritonclient.grpc import service_pb2 as pb

from tests.api.grpc.conftest import GrpcServerURL, grpc_server

Code = grpc.StatusCode
ZEROS = np.zeros((1, 784), np.float32).tobytes()
MIB = 2**20


def tensor(
    name: str = "pixels", datatype: str = "FP32", shape: tuple[int, ...] = (1, 784)
) -> pb.ModelInferRequest.InferInputTensor:
    return pb.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=shape)


def infer(*inputs: pb.ModelInferRequest.InferInputTensor, raw: list[bytes] | None = None) -> bytes:
    request = pb.ModelInferRequest(model_name="mnist-mlp", inputs=inputs, raw_input_contents=raw or [])
    return request.SerializeToString()


VALID = infer(tensor(), raw=[ZEROS])
# model_name (field 1) as a varint, not a string: protobuf keeps it as an unknown field, so no model is named
WRONG_WIRE_TYPE = b"\x08\x01" + pb.ModelInferRequest(inputs=[tensor()], raw_input_contents=[ZEROS]).SerializeToString()
HOSTILE: dict[str, tuple[bytes, set[Code]]] = {
    "truncated": (VALID[:-7], {Code.INVALID_ARGUMENT}),
    "truncated inside a length": (VALID[:3], {Code.INVALID_ARGUMENT}),
    "garbage": (b"\xff" * 64, {Code.INVALID_ARGUMENT}),
    "wrong wire type": (WRONG_WIRE_TYPE, {Code.NOT_FOUND}),
    "wrong datatype": (infer(tensor(datatype="BOOL"), raw=[ZEROS]), {Code.INVALID_ARGUMENT}),
    "BYTES pixels": (infer(tensor(datatype="BYTES"), raw=[ZEROS]), {Code.INVALID_ARGUMENT}),
    "FP32 image": (infer(tensor("image", "FP32", (1,)), raw=[ZEROS]), {Code.INVALID_ARGUMENT}),
    "shape disagrees with the data": (infer(tensor(shape=(3, 784)), raw=[ZEROS]), {Code.INVALID_ARGUMENT}),
    "shape of 2^62 rows": (infer(tensor(shape=(2**62, 784)), raw=[ZEROS]), {Code.INVALID_ARGUMENT}),
    "image count disagrees": (
        infer(tensor("image", "BYTES", (5,)), raw=[b"\x01\x00\x00\x00a"]),
        {Code.INVALID_ARGUMENT},
    ),
    "10^6 tiny tensors": (infer(*[tensor(shape=(1,))] * 1_000_000), {Code.INVALID_ARGUMENT}),
    "a 64 MiB string": (
        pb.ModelInferRequest(model_name="m" * (64 * MIB)).SerializeToString(),
        {Code.RESOURCE_EXHAUSTED},
    ),
    "a 64 MiB image": (infer(tensor("image", "BYTES", (1,)), raw=[b"\0" * (64 * MIB)]), {Code.RESOURCE_EXHAUSTED}),
}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[GrpcServerURL, grpc.Channel]]:
    with (
        grpc_server() as server,
        grpc.insecure_channel(server.grpc, options=[("grpc.max_send_message_length", -1)]) as channel,
    ):
        yield server, channel


def call(channel: grpc.Channel, message: bytes, method: str = "ModelInfer") -> Code:
    """Send `message` as it is; the status code it gets."""
    try:
        channel.unary_unary(f"/inference.GRPCInferenceService/{method}")(message, timeout=60)
    except grpc.RpcError as error:
        return error.code()  # type: ignore[attr-defined, no-any-return]
    return Code.OK


def rss_mib(pid: int) -> float:
    kib = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    assert kib is not None
    return int(kib.group(1)) / 1024


@pytest.mark.parametrize(("message", "codes"), HOSTILE.values(), ids=HOSTILE.keys())
def test_each_gets_a_clean_status_code_and_the_server_still_answers(
    served: tuple[GrpcServerURL, grpc.Channel], message: bytes, codes: set[Code]
) -> None:
    _, channel = served
    assert call(channel, message) in codes
    assert call(channel, VALID) == Code.OK


def test_malformed_messages_to_every_call_are_invalid_argument(served: tuple[GrpcServerURL, grpc.Channel]) -> None:
    _, channel = served
    for method in ("ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "RepositoryIndex"):
        assert call(channel, b"\xff" * 16, method) == Code.INVALID_ARGUMENT, method


def test_rounds_of_them_leave_the_rss_flat(served: tuple[GrpcServerURL, grpc.Channel]) -> None:
    server, channel = served
    after = []
    for _ in range(4):
        for message, codes in HOSTILE.values():
            assert call(channel, message) in codes
        assert call(channel, VALID) == Code.OK
        after.append(rss_mib(server.pid))
    # a leak of the 10^6 tensors (19 MB on the wire) or of the 64 MiB strings would add that much every
    # round; allocator noise after the first round stays well under it
    print(f"RSS after each round: {[round(a) for a in after]} MiB")
    assert after[-1] - after[0] < 32, f"RSS after each round: {after} MiB"
