"""The one error renderer: every ServiceError, framework error and unexpected exception becomes a
JSON response in the shape the route's protocol defines (app/api/policy.py): {"detail", "code"} on /v1
and the rest of the service, {"error"} on the Open Inference Protocol's /v2. The exception handlers
return it; the pure-ASGI middleware sends the same response object itself.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app.api.policy import policy_for
from app.errors import InvalidRequest, ServiceError

log = logging.getLogger("app")

# codes of the framework's own errors (unknown route, wrong method, ...)
STATUS_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
                413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_request",
                503: "not_ready"}  # fmt: skip


def render(
    path: str,
    status: int,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """The error's body in the shape of the route at `path`; `extra` fields are added to the /v1 shape
    (the Open Inference Protocol's {"error"} has no room for them)."""
    if policy_for(path).shape == "v2":
        body: dict[str, Any] = {"error": detail}
    else:
        body = {"detail": detail, "code": code, **(extra or {})}
    return JSONResponse(body, status_code=status, headers=headers or None)


def error_response(path: str, error: ServiceError, headers: dict[str, str] | None = None) -> JSONResponse:
    """A ServiceError's response, with its own headers (Retry-After ...) and any given here."""
    return render(path, error.status, error.code, error.detail, {**error.headers, **(headers or {})}, error.extra)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return error_response(request.url.path, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        detail = f"Invalid request: {where}: {first.get('msg', 'invalid value')}." if where else "Invalid request."
        error = InvalidRequest(detail)
        error.extra["errors"] = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in errors]  # fmt: skip
        return error_response(request.url.path, error)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if not detail.endswith("."):
            detail += "."
        headers = dict(exc.headers) if exc.headers else None
        return render(request.url.path, exc.status_code, STATUS_CODES.get(exc.status_code, "error"), detail, headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return render(request.url.path, 500, "internal_error", "Internal server error; the request was logged.")
