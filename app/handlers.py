"""Errors rendered at the edge: every ServiceError, framework error and unexpected exception becomes
JSON in the shape the route's protocol defines (app/policy.py): {"detail", "code"} on /v1 and the rest
of the service, {"error"} on the Open Inference Protocol's /v2."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app.errors import ServiceError
from app.policy import error_body, policy_for

log = logging.getLogger("app")

# codes of the framework's own errors (unknown route, wrong method, ...)
STATUS_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
                413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_request",
                503: "not_ready"}  # fmt: skip


def render(
    request: Request,
    status: int,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
    fields: dict[str, Any] | None = None,
) -> JSONResponse:
    """The error's body in the route's shape; `fields` are added to the /v1 shape (the Open Inference
    Protocol's {"error"} has no room for them)."""
    shape = policy_for(request.url.path).shape
    body = error_body(shape, detail, code)
    if fields and shape == "v1":
        body.update(fields)
    return JSONResponse(body, status_code=status, headers=headers or None)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return render(request, exc.status, exc.code, exc.detail, exc.headers, exc.fields())

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        detail = f"Invalid request: {where}: {first.get('msg', 'invalid value')}." if where else "Invalid request."
        shape = policy_for(request.url.path).shape
        body = error_body(shape, detail, "invalid_request")
        if shape == "v1":
            body["errors"] = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in errors]  # fmt: skip
        return JSONResponse(body, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if not detail.endswith("."):
            detail += "."
        headers = dict(exc.headers) if exc.headers else None
        return render(request, exc.status_code, STATUS_CODES.get(exc.status_code, "error"), detail, headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return render(request, 500, "internal_error", "Internal server error; the request was logged.")
