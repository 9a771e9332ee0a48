"""The ASGI app: `uvicorn app.main:app`. create_app() builds it; the model loads in the lifespan."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from app.batching import Batcher
from app.config import Settings
from app.errors import install_error_handlers
from app.inference import Classifier, ModelLoadError
from app.limits import BodyLimitMiddleware, ConcurrencyLimitMiddleware
from app.observability import RequestContextMiddleware, configure_logging, observe_inference, set_model_info
from app.routes import demo, docs, health, predict, v2
from app.security import ApiKeyMiddleware, load_api_keys

log = logging.getLogger("app")

DESCRIPTION = """Handwritten-digit recognition: upload a photo, scan or drawing of a digit and get the
probability of each of the ten digits from a Keras MLP trained on MNIST.

Every error is JSON: `{"detail": "<one sentence>", "code": "<stable machine-readable code>"}`."""


def create_app(settings: Settings | None = None, classifier: Classifier | None = None) -> FastAPI:
    """Build the app; `classifier` skips loading the model file (tests share one)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, settings.log_format)
        try:
            loaded = classifier
            if loaded is None:
                loaded = await run_in_threadpool(
                    Classifier.load, settings.model_path, settings.verify_model_sha256, settings.check_with_keras
                )
        except ModelLoadError as exc:
            log.critical("cannot start: %s", exc)
            raise
        loaded.observer = observe_inference
        set_model_info(loaded.metadata.get("name", "mnist-mlp"), loaded.version, loaded.sha256)
        log.info(
            "serving model",
            extra={"fields": {"model": str(loaded.path), "sha256": loaded.sha256, "version": loaded.version,
                              "settings": settings.model_dump(mode="json")}},
        )  # fmt: skip
        batcher = Batcher(loaded, settings.batch_max_size, settings.batch_max_wait_ms / 1000)
        await batcher.start(settings.engine_processes, settings.engine_timeout_s)
        app.state.batcher = batcher
        # Everything alive now lives as long as the server: frozen, garbage collections skip it. (With
        # MNIST_CHECK_WITH_KERAS, Keras leaves ~300,000 objects: each full collection walked them in
        # ~120 ms, stalling every request in flight.)
        gc.collect()
        gc.freeze()
        app.state.classifier = loaded  # from here on /readyz answers 200
        yield
        app.state.classifier = None
        await app.state.batcher.close()
        app.state.batcher = None

    app = FastAPI(
        title="mnist-service",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.classifier = None
    app.state.batcher = None
    install_error_handlers(app)
    # add_middleware wraps: the last added is the outermost. Outer to inner: request IDs, metrics and
    # logs (they see every answer), CORS (preflights answered before auth), in-flight cap, API keys, body cap.
    app.add_middleware(
        BodyLimitMiddleware,
        limit_for=lambda path: (
            settings.max_batch_body_bytes if path.endswith(("/batch", "/infer")) else settings.max_body_bytes
        ),
        idle_timeout=settings.body_timeout_s,
        total_timeout=settings.body_deadline_s,
    )
    app.add_middleware(ApiKeyMiddleware, keys=load_api_keys(settings), scope=settings.auth_scope)
    app.add_middleware(ConcurrencyLimitMiddleware, max_in_flight=settings.max_in_flight)
    if settings.cors_origins:
        origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "Inference-Header-Content-Length"],
        )
    app.add_middleware(RequestContextMiddleware)
    app.include_router(predict.router)
    app.include_router(health.router)
    v2.install_v2(app)
    docs.install_docs(app)
    demo.install_demo(app)
    return app


app = create_app()
