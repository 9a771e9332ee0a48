"""One error model: `ServiceError` with a class-level HTTP `status` and a stable `code`, and one
sentence of detail. Raised anywhere (preprocessing, the engines, the protocol codec, middleware) and
rendered only at the edge (app/api/errors.py), as {detail, code} on /v1 and {error} on /v2.

Pure Python: the engine processes import it without the web framework.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self


class ServiceError(Exception):
    """An error the client caused or can act on; `detail` is one sentence for people."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra: dict[str, Any] = {}  # machine-readable fields of the /v1 body beside detail and code

    @classmethod
    def for_file(cls, index: int, filename: str | None, detail: str) -> Self:
        """This error about one file of a batch: the detail names the file for people, and `file`
        ({index, filename, detail}: its place in the upload, from 0, and the error about it alone) for
        programs, which can then send the other files again."""
        error = cls(f"File {index}{'' if filename is None else f' ({filename!r})'}: {detail}")
        error.extra["file"] = {"index": index, "filename": filename, "detail": detail}
        return error


class BadRequest(ServiceError):
    status, code = 400, "bad_request"


class Unauthorized(ServiceError):
    status, code = 401, "unauthorized"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class RequestTimeout(ServiceError):
    status, code = 408, "request_timeout"


class PayloadTooLarge(ServiceError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status, code = 415, "unsupported_media_type"


class InvalidRequest(ServiceError):
    status, code = 422, "invalid_request"


class MissingFile(InvalidRequest):
    code = "missing_file"


class TooManyFiles(InvalidRequest):
    code = "too_many_files"


class NotReady(ServiceError):
    status, code = 503, "not_ready"
    headers: ClassVar[dict[str, str]] = {"Retry-After": "1"}

    def __init__(self, detail: str = "The model is not loaded yet; retry shortly.") -> None:
        super().__init__(detail)


class Overloaded(ServiceError):
    status, code = 503, "overloaded"
    headers: ClassVar[dict[str, str]] = {"Retry-After": "1"}


# Image errors: an upload that cannot be turned into a digit. The batcher records which file of a
# request it was (`index`, `filename`), so that a batch's answer can name it.


class ImageError(ServiceError):
    """An upload we cannot turn into a digit."""

    status, code = 400, "invalid_image"
    index: int | None = None
    filename: str | None = None


class InvalidImage(ImageError):
    """Not a decodable image: empty, truncated, corrupt, or it crashed or stalled the decoder."""


class ImageTooLarge(ImageError):
    status, code = 413, "image_too_large"


class UnsupportedImageType(ImageError):
    status, code = 415, "unsupported_media_type"


class BlankImage(ImageError):
    status, code = 422, "blank_image"


class TooManyDigits(ImageError):
    """An image to read with more digits than MNIST_MAX_DIGITS."""

    status, code = 422, "too_many_digits"
