"""/v1: predict one image or a batch, and describe the served model. Thin: the uploads are read by
the dependencies below, and classified by the service."""

from __future__ import annotations

import base64
import io
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request
from PIL import Image

from app.batching import Upload
from app.errors import ImageError, UnsupportedMediaType
from app.multipart import read_files
from app.preprocessing import FORMAT_NAMES, FORMATS, Mode
from app.routes.deps import ServiceDep, SettingsDep, current_service
from app.routes.openapi import error_responses
from app.schemas import BatchPrediction, ModelInfo, Prediction
from app.service import Result, Service

router = APIRouter(prefix="/v1", tags=["v1: predict"])

MODE_DESCRIPTIONS = {
    "mnist": "any photo, scan or drawing: EXIF rotation, transparency, polarity, background removal, "
    "crop to the ink, longer side to 20 px, centred by centre of mass in 28x28 (as MNIST was made)",
    "simple": "only grayscale and resize to 28x28, for images that are already MNIST-like (white digit on black)",
}
RAW_TYPES = ("image/", "application/octet-stream")
PreprocessQuery = Annotated[
    Mode,
    Query(
        description="how the upload is brought to the model's input: "
        + "; ".join(f"`{k}`: {v}" for k, v in MODE_DESCRIPTIONS.items())
    ),
]
ExplainQuery = Annotated[
    bool, Query(description="add `input_image`: the 28x28 image the model saw, as a base64 PNG data URL")
]


# The request bodies: read by these two helpers, described to OpenAPI below (a file field or a raw
# image body is more than FastAPI's File() declares). Called from the routes, not as dependencies:
# each dependency costs FastAPI's solver microseconds per request (docs/performance.md).


async def single_upload(request: Request, service: Service) -> Upload:
    """The image of a multipart field `file`, or of a raw image body."""
    content_type = request.headers.get("content-type", "").lower()
    with service.receiving():
        if content_type.startswith("multipart/form-data"):
            return (await read_files(request, "file", max_files=1))[0]
        if content_type.startswith(RAW_TYPES):
            return Upload(await request.body())
    raise UnsupportedMediaType(
        f"Content-Type {content_type or '(none)'!r} is not accepted; send multipart/form-data with the field "
        "`file`, or the raw image with Content-Type image/* or application/octet-stream."
    )


async def batch_uploads(request: Request, service: Service, max_files: int) -> list[Upload]:
    """Each multipart `files` field, in upload order."""
    content_type = request.headers.get("content-type", "").lower()
    if not content_type.startswith("multipart/form-data"):
        raise UnsupportedMediaType(
            f"Content-Type {content_type or '(none)'!r} is not accepted; send multipart/form-data with the field `files` repeated."
        )
    with service.receiving():
        return await read_files(request, "files", max_files=max_files)


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
        f"Send one image ({FORMAT_NAMES}; photo, scan or canvas drawing) as multipart field `file` or as "
        "the raw request body with `Content-Type: image/...`. Answers the digit, its probability and all "
        "ten probabilities (index = digit), and whether the image looks like a digit at all (`digit_score`, "
        "`is_digit`)."
    ),
    response_model=Prediction,
    response_model_exclude_none=True,
    responses=error_responses(400, 413, 415, 422, 503),
    openapi_extra=SINGLE_BODY,
)
async def predict(
    request: Request,
    preprocess: PreprocessQuery = "mnist",
    explain: ExplainQuery = False,
) -> dict[str, Any]:
    service = current_service(request)  # not ServiceDep: see current_service
    upload = await single_upload(request, service)
    result = (await service.classify_files([upload], preprocess, keep_pixels=explain))[0]
    prediction = to_prediction(result, preprocess, explain)
    request.state.log_fields = {"digit": prediction["digit"], "confidence": round(prediction["confidence"], 4)}
    return prediction


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
    openapi_extra=BATCH_BODY,
)
async def predict_batch(
    request: Request,
    service: ServiceDep,
    settings: SettingsDep,
    preprocess: PreprocessQuery = "mnist",
    explain: ExplainQuery = False,
) -> dict[str, Any]:
    uploads = await batch_uploads(request, service, settings.max_batch_files)
    try:
        results = await service.classify_files(uploads, preprocess, keep_pixels=explain)
    except ImageError as exc:  # the same error, naming the file
        raise type(exc).for_file(exc.index or 0, exc.filename, exc.detail) from None
    predictions = [to_prediction(result, preprocess, explain) for result in results]
    request.state.log_fields = {
        "digits": [p["digit"] for p in predictions],
        "confidences": [round(p["confidence"], 4) for p in predictions],
    }
    return {"predictions": predictions, "model_version": results[0].version}


@router.get(
    "/model",
    summary="Describe the served model",
    description="The loaded model's training metadata (models/mnist-mlp.json), its input contract and the preprocessing modes.",
    response_model=ModelInfo,
    responses=error_responses(503),
)
async def model_info(service: ServiceDep, settings: SettingsDep) -> ModelInfo:
    deployment = service.current
    classifier = deployment.classifier
    metadata = {k: v for k, v in classifier.metadata.items() if k != "history"}
    return ModelInfo(
        name=metadata.get("name", "mnist-mlp"),
        version=classifier.version,
        loaded_at=deployment.loaded_at,
        sha256=classifier.sha256,
        input=metadata.get("input", {}),
        output=metadata.get("output", {}),
        preprocessing_modes=MODE_DESCRIPTIONS,
        formats=[f for f in FORMATS if f != "DIB"],  # DIB: a BMP without its file header
        limits={
            "max_body_bytes": settings.max_body_bytes,
            "max_batch_body_bytes": settings.max_batch_body_bytes,
            "max_pixels": settings.max_pixels,
            "max_batch_files": settings.max_batch_files,
        },
        digit_threshold=classifier.digit_threshold,
        metadata=metadata,
    )


def to_prediction(result: Result, mode: Mode, explain: bool) -> dict[str, Any]:
    """A `Prediction` as a plain dict, which FastAPI validates and serialises (in pydantic's core)."""
    prediction = result.prediction(mode)
    if explain and result.pixels is not None:
        prediction["input_image"] = png_data_url(result.pixels)
    return prediction


def png_data_url(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
