"""The gRPC part of `make docker-smoke` and `make k8s-smoke`: call a running container or pod over the Open
Inference Protocol's gRPC as its clients do, with tritonclient.grpc, and ask grpc.health.v1 what Kubernetes'
`grpc` probe asks. Run from the host's venv (the dev extra has tritonclient[grpc] and grpcio-health-checking):

    .venv/bin/python deploy/grpc-smoke.py 127.0.0.1:18082 tests/data/seven.png 7

Checks: health SERVING for the whole server ("", what the probe asks) and for inference.GRPCInferenceService;
ServerLive, ServerReady and ModelReady; ModelInfer on the PNG as a BYTES `image` tensor answers `digit` ==
the expected digit. Prints one line per check; exits 1 at the first that fails.
"""

from __future__ import annotations

import sys
import time

import grpc
import numpy as np
import tritonclient.grpc as triton
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.utils import InferenceServerException

MODEL = "mnist-mlp"
SERVICE = "inference.GRPCInferenceService"


def fail(message: str) -> None:
    print(f"FAIL: gRPC: {message}", file=sys.stderr)
    sys.exit(1)


def health(address: str, wait_s: float = 30.0) -> None:
    """SERVING for "" and the inference service; waits up to `wait_s` for the port (it opens with /readyz)."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + wait_s
        for service in ("", SERVICE):
            while True:
                try:
                    status = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2).status
                    break
                except grpc.RpcError as exc:
                    if time.monotonic() > deadline:
                        fail(f"health check of {service!r} on {address}: {exc.code().name} {exc.details()}")
                    time.sleep(0.5)
            name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
            if name != "SERVING":
                fail(f"health of {service!r} is {name}, not SERVING")
            print(f"grpc.health.v1 Check({service!r}): SERVING")


def infer(address: str, png: bytes, expected: int) -> None:
    client = triton.InferenceServerClient(address)
    if not (client.is_server_live() and client.is_server_ready() and client.is_model_ready(MODEL)):
        fail("ServerLive, ServerReady or ModelReady is false")
    tensor = triton.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([png], dtype=np.object_))
    result = client.infer(MODEL, [tensor], outputs=[triton.InferRequestedOutput("digit")], client_timeout=30)
    digits = result.as_numpy("digit")
    if digits is None or digits.tolist() != [expected]:
        fail(f"ModelInfer answered digit {None if digits is None else digits.tolist()}, expected [{expected}]")
    print(f"tritonclient.grpc ModelInfer({MODEL}, image PNG as BYTES): digit {expected}")
    client.close()


def main() -> None:
    if len(sys.argv) != 4:
        fail("usage: grpc-smoke.py HOST:PORT IMAGE.png EXPECTED_DIGIT")
    address, path, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(path, "rb") as file:
        png = file.read()
    health(address)
    try:
        infer(address, png, expected)
    except InferenceServerException as exc:
        fail(f"{exc.status()} {exc.message()}")


if __name__ == "__main__":
    main()
