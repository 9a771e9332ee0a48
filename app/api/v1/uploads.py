"""The /v1 upload bodies: declared as models (they give the OpenAPI request bodies), read by the two
helpers below. A body is a multipart file field or, for one image, the raw image itself: more than
FastAPI's File() can declare, so the routes read it themselves (multipart.py), as a function call
rather than a dependency: each dependency costs FastAPI's solver work on every request."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import BaseModel, Field

from app.api.v1.multipart import read_files
from app.dataplane import DataPlane, Upload
from app.errors import UnsupportedMediaType

RAW_TYPES = ("image/", "application/octet-stream")
BINARY = {"type": "string", "format": "binary"}  # the raw image body


class SingleUpload(BaseModel):
    file: bytes = Field(description="the image file")


class BatchUpload(BaseModel):
    files: list[bytes] = Field(description="the image files, the field repeated once per image")


def request_body(form: type[BaseModel], description: str, raw: bool) -> dict[str, Any]:
    """The OpenAPI requestBody of an upload route: the multipart form `form` (and the raw image)."""
    schema = form.model_json_schema()
    schema.pop("title", None)
    for field in schema["properties"].values():
        field.pop("title", None)
    content: dict[str, Any] = {"multipart/form-data": {"schema": schema}}
    if raw:
        content |= {"image/*": {"schema": BINARY}, "application/octet-stream": {"schema": BINARY}}
    return {"requestBody": {"required": True, "description": description, "content": content}}


SINGLE_BODY = request_body(
    SingleUpload, "The image as multipart/form-data in the field `file`, or as the raw body.", raw=True
)
BATCH_BODY = request_body(
    BatchUpload, "multipart/form-data with the field `files` repeated, once per image.", raw=False
)


async def single_upload(request: Request, dataplane: DataPlane) -> Upload:
    """The image of a multipart field `file`, or of a raw image body."""
    content_type = request.headers.get("content-type", "").lower()
    with dataplane.receiving():
        if content_type.startswith("multipart/form-data"):
            return (await read_files(request, "file", max_files=1))[0]
        if content_type.startswith(RAW_TYPES):
            return Upload(await request.body())
    raise UnsupportedMediaType(
        f"Content-Type {content_type or '(none)'!r} is not accepted; send multipart/form-data with the field "
        "`file`, or the raw image with Content-Type image/* or application/octet-stream."
    )


async def batch_uploads(request: Request, dataplane: DataPlane, max_files: int) -> list[Upload]:
    """Each multipart `files` field, in upload order."""
    content_type = request.headers.get("content-type", "").lower()
    if not content_type.startswith("multipart/form-data"):
        raise UnsupportedMediaType(
            f"Content-Type {content_type or '(none)'!r} is not accepted; send multipart/form-data with the field `files` repeated."
        )
    with dataplane.receiving():
        return await read_files(request, "files", max_files=max_files)
