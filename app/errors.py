"""Domain errors -> HTTP: one handler per kind, every error a JSON body {"detail", "code"}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.preprocessing import BlankImage, ImageError, ImageTooLarge, InvalidImage, UnsupportedImageType
from app.schemas import ErrorResponse

log = logging.getLogger("app")

IMAGE_ERROR_STATUS: dict[type[ImageError], int] = {
    InvalidImage: 400,
    ImageTooLarge: 413,
    UnsupportedImageType: 415,
    BlankImage: 422,
}
STATUS_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
                413: "payload_too_large", 415: "unsupported_media_type", 422: "invalid_request",
                503: "not_ready"}  # fmt: skip


class ApiError(Exception):
    """An error raised at the HTTP edge with its status, code and one-sentence detail."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers


def error_content(path: str, detail: str, code: str) -> dict[str, object]:
    """The error body: {"detail", "code"}, or {"error"} on the Open Inference Protocol's /v2 routes."""
    return {"error": detail} if path == "/v2" or path.startswith("/v2/") else {"detail": detail, "code": code}


def error_response(
    request: Request, status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_content(request.url.path, detail, code), status_code=status, headers=headers)


def image_error_status(exc: ImageError) -> int:
    return IMAGE_ERROR_STATUS.get(type(exc), 400)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(request, exc.status, exc.code, exc.detail, exc.headers)

    @app.exception_handler(ImageError)
    async def image_error(request: Request, exc: ImageError) -> JSONResponse:
        return error_response(request, image_error_status(exc), exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        detail = f"Invalid request: {where}: {first.get('msg', 'invalid value')}." if where else "Invalid request."
        content = error_content(request.url.path, detail, "invalid_request")
        if "code" in content:
            content["errors"] = _jsonable(exc.errors())
        return JSONResponse(content, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if not detail.endswith("."):
            detail += "."
        headers = dict(exc.headers) if exc.headers else None
        return error_response(request, exc.status_code, STATUS_CODES.get(exc.status_code, "error"), detail, headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, "internal_error", "Internal server error; the request was logged.")


def _jsonable(errors: Any) -> list[dict[str, Any]]:
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in errors
    ]


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the given error statuses, all with the ErrorResponse schema."""
    descriptions = {
        400: "The file is not a decodable image, or it is truncated or corrupt (`invalid_image`).",
        401: "An API key is required (`unauthorized`).",
        413: "The body is over the byte cap or the image over the pixel cap (`payload_too_large`, `image_too_large`).",
        415: "A file or content type we don't decode: SVG, PDF, text... (`unsupported_media_type`).",
        422: "A missing or invalid field (`invalid_request`, `missing_file`, `too_many_files`), or an image with no digit in it (`blank_image`).",
        503: "The model is not loaded yet (`not_ready`).",
    }
    return {s: {"model": ErrorResponse, "description": descriptions[s]} for s in statuses}
