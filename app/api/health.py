"""Liveness and readiness probes, and the Prometheus exposition."""

from __future__ import annotations

import os

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from app.api.deps import DataPlaneDep
from app.api.openapi import error_responses
from app.schemas import Status

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    summary="Liveness",
    description="200 while the process serves requests (use as the liveness probe).",
    response_model=Status,
)
async def healthz() -> Status:
    return Status(status="ok")


@router.get(
    "/readyz",
    summary="Readiness",
    description="200 once the model is loaded and warmed up, 503 before (use as the readiness probe).",
    response_model=Status,
    responses=error_responses(503),
)
async def readyz(_: DataPlaneDep) -> Status:
    return Status(status="ready")


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description=(
        "Request counts and latency by route and status, inference latency and batch size, predictions by "
        "digit, in-flight requests, and `mnist_model_info` (name, version, sha256), in the Prometheus text format."
    ),
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition format"}},
)
async def metrics() -> Response:
    """The Prometheus text format; merges every worker's samples when PROMETHEUS_MULTIPROC_DIR is set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
