"""/v1: predict one image or a batch, and describe the served model."""

from __future__ import annotations

import base64
import io
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app.deps import ClassifierDep, SettingsDep
from app.errors import ApiError, error_responses, image_error_status
from app.inference import Classifier
from app.preprocessing import ImageError, Mode, Preprocessed, preprocess
from app.schemas import BatchPrediction, ModelInfo, Prediction

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
    openapi_extra=SINGLE_BODY,
)
async def predict(
    request: Request, classifier: ClassifierDep, settings: SettingsDep,
    preprocess: PreprocessQuery = "mnist", explain: ExplainQuery = False,
) -> Prediction:  # fmt: skip
    data = await read_single_upload(request)
    images = await run_in_threadpool(preprocess_all, [(data, None)], preprocess, settings.max_pixels)
    prediction = (await run_in_threadpool(classify, classifier, images, preprocess, explain))[0]
    request.state.log_fields = {"digit": prediction.digit, "confidence": round(prediction.confidence, 4)}
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
    request: Request, classifier: ClassifierDep, settings: SettingsDep,
    preprocess: PreprocessQuery = "mnist", explain: ExplainQuery = False,
) -> BatchPrediction:  # fmt: skip
    files = await read_batch_upload(request, settings.max_batch_files)
    images = await run_in_threadpool(preprocess_all, files, preprocess, settings.max_pixels)
    predictions = await run_in_threadpool(classify, classifier, images, preprocess, explain)
    request.state.log_fields = {
        "digits": [p.digit for p in predictions],
        "confidences": [round(p.confidence, 4) for p in predictions],
    }
    return BatchPrediction(predictions=predictions)


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


async def read_single_upload(request: Request) -> bytes:
    """The image bytes of a multipart field `file` or of a raw image body."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=16)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(422, "missing_file", "The multipart form has no file in the field `file`.")
        return await upload.read()
    if content_type.startswith(RAW_TYPES):
        return await request.body()
    raise ApiError(
        415, "unsupported_media_type",
        f"Content-Type {content_type or '(none)'!r} is not accepted; send multipart/form-data with the field "
        "`file`, or the raw image with Content-Type image/* or application/octet-stream.",
    )  # fmt: skip


async def read_batch_upload(request: Request, max_files: int) -> list[tuple[bytes, str | None]]:
    """(bytes, filename) of each multipart `files` field, in upload order."""
    content_type = request.headers.get("content-type", "").lower()
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(
            415, "unsupported_media_type",
            f"Content-Type {content_type or '(none)'!r} is not accepted; send multipart/form-data with the field `files` repeated.",
        )  # fmt: skip
    form = await request.form(max_files=max_files + 1, max_fields=16)
    uploads = form.getlist("files")
    if not uploads:
        raise ApiError(422, "missing_file", "The multipart form has no file in the field `files`.")
    if len(uploads) > max_files:
        raise ApiError(422, "too_many_files", f"At most {max_files} files are accepted in one batch.")
    files = []
    for index, upload in enumerate(uploads):
        if not isinstance(upload, UploadFile):
            raise ApiError(422, "missing_file", f"File {index}: the field `files` holds text, not a file.")
        files.append((await upload.read(), upload.filename))
    return files


def preprocess_all(files: list[tuple[bytes, str | None]], mode: Mode, max_pixels: int) -> list[Preprocessed]:
    """Preprocess each file; the first bad one fails the request, naming its index and filename."""
    images = []
    for index, (data, filename) in enumerate(files):
        try:
            images.append(preprocess(data, mode, max_pixels))
        except ImageError as exc:
            if filename is None and len(files) == 1:
                raise
            raise ApiError(image_error_status(exc), exc.code, f"File {index} ({filename!r}): {exc}") from None
    return images


def classify(classifier: Classifier, images: list[Preprocessed], mode: Mode, explain: bool) -> list[Prediction]:
    """One model call for all images; (N, 10) probabilities -> N predictions."""
    probabilities = classifier.predict_proba(np.concatenate([image.model_input for image in images]))
    predictions = []
    for image, row in zip(images, probabilities, strict=True):
        digit = int(row.argmax())
        predictions.append(
            Prediction(
                digit=digit,
                confidence=float(row[digit]),
                probabilities=row.tolist(),
                preprocess=mode,
                notes=image.notes,
                input_image=png_data_url(image.pixels) if explain else None,
            )
        )
    return predictions


def png_data_url(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
