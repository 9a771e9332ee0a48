"""/v1: predict one image or a batch, and describe the served model. Thin: the uploads are read by
uploads.py, classified by the data plane, and rendered by app/schemas.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from app.answers import Classified
from app.api.deps import DataPlaneDep, SettingsDep, ready_dataplane
from app.api.openapi import error_responses
from app.api.v1.uploads import BATCH_BODY, SINGLE_BODY, batch_uploads, single_upload
from app.errors import ImageError
from app.preprocessing import FORMAT_NAMES, FORMATS, Mode
from app.schemas import BatchPrediction, ModelInfo, Prediction, png_data_url, predictions

router = APIRouter(prefix="/v1", tags=["v1: predict"])

MODE_DESCRIPTIONS = {
    "mnist": "any photo, scan or drawing: EXIF rotation, transparency, polarity, background removal, "
    "crop to the ink, longer side to 20 px, centred by centre of mass in 28x28 (as MNIST was made)",
    "simple": "only grayscale and resize to 28x28, for images that are already MNIST-like (white digit on black)",
}
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
    dataplane = ready_dataplane(request)  # not DataPlaneDep: a dependency costs the solver work per request
    upload = await single_upload(request, dataplane)
    prediction = render(await dataplane.predict_files([upload], preprocess, keep_pixels=explain), preprocess)[0]
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
    dataplane: DataPlaneDep,
    settings: SettingsDep,
    preprocess: PreprocessQuery = "mnist",
    explain: ExplainQuery = False,
) -> dict[str, Any]:
    uploads = await batch_uploads(request, dataplane, settings.max_batch_files)
    try:
        classified = await dataplane.predict_files(uploads, preprocess, keep_pixels=explain)
    except ImageError as exc:  # the same error, naming the file
        raise type(exc).for_file(exc.index or 0, exc.filename, exc.detail) from None
    answers = render(classified, preprocess)
    request.state.log_fields = {
        "digits": [p["digit"] for p in answers],
        "confidences": [round(p["confidence"], 4) for p in answers],
    }
    return {"predictions": answers, "model_version": classified.version}


@router.get(
    "/model",
    summary="Describe the served model",
    description="The loaded model's training metadata (models/mnist-mlp.json), its input contract and the preprocessing modes.",
    response_model=ModelInfo,
    responses=error_responses(503),
)
async def model_info(dataplane: DataPlaneDep, settings: SettingsDep) -> ModelInfo:
    served = dataplane.model()
    metadata = {k: v for k, v in served.metadata.items() if k != "history"}
    return ModelInfo(
        name=metadata.get("name", "mnist-mlp"),
        version=served.version,
        loaded_at=served.loaded_at,
        sha256=served.sha256,
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
        digit_threshold=served.digit_threshold,
        metadata=metadata,
        reading_calibration=served.reading_calibration,
    )


def render(classified: Classified, mode: Mode) -> list[dict[str, Any]]:
    """Each image's `Prediction` as a plain dict, with the 28x28 image the model saw when it was kept."""
    answers = predictions(classified, mode)
    for answer, pixels in zip(answers, classified.pixels or [], strict=False):
        answer["input_image"] = png_data_url(pixels)
    return answers
