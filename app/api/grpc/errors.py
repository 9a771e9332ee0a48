"""The one error renderer of the gRPC transport: a ServiceError's HTTP status -> a gRPC status code (the
mapping of the gRPC and HTTP specifications), with its one sentence as the details."""

from __future__ import annotations

import grpc

from app.errors import ServiceError

STATUS_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,  # a message over the cap (an image's pixels are a 400 by now)
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    503: grpc.StatusCode.UNAVAILABLE,
}


def status_code(error: ServiceError) -> grpc.StatusCode:
    """The gRPC status of a ServiceError: INTERNAL only for the server's own errors."""
    return STATUS_CODES.get(error.status, grpc.StatusCode.INTERNAL)
