"""Request IDs, one structured log line per request, and Prometheus metrics (multi-worker safe)."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

disable_created_metrics()  # the *_created series only add noise to every counter and histogram
access_log = logging.getLogger("app.access")
REQUEST_ID_HEADER = "x-request-id"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")  # anything else is replaced, never logged raw
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

HTTP_REQUESTS = Counter("mnist_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "mnist_http_request_duration_seconds", "HTTP request latency", ["method", "route"], buckets=LATENCY_BUCKETS
)
IN_FLIGHT = Gauge("mnist_http_requests_in_flight", "HTTP requests being served", multiprocess_mode="livesum")
INFERENCE_LATENCY = Histogram(
    "mnist_inference_duration_seconds", "Model evaluation time per call", buckets=LATENCY_BUCKETS
)
INFERENCE_BATCH = Histogram("mnist_inference_batch_size", "Images per model call", buckets=BATCH_BUCKETS)
PREDICTIONS = Counter("mnist_predictions_total", "Predictions made, by predicted digit", ["digit"])
PREDICTED = [PREDICTIONS.labels(str(digit)) for digit in range(10)]  # labels() costs more than inc()
# Info metrics don't exist in multiprocess mode; a gauge fixed at 1 with the labels is the usual stand-in.
MODEL_INFO = Gauge("mnist_model_info", "The served model", ["name", "version", "sha256"], multiprocess_mode="max")


def observe_inference(batch_size: int, seconds: float, probabilities: np.ndarray) -> None:
    """Record one model call: its latency, its batch size and the digits it predicted."""
    INFERENCE_LATENCY.observe(seconds)
    INFERENCE_BATCH.observe(batch_size)
    for digit in probabilities.argmax(axis=1).tolist():
        PREDICTED[digit].inc()


def set_model_info(name: str, version: str, sha256: str) -> None:
    MODEL_INFO.labels(name, version, sha256).set(1)


def metrics_response(request: Request) -> Response:
    """The Prometheus text format; merges every worker's samples when PROMETHEUS_MULTIPROC_DIR is set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class RequestContextMiddleware:
    """Give every request an ID (the client's X-Request-ID if sane, else a new one), echo it in the
    response, count and time the request by route template, and log one JSON line for it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = given if given and VALID_REQUEST_ID.match(given) else os.urandom(16).hex()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            IN_FLIGHT.dec()
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in HTTP_METHODS else "other"  # bounded label values
            key = (method, route, status)
            if (children := self._children.get(key)) is None:  # labels() is slow-ish: resolve each once
                children = self._children[key] = (
                    HTTP_REQUESTS.labels(key[0], route, str(status)),
                    HTTP_LATENCY.labels(key[0], route),
                )
            children[0].inc()
            children[1].observe(seconds)
            if access_log.isEnabledFor(logging.INFO):
                fields = {
                    "request_id": request_id,
                    "method": scope["method"],
                    "route": route,
                    "path": scope["path"],
                    "status": status,
                    "latency_ms": round(seconds * 1000, 3),
                    **state.get("log_fields", {}),
                }
                access_log.info("request", extra={"fields": fields})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any `fields` passed in `extra`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in getattr(record, "fields", {}).items())
        return f"{super().format(record)} {fields}".rstrip()


def configure_logging(level: str, fmt: str) -> None:
    """Send the app's logs to stderr as JSON lines (fmt="json") or plain text (fmt="text")."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    logger = logging.getLogger("app")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
