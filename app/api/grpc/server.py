"""The gRPC server: a grpc.aio server in the same process and event loop as uvicorn (as MLServer's and
KServe's run theirs beside their REST app), serving GRPCInferenceService over the same data plane as
REST /v2, and grpc.health.v1 (Kubernetes' `grpc` probe) following readiness. The lifespan starts it once
the data plane serves and stops it before the data plane closes."""

from __future__ import annotations

import logging
import os

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from app.api.grpc.interceptors import CallInterceptor
from app.api.grpc.proto import open_inference_grpc_pb2_grpc as pb_grpc
from app.api.grpc.servicer import InferenceServicer
from app.api.middleware.limits import InFlight
from app.config import Settings
from app.dataplane import DataPlane

log = logging.getLogger("app")
SERVICE_NAME = "inference.GRPCInferenceService"
STOP_GRACE_S = 5.0  # calls in progress get this long to finish when the server stops


def listen_address(settings: Settings) -> str:
    """host:port to bind: MNIST_GRPC_HOST, else REST's host (`python -m app` reads HOST), and MNIST_GRPC_PORT."""
    host = settings.grpc_host or os.environ.get("HOST", "127.0.0.1")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"{host}:{settings.grpc_port}"


def workers() -> int:
    """uvicorn's worker processes (WEB_CONCURRENCY, as `python -m app` reads it)."""
    return int(os.environ.get("WEB_CONCURRENCY", "1") or "1")


class GrpcServer:
    """GRPCInferenceService and the health service on MNIST_GRPC_HOST:MNIST_GRPC_PORT."""

    def __init__(
        self, dataplane: DataPlane, settings: Settings, in_flight: InFlight, keys: list[bytes], version: str
    ) -> None:
        self.address = listen_address(settings)
        # Workers each bind the port, and the kernel spreads connections over them; one alone does not
        # share it, so that a second server on the same port is an error rather than half the traffic.
        options = [
            ("grpc.so_reuseport", 1 if workers() > 1 else 0),
            ("grpc.max_receive_message_length", settings.max_batch_body_bytes),
        ]
        interceptor = CallInterceptor(in_flight, keys, settings.auth_scope)
        self.server = grpc.aio.server(interceptors=[interceptor], options=options)
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(dataplane, settings, version), self.server)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = 0

    async def start(self) -> None:
        """Bind and serve; RuntimeError when the address cannot be bound."""
        self.port = self.server.add_insecure_port(self.address)
        await self.server.start()
        for service in ("", SERVICE_NAME):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        log.info("serving gRPC", extra={"fields": {"address": self.address, "port": self.port}})

    async def stop(self, grace: float = STOP_GRACE_S) -> None:
        """NOT_SERVING first (probes see it), then refuse new calls and give those in progress `grace` seconds."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
