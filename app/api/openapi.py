"""OpenAPI descriptions of the error answers, shared by the routes."""

from __future__ import annotations

from typing import Any

from app.schemas import ErrorResponse

DESCRIPTIONS = {
    400: "The file is not a decodable image, or it is truncated or corrupt (`invalid_image`).",
    401: "An API key is required (`unauthorized`).",
    413: "The body is over the byte cap or the image over the pixel cap (`payload_too_large`, `image_too_large`).",
    415: "A file or content type we don't decode: SVG, PDF, text... (`unsupported_media_type`).",
    422: "A missing or invalid field (`invalid_request`, `missing_file`, `too_many_files`), an image with no digit in "
    "it (`blank_image`), or, on /v1/read, more digits than MNIST_MAX_DIGITS (`too_many_digits`).",
    503: "The model is not loaded yet (`not_ready`), or the server is at its in-flight limit (`overloaded`).",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the given error statuses, all with the ErrorResponse schema."""
    return {s: {"model": ErrorResponse, "description": DESCRIPTIONS[s]} for s in statuses}
