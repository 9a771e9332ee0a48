"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.errors import NotReady
from app.metrics import metrics_response
from app.routes.openapi import error_responses
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
async def readyz(request: Request) -> Status:
    if request.app.state.service is None:
        raise NotReady()
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
async def metrics(request: Request) -> Response:
    return metrics_response(request)
