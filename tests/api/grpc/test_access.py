"""gRPC's access rules against real servers: API keys in metadata, the in-flight cap shared with REST,
the client's deadline, the health service following readiness, and every worker serving the port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.mmap_dict import MmapedDict
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc
from tritonclient.utils import InferenceServerException

from tests.api.grpc.conftest import grpc_server, image_input, status_of
from tests.conftest import SEVEN, png

Code = grpc.StatusCode
KEY = "k-0123456789"


def test_api_keys(tmp_path: Path) -> None:
    with grpc_server({"MNIST_API_KEYS": KEY}) as server, triton.InferenceServerClient(server.grpc) as client:
        assert client.is_server_live() and client.is_server_ready()  # probes stay open
        client.get_server_metadata()  # as REST's GET /v2 is open in auth scope "inference"
        seven = [image_input([SEVEN])]
        assert status_of(lambda: client.infer("mnist-mlp", seven))[0] == Code.UNAUTHENTICATED
        wrong = {"authorization": "Bearer nope"}
        assert status_of(lambda: client.infer("mnist-mlp", seven, headers=wrong))[0] == Code.UNAUTHENTICATED
        assert status_of(lambda: client.load_model("mnist-mlp"))[0] == Code.UNAUTHENTICATED
        assert status_of(lambda: client.get_model_metadata("mnist-mlp"))[0] == Code.UNAUTHENTICATED
        for headers in ({"authorization": f"Bearer {KEY}"}, {"x-api-key": KEY}):
            assert client.infer("mnist-mlp", seven, headers=headers).as_numpy("digit").tolist() == [7]
        with grpc.insecure_channel(server.grpc) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING


def held_rest_request(url: str) -> socket.socket:
    """A REST upload whose body never finishes arriving: a request in flight until the socket closes."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\nabc")
    return sock


def test_the_in_flight_cap_is_shared_with_rest_and_the_deadline_is_honoured() -> None:
    env = {"MNIST_MAX_IN_FLIGHT": "1", "MNIST_ENGINE_PROCESSES": "1"}
    with grpc_server(env) as server, triton.InferenceServerClient(server.grpc) as client:
        seven = [image_input([SEVEN])]
        sock = held_rest_request(server)
        try:
            for _ in range(100):  # until the server has read the REST request's headers: then it is in flight
                try:
                    client.infer("mnist-mlp", seven)
                except InferenceServerException:
                    break
                threading.Event().wait(0.05)
            code, details = status_of(lambda: client.infer("mnist-mlp", seven))
            assert code == Code.UNAVAILABLE and "limit of 1 requests in flight" in details
            assert client.is_server_ready()  # probes are not counted
        finally:
            sock.close()
        for _ in range(50):  # the REST request ends once its connection closes
            try:
                assert client.infer("mnist-mlp", seven).as_numpy("digit").tolist() == [7]
                break
            except Exception:
                threading.Event().wait(0.05)
        else:
            pytest.fail("the cap was not released")
        # a batch that takes far longer to decode than the deadline allows: the server gives up at the deadline
        # (a 9 MP page with a ring on it: 25 KB that take an engine tens of ms to decode; the message arrives
        # well within the deadline even on a loaded machine, so the call reaches the server and is counted)
        y, x = np.mgrid[:3000, :3000]
        ring = png(np.where(np.abs(np.hypot(y - 1500, x - 1500) - 750) < 150, 0, 255).astype(np.uint8))
        slow = [image_input([ring] * 64)]
        assert status_of(lambda: client.infer("mnist-mlp", slow, client_timeout=0.15))[0] == Code.DEADLINE_EXCEEDED
        for _ in range(200):
            lines = httpx.get(f"{server}/metrics").text.splitlines()
            if any("ModelInfer" in line and "DEADLINE_EXCEEDED" in line for line in lines):
                break
            threading.Event().wait(0.05)
        else:
            pytest.fail("the server did not record the deadline")


def test_health_follows_readiness_to_not_serving_at_shutdown() -> None:
    with grpc_server({"MNIST_ENGINE_PROCESSES": "0"}) as server, grpc.insecure_channel(server.grpc) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service="inference.GRPCInferenceService")
        assert health.Check(request).status == health_pb2.HealthCheckResponse.SERVING
        watch = health.Watch(request, timeout=30)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        os.kill(server.pid, signal.SIGTERM)
        statuses = []
        with contextlib.suppress(grpc.RpcError):  # the stream ends when the server goes, once it has said so
            for update in watch:
                statuses.append(update.status)
        assert statuses[:1] == [health_pb2.HealthCheckResponse.NOT_SERVING]


def pids_with_grpc_calls(directory: Path) -> set[int]:
    """The PIDs of the workers whose metrics files count gRPC calls (prometheus_client's multiprocess files)."""
    pids = set()
    for path in directory.glob("counter_*.db"):
        values = MmapedDict.read_all_values_from_file(str(path))
        if any('"grpc"' in key and "ServerMetadata" in key and value > 0 for key, value, *_ in values):
            pids.add(int(path.stem.split("_")[-1]))
    return pids


def test_every_worker_serves_the_port(tmp_path: Path) -> None:
    env = {"WEB_CONCURRENCY": "2", "MNIST_ENGINE_PROCESSES": "1", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    with grpc_server(env) as server:
        # a new connection each time: the kernel spreads them over the workers' sockets, once both workers
        # serve (the server is ready when one is: the other may still be loading the model)
        deadline = time.monotonic() + 60
        while len(pids := pids_with_grpc_calls(tmp_path)) < 2 and time.monotonic() < deadline:
            for _ in range(10):
                with grpc.insecure_channel(server.grpc) as channel:
                    pb_grpc.GRPCInferenceServiceStub(channel).ServerMetadata(pb.ServerMetadataRequest(), timeout=10)
    assert len(pids) == 2 and server.pid not in pids, pids


def test_a_port_in_use_stops_a_lone_worker() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match="exited"), grpc_server({"MNIST_GRPC_PORT": str(port)}):
            pass
