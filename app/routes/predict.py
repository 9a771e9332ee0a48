"""/v1: predict one image or a batch, and describe the served model."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Awaitable
from typing import Any, cast

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from app.batching import Batcher, BatchError, Upload
from app.deps import ClassifierDep, SettingsDep, serving_state
from app.errors import ApiError, error_responses, image_error_status
from app.preprocessing import MODES, ImageError, Mode, Preprocessed, preprocess
from app.schemas import BatchPrediction, ModelInfo, Prediction

router = APIRouter(prefix="/v1", tags=["v1: predict"])

MODE_DESCRIPTIONS = {
    "mnist": "any photo, scan or drawing: EXIF rotation, transparency, polarity, background removal, "
    "crop to the ink, longer side to 20 px, centred by centre of mass in 28x28 (as MNIST was made)",
    "simple": "only grayscale and resize to 28x28, for images that are already MNIST-like (white digit on black)",
}
RAW_TYPES = ("image/", "application/octet-stream")
INLINE_PREPROCESS_BYTES = 256 * 1024  # bigger uploads are decoded in the thread pool, not the batcher
# The two query parameters are read by query_options(), not declared to FastAPI: its per-request
# dependency solving cost more than the rest of the routing. They are documented here instead.
QUERY_PARAMETERS = [
    {
        "name": "preprocess", "in": "query", "required": False,
        "description": "how the upload is brought to the model's input: "
        + "; ".join(f"`{k}`: {v}" for k, v in MODE_DESCRIPTIONS.items()),
        "schema": {"type": "string", "enum": list(MODES), "default": "mnist"},
    },
    {
        "name": "explain", "in": "query", "required": False,
        "description": "add `input_image`: the 28x28 image the model saw, as a base64 PNG data URL",
        "schema": {"type": "boolean", "default": False},
    },
]  # fmt: skip
BOOLEANS = {"true": True, "1": True, "yes": True, "on": True, "t": True, "y": True,
            "false": False, "0": False, "no": False, "off": False, "f": False, "n": False}  # fmt: skip
BINARY = {"type": "string", "format": "binary"}
SINGLE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The image as multipart/form-data in the field `file`, or as the raw body.",
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {"file": BINARY}}},
            "image/*": {"schema": BINARY},
            "application/octet-stream": {"schema": BINARY},
        },
    }
}
BATCH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "multipart/form-data with the field `files` repeated, once per image.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {"files": {"type": "array", "items": BINARY}},
                }
            }
        },
    }
}


@router.post(
    "/predict",
    summary="Recognise the digit in one image",
    description=(
        "Send one image (PNG, JPEG, GIF, BMP, WebP or TIFF; photo, scan or canvas drawing) as multipart "
        "field `file` or as the raw request body with `Content-Type: image/...`. Answers the digit, its "
        "probability and all ten probabilities (index = digit)."
    ),
    response_model=Prediction,
    response_model_exclude_none=True,
    responses=error_responses(400, 413, 415, 422, 503),
    openapi_extra={**SINGLE_BODY, "parameters": QUERY_PARAMETERS},
)
async def predict(request: Request) -> JSONResponse:
    preprocess, explain = query_options(request)
    batcher, settings = serving_state(request)
    uploads = await receive(request, batcher, read_single_upload(request))
    prediction = (await run_batch(batcher, uploads, preprocess, settings.max_pixels, explain))[0]
    request.state.log_fields = {"digit": prediction["digit"], "confidence": round(prediction["confidence"], 4)}
    return JSONResponse(prediction)


@router.post(
    "/predict/batch",
    summary="Recognise the digits in several images",
    description=(
        "Send 1 to `MNIST_MAX_BATCH_FILES` (default 64) images as multipart/form-data, the field `files` "
        "repeated. Answers one prediction per file, in upload order. One bad file fails the whole request; "
        "the error names its index (from 0) and filename."
    ),
    response_model=BatchPrediction,
    response_model_exclude_none=True,
    responses=error_responses(400, 413, 415, 422, 503),
    openapi_extra={**BATCH_BODY, "parameters": QUERY_PARAMETERS},
)
async def predict_batch(request: Request) -> JSONResponse:
    preprocess, explain = query_options(request)
    batcher, settings = serving_state(request)
    uploads = await receive(request, batcher, read_batch_upload(request, settings.max_batch_files))
    predictions = await run_batch(batcher, uploads, preprocess, settings.max_pixels, explain)
    request.state.log_fields = {
        "digits": [p["digit"] for p in predictions],
        "confidences": [round(p["confidence"], 4) for p in predictions],
    }
    return JSONResponse({"predictions": predictions})


@router.get(
    "/model",
    summary="Describe the served model",
    description="The loaded model's training metadata (models/mnist-mlp.json), its input contract and the preprocessing modes.",
    response_model=ModelInfo,
    responses=error_responses(503),
)
async def model_info(classifier: ClassifierDep, settings: SettingsDep) -> ModelInfo:
    metadata = {k: v for k, v in classifier.metadata.items() if k != "history"}
    return ModelInfo(
        name=metadata.get("name", "mnist-mlp"),
        sha256=classifier.sha256,
        input=metadata.get("input", {}),
        output=metadata.get("output", {}),
        preprocessing_modes=MODE_DESCRIPTIONS,
        limits={
            "max_body_bytes": settings.max_body_bytes,
            "max_batch_body_bytes": settings.max_batch_body_bytes,
            "max_pixels": settings.max_pixels,
            "max_batch_files": settings.max_batch_files,
        },
        metadata=metadata,
    )


# ---------------------------------------------------------------------------------------------------


def query_options(request: Request) -> tuple[Mode, bool]:
    """`preprocess` and `explain` from the query string, validated as FastAPI would (422 otherwise)."""
    query = request.query_params
    mode = query.get("preprocess", "mnist")
    if mode not in MODES:
        raise ApiError(
            422,
            "invalid_request",
            f"Invalid request: query.preprocess: Input should be {' or '.join(map(repr, MODES))}.",
        )
    explain = BOOLEANS.get(query.get("explain", "false").lower())
    if explain is None:
        raise ApiError(422, "invalid_request", "Invalid request: query.explain: Input should be a valid boolean.")
    return cast(Mode, mode), explain


async def receive(request: Request, batcher: Batcher, reading: Awaitable[list[Upload]]) -> list[Upload]:
    """Read the uploads, telling the batcher a request is on its way meanwhile."""
    batcher.receiving += 1
    try:
        return await reading
    finally:
        batcher.receiving -= 1


async def read_single_upload(request: Request) -> list[Upload]:
    """The image of a multipart field `file` or of a raw image body."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        body = await request.body()  # within the byte cap (BodyLimitMiddleware); Starlette's form() reuses it
        parts = file_parts(body, request.headers["content-type"], "file")
        if parts is not None and len(parts) == 1:
            return [Upload(parts[0].data)]
        form = await request.form(max_files=1, max_fields=16)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(422, "missing_file", "The multipart form has no file in the field `file`.")
        return [Upload(await upload.read())]
    if content_type.startswith(RAW_TYPES):
        return [Upload(await request.body())]
    raise ApiError(
        415, "unsupported_media_type",
        f"Content-Type {content_type or '(none)'!r} is not accepted; send multipart/form-data with the field "
        "`file`, or the raw image with Content-Type image/* or application/octet-stream.",
    )  # fmt: skip


BOUNDARY = re.compile(r'boundary=(?:"([^"]{1,70})"|([^\s";,]{1,70}))', re.IGNORECASE)
DISPOSITION = re.compile(
    rb'content-disposition: *form-data; *name="([^"\\\r\n]*)"; *filename="([^"\\\r\n]*)" *', re.IGNORECASE
)


def file_parts(body: bytes, content_type: str, field: str) -> list[Upload] | None:
    """The files of a multipart body whose parts are all files in the field `field` (what curl -F,
    browsers and httpx send), or None for anything else, which Starlette's parser then reads.

    Starlette's parser costs ~0.1 ms a request and ~30 us a file, much of the event loop's work per
    upload; this one is string searches over the body, held in memory anyway (the byte cap bounds it).
    """
    match = BOUNDARY.search(content_type)
    if match is None:
        return None
    opening = b"--" + (match.group(1) or match.group(2)).encode("latin-1")
    if not body.startswith(opening + b"\r\n"):
        return None
    uploads, at = [], len(opening) + 2
    while True:
        end = body.find(b"\r\n" + opening, at)
        headers_end = body.find(b"\r\n\r\n", at, end)
        if end < 0 or headers_end < 0:
            return None
        lines = body[at:headers_end].split(b"\r\n")
        dispositions = [line for line in lines if line[:20].lower() == b"content-disposition:"]
        disposition = DISPOSITION.fullmatch(dispositions[0]) if len(dispositions) == 1 else None
        if disposition is None or disposition.group(1) != field.encode():
            return None
        if any(line[:13].lower() != b"content-type:" for line in lines if line is not dispositions[0]):
            return None  # another header, such as Content-Transfer-Encoding (which Starlette would apply)
        uploads.append(Upload(body[headers_end + 4 : end], _decode_filename(disposition.group(2))))
        at = end + 2 + len(opening)
        if body.startswith(b"--", at):  # the closing delimiter
            return uploads
        if not body.startswith(b"\r\n", at):
            return None
        at += 2


def _decode_filename(raw: bytes) -> str:
    try:  # as Starlette decodes it
        return raw.decode()
    except UnicodeDecodeError:
        return raw.decode("latin-1")


async def read_batch_upload(request: Request, max_files: int) -> list[Upload]:
    """Each multipart `files` field, in upload order."""
    content_type = request.headers.get("content-type", "").lower()
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(
            415, "unsupported_media_type",
            f"Content-Type {content_type or '(none)'!r} is not accepted; send multipart/form-data with the field `files` repeated.",
        )  # fmt: skip
    too_many = ApiError(422, "too_many_files", f"At most {max_files} files are accepted in one batch.")
    parts = file_parts(await request.body(), request.headers["content-type"], "files")
    if parts is not None:
        if len(parts) > max_files:
            raise too_many
        return parts
    try:
        form = await request.form(max_files=max_files, max_fields=16)
    except HTTPException as exc:
        if exc.status_code == 400 and str(exc.detail).startswith("Too many files"):
            raise too_many from None
        raise
    files = form.getlist("files")
    if not files:
        raise ApiError(422, "missing_file", "The multipart form has no file in the field `files`.")
    uploads = []
    for index, file in enumerate(files):
        if not isinstance(file, UploadFile):
            raise ApiError(422, "missing_file", f"File {index}: the field `files` holds text, not a file.")
        uploads.append(Upload(await file.read(), file.filename))
    return uploads


async def run_batch(
    batcher: Batcher, uploads: list[Upload], mode: Mode, max_pixels: int, explain: bool
) -> list[dict[str, Any]]:
    """Preprocess and classify through the batcher."""
    await preprocess_big_files(uploads, mode, max_pixels)
    try:
        results = await batcher.predict(uploads, mode, max_pixels)
    except BatchError as exc:
        raise _batch_error(exc, len(uploads)) from None
    return [to_prediction(image, row, mode, explain) for image, row in results]


async def preprocess_big_files(uploads: list[Upload], mode: Mode, max_pixels: int) -> None:
    """Preprocess big files in the thread pool, so that one large photo doesn't hold up the small uploads
    the batcher evaluates with it; their errors are kept for the batcher to report in upload order."""
    for upload in uploads:
        if upload.data is not None and len(upload.data) > INLINE_PREPROCESS_BYTES:
            await run_in_threadpool(_preprocess_into, upload, mode, max_pixels)


def _preprocess_into(upload: Upload, mode: Mode, max_pixels: int) -> None:
    try:
        upload.image = preprocess(upload.data or b"", mode, max_pixels)
    except ImageError as exc:
        upload.error = exc


def _batch_error(exc: BatchError, count: int) -> Exception:
    """A single upload's error as is; in a batch, the same error naming the file's index and filename."""
    if count == 1 and exc.filename is None:
        return exc.error
    return ApiError(image_error_status(exc.error), exc.error.code, f"File {exc.index} ({exc.filename!r}): {exc.error}")


def to_prediction(image: Preprocessed, row: np.ndarray, mode: Mode, explain: bool) -> dict[str, Any]:
    """A `Prediction` as a plain dict: the routes answer JSON directly, without re-validating what they
    built (tests check the answers against the schema)."""
    digit = int(row.argmax())
    prediction = {
        "digit": digit,
        "confidence": float(row[digit]),
        "probabilities": row.tolist(),
        "preprocess": mode,
        "notes": image.notes,
    }
    if explain:
        prediction["input_image"] = png_data_url(image.pixels)
    return prediction


def png_data_url(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
