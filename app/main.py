"""The ASGI app: `uvicorn app.main:app`. create_app() builds it; the lifespan loads the model and starts
the engines. Wiring only: what each part does is in its own module (see app/__init__.py)."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from app.api import demo, health
from app.api.deps import State
from app.api.errors import install_error_handlers
from app.api.middleware.limits import BodyLimitMiddleware, ConcurrencyLimitMiddleware, InFlight
from app.api.middleware.observability import RequestContextMiddleware
from app.api.middleware.security import ApiKeyMiddleware, load_api_keys
from app.api.policy import body_cap
from app.api.v1 import read as v1_read
from app.api.v1 import routes as v1
from app.api.v2 import repository
from app.api.v2 import routes as v2
from app.config import Settings
from app.dataplane import DataPlane
from app.logs import configure_logging
from app.metrics import observe_evaluation, set_model_info
from app.model.classifier import Classifier
from app.model.keras_file import ModelLoadError

if TYPE_CHECKING:
    from app.api.grpc.server import GrpcServer

log = logging.getLogger("app")

DESCRIPTION = """Handwritten-digit recognition: upload a photo, scan or drawing of a digit and get the
probability of each of the ten digits from a Keras MLP trained on MNIST.

Every error is JSON: `{"detail": "<one sentence>", "code": "<stable machine-readable code>"}` (on the
Open Inference Protocol's /v2 routes, `{"error": "<one sentence>"}`)."""


def create_app(settings: Settings | None = None, classifier: Classifier | None = None) -> FastAPI:
    """Build the app; `classifier` skips loading the model file (tests share one)."""
    settings = settings or Settings()
    keys = load_api_keys(settings)
    in_flight = InFlight(settings.max_in_flight)  # one cap for REST and gRPC

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[State]:
        configure_logging(settings.log_level, settings.log_format)
        try:
            dataplane = await DataPlane.load(settings, observe_evaluation, classifier)
        except ModelLoadError as exc:
            log.critical("cannot start: %s", exc)
            raise
        served = dataplane.classifier
        set_model_info(served)
        log.info(
            "serving model",
            extra={"fields": {"model": str(served.path), "sha256": served.sha256, "version": served.version,
                              "settings": settings.model_dump(mode="json")}},
        )  # fmt: skip
        # Everything alive now lives as long as the server: frozen, garbage collections skip it. (With
        # MNIST_CHECK_WITH_KERAS, Keras leaves hundreds of thousands of objects, which every full
        # collection would walk, stalling the requests in flight.)
        gc.collect()
        gc.freeze()
        dataplane.watch()
        grpc_server = await start_grpc(dataplane, settings, in_flight, keys, app.version)
        yield {"dataplane": dataplane}  # from here on /readyz answers 200
        if grpc_server is not None:
            await grpc_server.stop()
        await dataplane.close()

    app = FastAPIOffline(
        title="mnist-service",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        static_url="/docs-assets",  # Swagger UI's and ReDoc's assets, served by the app: no CDN
    )
    app.state.settings = settings
    install_error_handlers(app)
    # add_middleware wraps: the last added is the outermost. Outer to inner: request IDs, metrics and
    # logs (they see every answer), CORS (preflights answered before auth), in-flight cap, API keys, body cap.
    app.add_middleware(
        BodyLimitMiddleware,
        limit_for=lambda policy: body_cap(policy, settings),
        idle_timeout=settings.body_timeout_s,
        total_timeout=settings.body_deadline_s,
    )
    app.add_middleware(ApiKeyMiddleware, keys=keys, scope=settings.auth_scope)
    app.add_middleware(ConcurrencyLimitMiddleware, in_flight=in_flight)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "Inference-Header-Content-Length"],
        )
    app.add_middleware(RequestContextMiddleware)
    app.include_router(v1.router)
    app.include_router(v1_read.router)
    app.include_router(health.router)
    app.include_router(v2.router)
    app.include_router(repository.router)
    demo.install_demo(app)
    return app


async def start_grpc(
    dataplane: DataPlane, settings: Settings, in_flight: InFlight, keys: list[bytes], version: str
) -> GrpcServer | None:
    """The gRPC server on MNIST_GRPC_PORT, serving; None when the port is 0."""
    if not settings.grpc_port:
        return None
    # Imported only to serve: its protobuf package `inference` is also tritonclient's and KServe's, and one
    # process (a test's, a client's) can hold only one of them.
    from app.api.grpc.server import GrpcServer

    server = GrpcServer(dataplane, settings, in_flight, keys, version)
    await server.start()
    return server


app = create_app()
